//! One fixture per diagnostic code: `hpl check` on it reports the code, exits as documented,
//! and its human and JSON output match the reviewed snapshots.

mod common;
use common::hpl;
use hpl_compiler::diagnostics::{Code, Severity};

fn fixture_codes() -> Vec<String> {
    let mut codes: Vec<String> = std::fs::read_dir("fixtures")
        .expect("tests/fixtures exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hpl"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    codes.sort();
    codes
}

#[test]
fn every_code_has_a_fixture_and_an_explanation() {
    let fixtures = fixture_codes();
    for code in Code::ALL {
        assert!(
            fixtures.iter().any(|f| f == code.as_str()),
            "no fixture for {code}"
        );
        assert!(
            code.explanation().contains("Example") || code.explanation().contains("Fix"),
            "{code} explanation lacks an example or fix"
        );
        let (exit, out, _) = hpl(&["explain", code.as_str()]);
        assert_eq!(exit, 0);
        assert!(out.starts_with(code.as_str()));
    }
    for f in &fixtures {
        assert!(
            Code::parse(f).is_some(),
            "fixture {f} is not a registered code"
        );
    }
}

#[test]
fn each_fixture_reports_its_code() {
    for code_text in fixture_codes() {
        let code = Code::parse(&code_text).expect("registered");
        let path = format!("fixtures/{code_text}.hpl");
        let (exit, json, err) = hpl(&["check", "--deny-warnings", "--format", "json", &path]);
        assert!(err.is_empty(), "{code_text}: stderr: {err}");
        let diagnostics: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        let reported: Vec<&str> = diagnostics
            .as_array()
            .expect("an array")
            .iter()
            .map(|d| d["code"].as_str().expect("code"))
            .collect();
        assert!(
            reported.contains(&code.as_str()),
            "{code_text}: reported {reported:?}"
        );
        // Errors and (with --deny-warnings) warnings fail the check; notes never do.
        let expected_exit = if code.severity() == Severity::Note {
            0
        } else {
            1
        };
        assert_eq!(exit, expected_exit, "{code_text}: exit code");

        let (_, human, _) = hpl(&["check", &path]);
        insta::assert_snapshot!(format!("{code_text}_human"), human);
        insta::assert_snapshot!(format!("{code_text}_json"), json);
    }
}

#[test]
fn json_diagnostics_have_the_documented_fields() {
    let (_, json, _) = hpl(&["check", "--format", "json", "fixtures/HPL0401.hpl"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let d = &v[0];
    for field in [
        "code", "severity", "message", "file", "line", "column", "end", "related",
    ] {
        assert!(d.get(field).is_some(), "missing {field}");
    }
    assert!(d["line"].as_u64().expect("line") >= 1);
    assert!(d["end"]["line"].as_u64().expect("end line") >= d["line"].as_u64().expect("line"));
    let related = d["related"].as_array().expect("related");
    assert_eq!(related.len(), 1, "a conflict points at the other rule");
    assert!(related[0]["message"]
        .as_str()
        .expect("message")
        .contains("team platform"));
}

#[test]
fn sarif_output_is_a_valid_sarif_2_1_0_log() {
    let (exit, sarif, _) = hpl(&["check", "--format", "sarif", "fixtures/HPL0402.hpl"]);
    assert_eq!(exit, 1);
    let v: serde_json::Value = serde_json::from_str(&sarif).expect("valid JSON");
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"]
        .as_str()
        .expect("schema")
        .contains("sarif-2.1.0"));
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "hpl");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), Code::ALL.len());
    let results = run["results"].as_array().expect("results");
    assert!(!results.is_empty());
    for r in results {
        let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(
            rules[index]["id"], r["ruleId"],
            "ruleIndex points at the rule"
        );
        assert!(matches!(
            r["level"].as_str(),
            Some("error" | "warning" | "note")
        ));
        assert!(r["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().expect("startLine") >= 1);
        assert!(region["startColumn"].as_u64().expect("startColumn") >= 1);
        assert!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .is_some()
        );
        for related in r["relatedLocations"].as_array().expect("relatedLocations") {
            assert!(related["message"]["text"].is_string());
        }
    }
}
