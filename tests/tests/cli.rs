//! The CLI on the bundled examples and on bad usage.

mod common;
use common::hpl;

#[test]
fn the_example_organisation_checks_clean() {
    let (exit, out, err) = hpl(&["check", "--deny-warnings", "../examples/acme"]);
    assert_eq!(exit, 0, "{out}{err}");
    assert!(out.contains("0 errors, 0 warnings"), "{out}");
    insta::assert_snapshot!("examples_acme_check", out);
}

#[test]
fn the_examples_are_formatted() {
    let (exit, out, err) = hpl(&["fmt", "--check", "../examples"]);
    assert_eq!(exit, 0, "would reformat: {out}{err}");
}

#[test]
fn the_example_organisation_is_big_enough_to_be_realistic() {
    let files = common::example_files();
    let text: String = files.iter().map(|(_, t)| t.as_str()).collect();
    let count = |kw: &str| {
        text.lines()
            .filter(|l| l.trim_start().starts_with(kw))
            .count()
    };
    assert!(count("department ") >= 3);
    assert!(count("team ") >= 6);
    assert!(count("environment ") >= 3);
    assert!(count("device_group ") >= 3);
    assert!(count("policy ") >= 8);
    let rules = [
        "require ",
        "allow ",
        "deny ",
        "deny! ",
        "pin ",
        "toolchain ",
        "window ",
        "guard ",
    ];
    let total: usize = rules.iter().map(|r| count(r)).sum();
    assert!(total >= 80, "only {total} rules");
    for r in rules {
        assert!(count(r) > 0, "no `{r}` rule in the examples");
    }
    assert!(text.contains(" when "), "no conditions");
}

#[test]
fn fmt_check_lists_files_that_would_change_and_fmt_rewrites_them() {
    let dir = std::env::temp_dir().join(format!("hpl-fmt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("messy.hpl");
    std::fs::write(&file, "tenant   acme\npolicy p version 1 {\n     scope org   # everyone\n require    brew:git   >=2.40\n}\n").expect("write");
    let path = file.to_string_lossy().to_string();
    let (exit, out, _) = hpl(&["fmt", "--check", &path]);
    assert_eq!(exit, 1);
    assert!(out.contains("messy.hpl"));
    let (exit, _, _) = hpl(&["fmt", &path]);
    assert_eq!(exit, 0);
    let formatted = std::fs::read_to_string(&file).expect("read");
    assert_eq!(formatted, "tenant acme\npolicy p version 1 {\n  scope org  # everyone\n  require brew:git >=2.40\n}\n");
    let (exit, _, _) = hpl(&["fmt", "--check", &path]);
    assert_eq!(exit, 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fmt_refuses_files_with_syntax_errors() {
    let (exit, _, err) = hpl(&["fmt", "--check", "fixtures/HPL0001.hpl"]);
    assert_eq!(exit, 1);
    assert!(
        err.contains("has syntax errors and was not formatted"),
        "{err}"
    );
    assert!(err.contains("HPL0001"));
}

#[test]
fn usage_and_io_errors_exit_2() {
    assert_eq!(hpl(&["check"]).0, 2);
    assert_eq!(hpl(&["frobnicate"]).0, 2);
    let (exit, _, err) = hpl(&["check", "no/such/dir"]);
    assert_eq!(exit, 2);
    assert!(err.contains("cannot read no/such/dir"), "{err}");
    let (exit, _, err) = hpl(&["explain", "HPL9999"]);
    assert_eq!(exit, 2);
    assert!(err.contains("unknown code"));
}

#[test]
fn explain_lists_and_explains_codes() {
    let (exit, out, _) = hpl(&["explain"]);
    assert_eq!(exit, 0);
    assert!(out.lines().count() >= 30);
    let (exit, out, _) = hpl(&["explain", "hpl0404"]);
    assert_eq!(exit, 0);
    insta::assert_snapshot!("explain_HPL0404", out);
}

#[test]
fn a_missing_brace_costs_one_diagnostic_not_the_rest_of_the_file() {
    // The second policy in the fixture is still analysed: its unknown manager is reported.
    let dir = std::env::temp_dir().join(format!("hpl-recover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("recover.hpl");
    std::fs::write(
        &file,
        "tenant acme\npolicy a version 1 {\n  scope org\n  requre brew:git\npolicy b version 1 {\n  scope org\n  require homebrw:jq\n  require brew:x when device.arch == 1\n}\n",
    )
    .expect("write");
    let (exit, json, _) = hpl(&["check", "--format", "json", &file.to_string_lossy()]);
    assert_eq!(exit, 1);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let codes: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["HPL0002", "HPL0001", "HPL0103", "HPL0302"]);
    std::fs::remove_dir_all(&dir).ok();
}
