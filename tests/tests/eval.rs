//! Bundles and evaluation end to end: the example devices' records (reviewed snapshots), the
//! JSON Schemas, determinism of `build`, signatures, and robustness of `load`.

mod common;
use common::hpl;
use hpl_compiler::build::build_bundle;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_runtime::load::{load, LoadError, TrustedKeys};
use std::path::PathBuf;

const AT: &str = "2026-11-29T02:00:00Z";

fn devices() -> Vec<(String, PathBuf)> {
    let mut out: Vec<_> = std::fs::read_dir("../examples/devices")
        .expect("examples/devices")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_stem().expect("stem").to_string_lossy().into_owned(),
                p,
            )
        })
        .collect();
    out.sort();
    out
}

fn record(path: &std::path::Path) -> (i32, String) {
    let (exit, out, err) = hpl(&[
        "eval",
        "--policy",
        "../examples/acme",
        "--inventory",
        &path.to_string_lossy(),
        "--at",
        AT,
        "--format",
        "json",
    ]);
    assert!(err.is_empty(), "{err}");
    (exit, out)
}

#[test]
fn every_example_device_evaluates_to_its_reviewed_record() {
    for (name, path) in devices() {
        let (exit, json) = record(&path);
        let v: serde_json::Value = serde_json::from_str(&json).expect("record JSON");
        let expected_exit = match v["state"].as_str().expect("state") {
            "compliant" | "warning" => 0,
            "non_compliant" => 3,
            "unknown" => 4,
            other => panic!("{name}: state {other}"),
        };
        assert_eq!(exit, expected_exit, "{name}");
        insta::assert_snapshot!(format!("record_{name}"), json);
    }
}

#[test]
fn the_examples_show_every_state_category_and_precedence_rule() {
    let mut states = std::collections::BTreeSet::new();
    let mut categories = std::collections::BTreeSet::new();
    let mut records = std::collections::BTreeMap::new();
    for (name, path) in devices() {
        let v: serde_json::Value = serde_json::from_str(&record(&path).1).expect("json");
        states.insert(v["state"].as_str().expect("state").to_string());
        for violation in v["violations"].as_array().expect("violations") {
            categories.insert(
                violation["category"]
                    .as_str()
                    .expect("category")
                    .to_string(),
            );
        }
        records.insert(name, v);
    }
    assert_eq!(
        states.into_iter().collect::<Vec<_>>(),
        ["compliant", "non_compliant", "unknown", "warning"]
    );
    assert_eq!(
        categories.into_iter().collect::<Vec<_>>(),
        [
            "missing_required",
            "pin_mismatch",
            "present_denied",
            "unmanaged_toolchain",
            "version_out_of_range"
        ]
    );
    let has = |device: &str, category: &str, package: &str| {
        records[device]["violations"]
            .as_array()
            .expect("array")
            .iter()
            .any(|v| v["category"] == category && v["package"] == package)
    };
    let result = |device: &str, kind: &str, target: &str| -> Vec<String> {
        records[device]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter(|r| r["kind"] == kind && r["target"] == target)
            .map(|r| {
                format!(
                    "{}:{}",
                    r["rule"]["scope"].as_str().unwrap_or(""),
                    r["result"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    // The most specific level wins: the build agents' group allows telnet over the org deny.
    assert!(!has("build-agent-compliant", "present_denied", "telnet"));
    assert_eq!(
        result("build-agent-compliant", "allow", "homebrew_formula:telnet"),
        ["device_group:build_agents:pass"]
    );
    // ... and the CI environment's deny of Chrome beats the org's require.
    assert!(!has(
        "build-agent-compliant",
        "missing_required",
        "google-chrome"
    ));
    // At one level an exact matcher beats a glob: contractors may have typescript, not prettier.
    assert!(!has("contractor-web", "present_denied", "typescript"));
    assert!(has("contractor-web", "present_denied", "prettier"));
    // A deny with a range decides only inside it.
    assert!(has("web-observe", "present_denied", "node-ipc"));
    assert!(!has("web-observe", "present_denied", "colors"));
    assert!(!has("web-observe", "present_denied", "event-stream"));
    // A final deny decides first.
    assert!(has("security-lab", "present_denied", "john-jumbo"));
    assert!(!has("security-lab", "present_denied", "hashcat"));
    assert!(has("ci-runner-intel", "present_denied", "event-stream"));
    // Pins: the most specific pin wins, and they are their own dimension.
    assert!(has("platform-noncompliant", "pin_mismatch", "terraform"));
    // A deny that fires makes the pin `skip`: the remedy is to uninstall, not to pin.
    assert!(
        has("pilot-mixed", "present_denied", "python")
            && !has("pilot-mixed", "pin_mismatch", "python")
    );
    // Observe mode plans nothing.
    assert!(records["web-observe"]["remediation"]
        .as_array()
        .expect("remediation")
        .is_empty());
}

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(format!("../docs/schemas/{name}")).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

#[test]
fn inventories_and_records_validate_against_the_published_schemas() {
    let inventory = schema("inventory.v1.json");
    let record_schema = schema("record.v1.json");
    for (name, path) in devices() {
        let inv: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        if let Err(e) = inventory.validate(&inv) {
            panic!("{name}: inventory does not match its schema: {e}");
        }
        let rec: serde_json::Value = serde_json::from_str(&record(&path).1).expect("json");
        if let Err(e) = record_schema.validate(&rec) {
            panic!("{name}: record does not match its schema: {e}");
        }
    }
    // The schema is not vacuous.
    let bad = serde_json::json!({"schema": "hpl.record.v1", "state": "fine"});
    assert!(record_schema.validate(&bad).is_err());
}

#[test]
fn the_table_format_is_for_people() {
    let (exit, out, _) = hpl(&[
        "eval",
        "--policy",
        "../examples/acme",
        "--inventory",
        "../examples/devices/platform-noncompliant.json",
        "--at",
        AT,
    ]);
    assert_eq!(exit, 3);
    insta::assert_snapshot!("record_table_platform", out);
}

fn analysis() -> hpl_compiler::Analysis {
    let files =
        hpl_compiler::driver::load_files(&[PathBuf::from("../examples/acme")]).expect("examples");
    hpl_compiler::analyze_sources(files, CheckOptions::default())
}

fn options() -> BuildOptions {
    BuildOptions {
        bundle_version: 31,
        issued_at: 1_795_900_000,
        expires_at: Some(1_798_500_000),
        root: Some(PathBuf::from("../examples/acme")),
    }
}

fn key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn example_bundle() -> (Vec<u8>, TrustedKeys) {
    let k = key(1);
    let bytes = build_bundle(&analysis(), &options(), &[&k]).expect("build");
    let mut trusted = TrustedKeys::new();
    trusted.add(k.verifying_key().as_bytes()).expect("key");
    (bytes, trusted)
}

#[test]
fn build_is_deterministic_whatever_the_directory() {
    let (a, _) = example_bundle();
    let (b, _) = example_bundle();
    assert_eq!(a, b);
    // The same sources copied elsewhere give the same bytes.
    let dir = std::env::temp_dir()
        .join(format!("hpl-determinism-{}", std::process::id()))
        .join("policies");
    std::fs::create_dir_all(&dir).expect("temp dir");
    for entry in std::fs::read_dir("../examples/acme").expect("examples") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "hpl") {
            std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    let files = hpl_compiler::driver::load_files(std::slice::from_ref(&dir)).expect("copy");
    let analysis = hpl_compiler::analyze_sources(files, CheckOptions::default());
    let opts = BuildOptions {
        root: Some(dir.clone()),
        ..options()
    };
    let c = build_bundle(&analysis, &opts, &[&key(1)]).expect("build");
    assert_eq!(a, c);
    std::fs::remove_dir_all(dir.parent().expect("parent")).ok();
}

#[test]
fn the_cli_builds_verifies_and_inspects() {
    let dir = std::env::temp_dir().join(format!("hpl-cli-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let k = dir.join("key");
    let other = dir.join("other");
    let out = dir.join("acme.hplb");
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    assert_eq!(hpl(&["keygen", "--out", &s(&k)]).0, 0);
    assert_eq!(hpl(&["keygen", "--out", &s(&other)]).0, 0);
    let (exit, _, err) = hpl(&[
        "build",
        "../examples/acme",
        "-o",
        &s(&out),
        "--sign-key",
        &s(&k),
        "--bundle-version",
        "31",
        "--issued-at",
        AT,
        "--expires-in",
        "30d",
    ]);
    assert_eq!(exit, 0, "{err}");
    let (exit, text, _) = hpl(&["verify", &s(&out), "--key", &format!("{}.pub", s(&k))]);
    assert_eq!(exit, 0, "{text}");
    assert!(text.starts_with("valid: tenant acme, bundle version 31"));
    let (exit, text, _) = hpl(&["verify", &s(&out), "--key", &format!("{}.pub", s(&other))]);
    assert_eq!(exit, 1);
    assert!(text.starts_with("invalid (unknown_key)"), "{text}");
    let (exit, record, _) = hpl(&[
        "eval",
        "--bundle",
        &s(&out),
        "--key",
        &format!("{}.pub", s(&k)),
        "--inventory",
        "../examples/devices/design-compliant.json",
        "--at",
        AT,
    ]);
    assert_eq!(exit, 0, "{record}");
    // An expired bundle makes the record unknown.
    let (exit, record, _) = hpl(&[
        "eval",
        "--bundle",
        &s(&out),
        "--key",
        &format!("{}.pub", s(&k)),
        "--inventory",
        "../examples/devices/design-compliant.json",
        "--at",
        "2027-01-15T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(exit, 4);
    // An expired bundle is no valid snapshot, for eval as for authorize.
    assert!(record.contains("no_valid_snapshot"), "{record}");
    assert!(record.contains("expired at"), "{record}");
    let (exit, decision, _) = hpl(&[
        "authorize",
        "--bundle",
        &s(&out),
        "--key",
        &format!("{}.pub", s(&k)),
        "--inventory",
        "../examples/devices/design-compliant.json",
        "--action",
        r#"{"action":"install","manager":"homebrew_formula","package":"jq"}"#,
        "--at",
        "2027-01-15T00:00:00Z",
    ]);
    assert_eq!(exit, 6, "{decision}");
    assert!(decision.contains("no_valid_snapshot"), "{decision}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inspect_shows_the_manifest_tables_and_disassembly() {
    let (bytes, _) = example_bundle();
    let (content, hash, sigs) = hpl_runtime::load::open_envelope(&bytes).expect("envelope");
    let c = hpl_runtime::bundle::decode_content(content, 10).expect("decode");
    let text = hpl_compiler_cli_describe(&c, &hash, &sigs);
    insta::assert_snapshot!("inspect_disasm", text);
}

fn hpl_compiler_cli_describe(
    c: &hpl_runtime::bundle::BundleContent,
    hash: &[u8; 32],
    sigs: &[([u8; 8], [u8; 64])],
) -> String {
    // `hpl inspect` on a file gives the same text; use the file path to exercise the CLI too.
    let dir = std::env::temp_dir().join(format!("hpl-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp");
    let path = dir.join("b.hplb");
    let (bytes, _) = example_bundle();
    std::fs::write(&path, bytes).expect("write");
    let (exit, out, _) = hpl(&["inspect", "--disasm", &path.to_string_lossy()]);
    assert_eq!(exit, 0);
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.contains(&format!("tables      {} strings", c.strings.len())));
    assert!(out.contains(&hpl_runtime::load::hex(hash)));
    assert_eq!(sigs.len(), 1);
    out
}

#[test]
fn every_byte_flip_and_every_truncation_is_rejected_with_a_typed_error() {
    let (bytes, keys) = example_bundle();
    assert!(load(&bytes, &keys).is_ok());
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x01;
        match load(&flipped, &keys) {
            Ok(_) => panic!("a flip at byte {i} was accepted"),
            Err(e) => *codes.entry(e.code()).or_insert(0) += 1,
        }
    }
    for len in 0..bytes.len() {
        match load(&bytes[..len], &keys) {
            Ok(_) => panic!("a truncation to {len} bytes was accepted"),
            Err(e) => *codes.entry(e.code()).or_insert(0) += 1,
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(load(&longer, &keys).err(), Some(LoadError::TrailingBytes));
    // Every failure mode we expect shows up, and nothing else.
    let seen: Vec<&str> = codes.keys().copied().collect();
    assert_eq!(
        seen,
        [
            "bad_signature",
            "not_a_bundle",
            "tampered",
            "trailing_bytes",
            "truncated",
            "unknown_key",
            "unsupported_format"
        ],
        "{codes:?}"
    );
}
