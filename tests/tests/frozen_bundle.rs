//! A bundle built by the format-1 compiler and checked in (tests/fixtures/bundles): every
//! runtime must keep loading it and deciding it. Bundles already on devices outlive the
//! compiler that made them, so a renumbered enum, a reordered section or a changed marker
//! breaks the fleet; this test breaks first.

mod common;
use common::hpl;
use hpl_runtime::load::{load, TrustedKeys};

const BUNDLE: &str = "fixtures/bundles/acme-format1.hplb";
const KEY: &str = "fixtures/bundles/test.key.pub";

fn trusted() -> TrustedKeys {
    let text = std::fs::read_to_string(KEY).expect("key");
    let hex = text.trim().trim_start_matches("hpl-ed25519-public:");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let mut keys = TrustedKeys::new();
    keys.add(&bytes.try_into().expect("32 bytes")).expect("key");
    keys
}

#[test]
fn the_format_1_bundle_still_loads_with_its_tables() {
    let bytes = std::fs::read(BUNDLE).expect("bundle");
    let bundle = load(&bytes, &trusted()).expect("a format-1 bundle loads");
    let c = bundle.content();
    assert_eq!(c.manifest.tenant, "acme");
    assert_eq!(c.manifest.bundle_version, 7);
    assert_eq!(c.policies.len(), 14);
    assert_eq!(c.rules.len(), 123);
    assert_eq!(
        bundle.hash_string(),
        "sha256:2033404f3c2bb4537c93129d1b3bc540aff8cf3f6b3531ef8cf6ecbb6690aa9e"
    );
}

#[test]
fn the_format_1_bundle_still_decides_every_example_device() {
    let mut out = String::new();
    for device in [
        "platform-noncompliant",
        "contractor-web",
        "security-lab",
        "pilot-mixed",
        "ci-runner-intel",
    ] {
        let inventory = format!("../examples/devices/{device}.json");
        let (exit, table, err) = hpl(&[
            "eval",
            "--bundle",
            BUNDLE,
            "--key",
            KEY,
            "--inventory",
            &inventory,
            "--at",
            "2026-11-29T02:00:00Z",
        ]);
        assert!(err.is_empty(), "{err}");
        out.push_str(&format!("## {device} (exit {exit})\n{table}\n"));
    }
    insta::assert_snapshot!("frozen_bundle_records", out);
}
