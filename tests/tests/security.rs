//! Issue 9: the agent cannot be talked into `allow`ing what the policy forbids. One regression
//! test per bypass, against the example organisation and its devices, through the real CLI.

mod common;
use common::hpl;

const AT: &str = "2026-11-29T02:00:00Z";

/// `hpl authorize` on an example device: (exit code, decision JSON).
fn authorize(device: &str, action: &str) -> (i32, serde_json::Value) {
    let inventory = format!("../examples/devices/{device}.json");
    let (exit, out, err) = hpl(&[
        "authorize",
        "--policy",
        "../examples/acme",
        "--inventory",
        &inventory,
        "--action",
        action,
        "--at",
        AT,
    ]);
    assert!(err.is_empty(), "{err}");
    (exit, serde_json::from_str(&out).expect("decision JSON"))
}

fn verdict(device: &str, action: &str) -> String {
    let (_, d) = authorize(device, action);
    d["decision"].as_str().expect("decision").to_string()
}

// 1. Name spelling: every requested name is put in its manager's canonical form first.
#[test]
fn tap_prefixes_extras_specifiers_and_versions_in_names_do_not_bypass_rules() {
    for (device, action) in [
        (
            "security-lab",
            r#"{"action":"install","manager":"homebrew_formula","package":"homebrew/core/john-jumbo"}"#,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"upgrade","manager":"homebrew_formula","package":"homebrew/core/terraform","to":"1.10.0"}"#,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"uninstall","manager":"homebrew_formula","package":"homebrew/core/terraform"}"#,
        ),
        (
            "contractor-web",
            r#"{"action":"install","manager":"homebrew_cask","package":"homebrew/cask/docker"}"#,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"install","manager":"pip","package":"ctx[extra]"}"#,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"install","manager":"pip","package":"ctx==0.1.2"}"#,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"install","manager":"npm","package":"event-stream@3.3.6"}"#,
        ),
    ] {
        assert_ne!(verdict(device, action), "allow", "{device} {action}");
    }
    // The plain spelling decides the same way (the final denies here are in assist mode).
    assert_eq!(
        verdict(
            "security-lab",
            r#"{"action":"install","manager":"homebrew_formula","package":"homebrew/core/john-jumbo"}"#
        ),
        verdict(
            "security-lab",
            r#"{"action":"install","manager":"homebrew_formula","package":"john-jumbo"}"#
        )
    );
    // A name that cannot be made canonical is refused with the reason.
    let (exit, d) = authorize(
        "platform-noncompliant",
        r#"{"action":"install","manager":"homebrew_formula","package":"evil/tap/terraform"}"#,
    );
    assert_eq!(exit, 6, "{d}");
    assert!(d["reason"]
        .as_str()
        .is_some_and(|r| r.contains("third-party tap")));
    // A name that carries one version and a `to` of another is refused.
    let (exit, _) = authorize(
        "platform-noncompliant",
        r#"{"action":"install","manager":"npm","package":"left-pad@1.3.0","to":"1.2.0"}"#,
    );
    assert_eq!(exit, 6);
}

// 2. `upgrade-all` is no way around `upgrade`: each package gets the verdict an `upgrade` of it
// gets, and the whole is the strictest of them (it used to be `allow` for all 22 of a
// contractor's npm packages, 20 of them denied by `deny npm:*`).
#[test]
fn upgrade_all_gives_each_package_the_verdict_its_own_upgrade_gets() {
    let (_, all) = authorize(
        "contractor-web",
        r#"{"action":"upgrade-all","manager":"npm"}"#,
    );
    assert_eq!(all["decision"], "deny", "{all}");
    let packages = all["packages"].as_array().expect("per-package verdicts");
    assert_eq!(packages.len(), 22, "{all}");
    let mut denied = 0;
    for p in packages {
        let name = p["package"].as_str().expect("name");
        let one = serde_json::json!({"action": "upgrade", "manager": "npm", "package": name});
        let alone = verdict("contractor-web", &one.to_string());
        assert_eq!(p["decision"], alone.as_str(), "{name}: {p}");
        denied += usize::from(alone == "deny");
    }
    assert_eq!(
        denied, 20,
        "typescript and eslint are allowed, the rest denied"
    );
}

// 3. An unreadable `to` never turns range checks off.
#[test]
fn versions_are_normalised_and_an_unreadable_target_is_never_allowed_under_a_range() {
    for to in ["1.29.0", "v1.29.0", "latest"] {
        let action = format!(
            r#"{{"action":"upgrade","manager":"homebrew_formula","package":"kubectl","to":"{to}"}}"#
        );
        let (exit, d) = authorize("platform-noncompliant", &action);
        assert_eq!(exit, 6, "{to}: {d}");
        assert!(
            d["reason"].as_str().is_some_and(|r| r.contains(to)),
            "the reason names the version: {d}"
        );
    }
    // Read as the manager reads it, `v1.31.0` is inside the range.
    assert_eq!(
        verdict(
            "platform-noncompliant",
            r#"{"action":"upgrade","manager":"homebrew_formula","package":"kubectl","to":"v1.31.0"}"#
        ),
        "allow"
    );
    for to in ["3.3.6", "v3.3.6", "=3.3.6"] {
        let action = format!(
            r#"{{"action":"install","manager":"npm","package":"event-stream","to":"{to}"}}"#
        );
        assert_ne!(verdict("platform-noncompliant", &action), "allow", "{to}");
    }
}

// 4. An expired bundle and an MDM configuration of another tenant are no valid snapshot.
#[test]
fn expiry_and_tenant_mean_no_valid_snapshot_for_authorize() {
    let dir = std::env::temp_dir().join(format!("hpl-security-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join("k");
    let bundle = dir.join("b.hplb");
    let (code, _, err) = hpl(&["keygen", "--out", key.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = hpl(&[
        "build",
        "../examples/acme",
        "-o",
        bundle.to_str().expect("utf-8"),
        "--sign-key",
        key.to_str().expect("utf-8"),
        "--issued-at",
        "2026-06-01T00:00:00Z",
        "--expires-in",
        "30d",
    ]);
    assert_eq!(code, 0, "{err}");
    let public = std::fs::read_to_string(dir.join("k.pub")).expect("pub");
    let action = r#"{"action":"install","manager":"homebrew_formula","package":"jq"}"#;
    let ask = |config: &str, at: &str| {
        let path = dir.join("mdm.json");
        std::fs::write(&path, config).expect("config");
        let (exit, out, err) = hpl(&[
            "authorize",
            "--bundle",
            bundle.to_str().expect("utf-8"),
            "--config",
            path.to_str().expect("utf-8"),
            "--inventory",
            "../examples/devices/design-compliant.json",
            "--action",
            action,
            "--at",
            at,
        ]);
        assert!(err.is_empty(), "{err}");
        (exit, out)
    };
    let acme = format!(
        r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"{}"}}]}}"#,
        public.trim()
    );
    let other = acme.replace("\"acme\"", "\"globex\"");
    // Valid: allowed. Months after expiry: denied. Another tenant's configuration: denied.
    assert_eq!(ask(&acme, "2026-06-10T00:00:00Z").0, 0);
    let (exit, out) = ask(&acme, AT);
    assert_eq!(exit, 6, "{out}");
    assert!(
        out.contains("no_valid_snapshot") && out.contains("expired"),
        "{out}"
    );
    let (exit, out) = ask(&other, "2026-06-10T00:00:00Z");
    assert_eq!(exit, 6, "{out}");
    assert!(
        out.contains("no_valid_snapshot") && out.contains("globex"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

// 5. The guarded floor is the runtime's own: a bundle cannot unguard OS updates.

/// The example organisation built, decoded, changed by `change`, re-signed and loaded.
fn resigned(
    change: impl FnOnce(&mut hpl_runtime::bundle::BundleContent),
) -> Result<hpl_runtime::load::VerifiedBundle, hpl_runtime::load::LoadError> {
    use ed25519_dalek::{Signer, SigningKey};
    use hpl_runtime::bundle::{decode_content, encode, sign_bundle, SigningInput};
    use hpl_runtime::load::{key_id, load, open_envelope, TrustedKeys};
    let files = hpl_compiler::driver::load_files(&[std::path::PathBuf::from("../examples/acme")])
        .expect("examples");
    let analysis =
        hpl_compiler::analyze_sources(files, hpl_compiler::check::CheckOptions::default());
    let key = SigningKey::from_bytes(&[5; 32]);
    let options = hpl_compiler::lower::BuildOptions {
        bundle_version: 1,
        issued_at: 1_795_900_000,
        expires_at: None,
        root: None,
    };
    let bytes = hpl_compiler::build::build_bundle(&analysis, &options, &[&key]).expect("build");
    let mut content =
        decode_content(open_envelope(&bytes).expect("envelope").0, 0).expect("decode");
    change(&mut content);
    let sign = |hash: &[u8; 32]| key.sign(hash).to_bytes();
    let resigned = sign_bundle(
        &encode(&content),
        &[SigningInput {
            key_id: key_id(key.verifying_key().as_bytes()),
            sign: &sign,
        }],
    );
    let mut keys = TrustedKeys::new();
    keys.add(key.verifying_key().as_bytes()).expect("key");
    load(&resigned, &keys)
}

fn set_guarded(content: &mut hpl_runtime::bundle::BundleContent, manager: &str, guarded: bool) {
    let m = content
        .managers
        .iter()
        .position(|m| content.strings[m.id as usize] == manager)
        .expect("manager");
    content.managers[m].capabilities.guarded = guarded;
}

#[test]
fn a_bundle_that_unguards_a_guarded_manager_is_rejected_at_load() {
    match resigned(|c| set_guarded(c, "softwareupdate", false)) {
        Err(hpl_runtime::load::LoadError::Invalid { what }) => {
            assert!(what.contains("safety floor"), "{what}")
        }
        other => panic!(
            "expected the bundle to be rejected, got {:?}",
            other.map(|_| ())
        ),
    }
}

/// The floor is a minimum: a bundle that guards more is honoured (cargo-mutants: `||` → `&&`
/// between the bundle's bit and the floor in `authorize` survived every other test).
#[test]
fn a_bundle_that_guards_more_than_the_floor_is_honoured() {
    let inventory = hpl_runtime::inventory::Inventory::from_json_str(
        &std::fs::read_to_string("../examples/devices/platform-noncompliant.json").expect("read"),
    )
    .expect("inventory");
    let request: hpl_runtime::enforce::ActionRequest = serde_json::from_str(
        r#"{"action":"upgrade","manager":"homebrew_formula","package":"git","to":"2.47.1"}"#,
    )
    .expect("request");
    let now = 1_795_914_000;
    let settings = hpl_runtime::eval::Settings::default();
    let ask = |bundle: &hpl_runtime::load::VerifiedBundle| {
        hpl_runtime::enforce::authorize(bundle, &inventory, &request, now, &settings).decision
    };
    let plain = resigned(|_| {}).expect("loads");
    assert_eq!(ask(&plain), hpl_runtime::enforce::Verdict::Allow);
    let stricter = resigned(|c| set_guarded(c, "homebrew_formula", true)).expect("loads");
    assert_eq!(
        ask(&stricter),
        hpl_runtime::enforce::Verdict::NeedsConfirmation
    );
}

fn inventory_with(facts: serde_json::Value, collected_at: &str) -> serde_json::Value {
    serde_json::json!({
        "schema": "hpl.inventory.v1", "tenant_id": "acme", "device_id": "D",
        "collected_at": collected_at,
        "device": {"arch": "arm64", "os": {"name": "macos", "version": "15.3.2"}, "facts": facts},
        "managers": [{"id": "homebrew_formula", "packages": [{"name": "wget", "versions": ["1.25.0"]}]}],
    })
}

// 7. A fact list longer than a condition can read is an error with its path, never cut.
#[test]
fn over_long_fact_lists_are_inventory_errors_not_a_silent_false() {
    let mut list: Vec<String> = (0..1_500).map(|i| format!("pkg{i}")).collect();
    list.push("wget".into());
    let inv = inventory_with(
        serde_json::json!({"blocklist": list}),
        "2026-11-29T00:00:00Z",
    );
    let e = hpl_runtime::inventory::Inventory::from_json(&inv).expect_err("too long");
    let text = e.to_string();
    assert!(text.contains("$.device.facts[\"blocklist\"]"), "{text}");
    assert!(text.contains("1501 entries"), "{text}");
    // Nested too deep is an error too.
    let mut deep = serde_json::json!(1);
    for _ in 0..40 {
        deep = serde_json::json!([deep]);
    }
    let inv = inventory_with(serde_json::json!({"deep": deep}), "2026-11-29T00:00:00Z");
    assert!(hpl_runtime::inventory::Inventory::from_json(&inv).is_err());
    // At the limit it is read whole.
    let list: Vec<String> = (0..1_024).map(|i| format!("pkg{i}")).collect();
    let inv = inventory_with(
        serde_json::json!({"blocklist": list}),
        "2026-11-29T00:00:00Z",
    );
    assert!(hpl_runtime::inventory::Inventory::from_json(&inv).is_ok());
}

// 15. An inventory dated in the future is not fresh: beyond the clock-skew allowance it is
// unknown with a reason.
#[test]
fn an_inventory_from_the_future_is_unknown() {
    let text = std::fs::read_to_string("../examples/devices/design-compliant.json").expect("read");
    let mut inv: serde_json::Value = serde_json::from_str(&text).expect("json");
    let dir = std::env::temp_dir().join(format!("hpl-security-future-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut eval = |collected_at: &str| {
        inv["collected_at"] = serde_json::json!(collected_at);
        let path = dir.join(format!("inv-{}.json", collected_at.replace(':', "-")));
        std::fs::write(&path, inv.to_string()).expect("write");
        let (exit, out, err) = hpl(&[
            "eval",
            "--policy",
            "../examples/acme",
            "--inventory",
            path.to_str().expect("utf-8"),
            "--at",
            AT,
            "--format",
            "json",
        ]);
        assert!(err.is_empty(), "{err}");
        (exit, out)
    };
    // The device is compliant when its inventory is fresh, and a minute of skew is fine ...
    assert_eq!(eval("2026-11-29T01:30:00Z").0, 0);
    assert_eq!(eval("2026-11-29T02:01:00Z").0, 0);
    // ... but dated years ahead it is unknown, with the reason.
    let (exit, out) = eval("2999-01-01T00:00:00Z");
    assert_eq!(exit, 4, "{out}");
    assert!(out.contains("future_inventory"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

// 14. Directory link cycles in a policy directory are an error, not a hang; a FIFO named like
// a policy file is not read.
#[cfg(unix)]
/// `hpl check DIR` on a thread: its (exit, stdout, stderr), or a failure if it hangs.
fn check_within_20_s(dir: &std::path::Path) -> (i32, String, String) {
    let d = dir.to_str().expect("utf-8").to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(hpl(&["check", &d]));
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("check finishes")
}

#[test]
fn link_cycles_and_special_files_in_a_policy_directory_do_not_hang_check() {
    let dir = std::env::temp_dir().join(format!("hpl-security-cycle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a/b")).expect("dirs");
    std::fs::write(dir.join("a/p.hpl"), "tenant acme\n").expect("write");
    std::os::unix::fs::symlink(dir.join("a"), dir.join("a/b/back")).expect("link");
    std::os::unix::fs::symlink(dir.join("a"), dir.join("a/b/again")).expect("link");
    let (exit, _, err) = check_within_20_s(&dir);
    assert_eq!(exit, 2, "{err}");
    assert!(err.contains("link cycle"), "{err}");
    // A FIFO named like a policy file.
    std::fs::remove_file(dir.join("a/b/back")).expect("rm");
    std::fs::remove_file(dir.join("a/b/again")).expect("rm");
    let fifo = dir.join("a/b/q.hpl");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let (exit, _, err) = check_within_20_s(&dir);
    assert_eq!(exit, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `f` on a thread with a 256 KB stack (less than macOS gives secondary threads).
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no stack overflow or panic")
}

fn codes_of(source: String) -> Vec<String> {
    let analysis = hpl_compiler::analyze_sources(
        vec![hpl_compiler::source::SourceFile::new("p.hpl", source)],
        hpl_compiler::check::CheckOptions::default(),
    );
    analysis
        .diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect()
}

fn policy_when(condition: &str) -> String {
    format!(
        "tenant acme\npolicy p version 1 {{\n  scope org\n  require brew:jq when {condition}\n}}\n"
    )
}

// 8. Deep nesting and long chains are diagnostics, never a stack overflow, at a 256 KB stack.
#[test]
fn deep_and_long_conditions_are_diagnostics_on_a_small_stack() {
    let cases = vec![
        format!("{}true{}", "(".repeat(2_000), ")".repeat(2_000)),
        vec!["true"; 5_000].join(" && "),
        format!("{}true", "!".repeat(5_000)),
        format!("{} == 5000", vec!["1"; 5_000].join(" + ")),
        format!("[{}1{}]", "[".repeat(3_000), "]".repeat(3_000)),
    ];
    for condition in cases {
        let source = policy_when(&condition);
        let codes = on_small_stack(move || codes_of(source));
        assert!(codes.contains(&"HPL0306".to_string()), "{codes:?}");
    }
}

// 8 and 9. At the limits a condition checks, builds, loads and evaluates, all on a small stack.
#[test]
fn conditions_at_the_limits_build_and_evaluate_on_a_small_stack() {
    let nested = format!(
        "{}device.arch == \"arm64\"{}",
        "(".repeat(32),
        ")".repeat(32)
    );
    let chain = vec!["device.arch != \"x\""; 120].join(" && ");
    let ternary = format!("{}true", "false ? false : ".repeat(120));
    let macros = "device.groups.all(a, device.groups.all(b, a == b))".to_string();
    for condition in [nested, chain, ternary, macros] {
        on_small_stack(move || {
            let analysis = hpl_compiler::analyze_sources(
                vec![hpl_compiler::source::SourceFile::new(
                    "p.hpl",
                    policy_when(&condition),
                )],
                hpl_compiler::check::CheckOptions::default(),
            );
            assert!(
                !analysis.has_errors(),
                "{condition}: {:?}",
                analysis.diagnostics
            );
            let bundle = hpl_compiler::build::compile_verified(
                &analysis,
                &hpl_compiler::lower::BuildOptions {
                    bundle_version: 1,
                    issued_at: 1_795_900_000,
                    expires_at: None,
                    root: None,
                },
            )
            .expect("builds and verifies");
            let text = hpl_compiler::fmt::format_source(&policy_when(&condition)).expect("formats");
            assert!(!text.is_empty());
            let inv = hpl_runtime::inventory::Inventory::from_json(&inventory_with(
                serde_json::json!({}),
                "2026-11-29T00:00:00Z",
            ))
            .expect("inventory");
            let _ = hpl_runtime::eval::evaluate(&bundle, &inv, 1_795_914_000);
        });
    }
}

// 8. The verifier bounds its own recursion: a hand-made program nested deeper than any
// compiler output is rejected, not a stack overflow.
#[test]
fn the_verifier_rejects_deep_nesting_on_a_small_stack() {
    use hpl_runtime::vm::op::{BRANCH, JUMP, TRUE};
    // `true ? (true ? (… ? true : true) …) : true`, nested `depth` deep; the operand stack
    // stays shallow, so only the nesting is at stake.
    fn nest(depth: usize) -> Vec<u8> {
        let mut then = vec![TRUE];
        for _ in 0..depth {
            let t = then.len() as u32;
            let mut code = vec![TRUE, BRANCH];
            code.extend_from_slice(&(5 + t).to_le_bytes());
            code.extend_from_slice(&(6 + t).to_le_bytes());
            code.extend_from_slice(&then);
            code.push(JUMP);
            code.extend_from_slice(&1u32.to_le_bytes());
            code.push(TRUE);
            then = code;
        }
        then
    }
    let ok = nest(100);
    let deep = nest(3_000); // 48 KB, inside the 64 KB program limit
    let (shallow, deep) = on_small_stack(move || {
        (
            hpl_runtime::vm::verify(&ok, 0).is_ok(),
            hpl_runtime::vm::verify(&deep, 0).map(|_| ()),
        )
    });
    assert!(shallow);
    let e = deep.expect_err("too deep");
    assert_eq!(e.reason, "blocks nested too deeply");
}

// 6 and 9. The worst case is bounded: `hpl check` runs the runtime's verifier, so conditions
// beyond its ceilings are HPL0306 with the span (not an internal error at `hpl build`).
#[test]
fn costly_conditions_are_diagnostics_in_check() {
    let three = "device.groups.exists(a, device.groups.exists(b, device.groups.exists(c, a == c)))";
    assert!(codes_of(policy_when(three)).contains(&"HPL0306".to_string()));
    let five = "device.groups.all(a, device.groups.all(b, device.groups.all(c, device.groups.all(d, device.groups.all(e, a == e)))))";
    assert!(codes_of(policy_when(five)).contains(&"HPL0306".to_string()));
    let two = "device.groups.exists(a, device.groups.exists(b, a == b))";
    assert!(codes_of(policy_when(two)).is_empty());
}

// 6. What a condition builds is bounded too: concatenating a long fact with itself errs
// (the rule is `unknown`) instead of taking the device's memory.
#[test]
fn conditions_that_build_too_much_err_instead_of_exhausting_memory() {
    let condition = format!("({}).size() > 0", vec!["device.arch"; 120].join(" + "));
    let analysis = hpl_compiler::analyze_sources(
        vec![hpl_compiler::source::SourceFile::new(
            "p.hpl",
            policy_when(&condition),
        )],
        hpl_compiler::check::CheckOptions::default(),
    );
    assert!(!analysis.has_errors(), "{:?}", analysis.diagnostics);
    let bundle = hpl_compiler::build::compile_verified(
        &analysis,
        &hpl_compiler::lower::BuildOptions {
            bundle_version: 1,
            issued_at: 1_795_900_000,
            expires_at: None,
            root: None,
        },
    )
    .expect("bundle");
    let mut inv = inventory_with(serde_json::json!({}), "2026-11-29T00:00:00Z");
    inv["device"]["arch"] = serde_json::json!("x".repeat(100_000));
    let inv = hpl_runtime::inventory::Inventory::from_json(&inv).expect("inventory");
    let started = std::time::Instant::now();
    let record = hpl_runtime::eval::evaluate(&bundle, &inv, 1_795_914_000);
    assert!(
        record.unknown_reasons.iter().any(|u| u.code
            == hpl_runtime::vocab::UnknownCode::ConditionError
            && u.message.contains("memory bound")),
        "{:#?}",
        record.unknown_reasons
    );
    // Not a timing assertion of speed: a guard against the 110-second case coming back.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

// 6. A hand-made bundle condition with three nested macros is refused by the verifier.
#[test]
fn the_verifier_refuses_conditions_above_the_cost_ceiling() {
    use hpl_runtime::vm::op::{END, FIELD, ITER, TRUE};
    // device.groups.all(x, device.groups.all(y, device.groups.all(z, true)))
    fn all(body: Vec<u8>) -> Vec<u8> {
        let mut code = vec![FIELD, 9, ITER, 0];
        let mut inner = body;
        inner.push(END);
        code.extend_from_slice(&(inner.len() as u32).to_le_bytes());
        code.extend_from_slice(&inner);
        code
    }
    let two = all(all(vec![TRUE]));
    let three = all(all(all(vec![TRUE])));
    assert!(hpl_runtime::vm::verify(&two, 0).is_ok());
    let e = hpl_runtime::vm::verify(&three, 0).expect_err("too costly");
    assert!(e.reason.contains("ceiling"), "{}", e.reason);
}
