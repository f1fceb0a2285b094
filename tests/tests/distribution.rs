//! Ring manifests in the snapshot store (issue 11, docs/distribution.md): the distribution
//! role points a ring at a bundle CI signed — newer or older — and cannot replay, outlive its
//! expiry, or stand in for the policy role.

use ed25519_dalek::{Signer, SigningKey};
use hpl_compiler::build::build_bundle;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_runtime::bundle::SigningInput;
use hpl_runtime::load::{key_id, load, TrustedKeys};
use hpl_runtime::manifest::{sign_manifest, RingManifest};
use hpl_runtime::store::{Rejection, SnapshotStore};
use std::path::PathBuf;
use std::sync::OnceLock;

const NOW: i64 = 1_795_914_000; // 2026-11-29T01:00:00Z
const DAY: i64 = 86_400;

fn policy_key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn distribution_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn trusting(k: &SigningKey) -> TrustedKeys {
    let mut t = TrustedKeys::new();
    t.add(k.verifying_key().as_bytes()).unwrap();
    t
}

fn analysis() -> &'static hpl_compiler::Analysis {
    static A: OnceLock<hpl_compiler::Analysis> = OnceLock::new();
    A.get_or_init(|| {
        let files = hpl_compiler::driver::load_files(&[PathBuf::from("../examples/acme")]).unwrap();
        hpl_compiler::analyze_sources(files, CheckOptions::default())
    })
}

/// Bundle `version`, signed by the policy key (or `key`).
fn bundle_by(version: u64, key: &SigningKey) -> Vec<u8> {
    build_bundle(
        analysis(),
        &BuildOptions {
            bundle_version: version,
            issued_at: NOW - 3600,
            expires_at: None,
            root: None,
        },
        &[key],
    )
    .unwrap()
}

fn bundle(version: u64) -> Vec<u8> {
    bundle_by(version, &policy_key())
}

fn hash_of(bytes: &[u8]) -> [u8; 32] {
    *load(bytes, &trusting(&policy_key())).unwrap().hash()
}

/// A manifest of the canary ring naming `bundle`, signed by `key`.
fn manifest_by(
    bundle: &[u8],
    version: u64,
    manifest_version: u64,
    expires_at: i64,
    key: &SigningKey,
) -> Vec<u8> {
    let m = RingManifest {
        tenant: "acme".into(),
        ring: "canary".into(),
        bundle_hash: hash_of(bundle),
        bundle_version: version,
        manifest_version,
        issued_at: NOW - 60,
        expires_at,
    };
    let id = key_id(key.verifying_key().as_bytes());
    let sign = |d: &[u8; 32]| key.sign(d).to_bytes();
    sign_manifest(
        &m,
        &[SigningInput {
            key_id: id,
            sign: &sign,
        }],
    )
}

fn manifest(bundle: &[u8], version: u64, manifest_version: u64) -> Vec<u8> {
    manifest_by(
        bundle,
        version,
        manifest_version,
        NOW + 7 * DAY,
        &distribution_key(),
    )
}

fn store(name: &str) -> SnapshotStore {
    let dir = std::env::temp_dir().join(format!("hpl-distribution-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    SnapshotStore::open(&dir, trusting(&policy_key()), Some("acme".into()))
        .unwrap()
        .with_distribution_keys(trusting(&distribution_key()))
}

fn active_version(s: &SnapshotStore, now: i64) -> Option<u64> {
    s.active(now).map(|b| b.content().manifest.bundle_version)
}

#[test]
fn a_rollback_manifest_makes_an_older_bundle_active_without_resigning() {
    let s = store("rollback");
    let (v1, v2) = (bundle(1), bundle(2));
    s.install(&v1, NOW).unwrap();
    s.install(&v2, NOW).unwrap();
    assert_eq!(active_version(&s, NOW), Some(2));
    // Directly, version 1 is a replay …
    assert!(matches!(
        s.install(&v1, NOW),
        Err(Rejection::NotNewer { .. })
    ));
    // … but a manifest may name it: the ring is rolled back.
    s.install_manifest(&manifest(&v1, 1, 1), None, NOW).unwrap();
    assert_eq!(active_version(&s, NOW), Some(1));
    assert_eq!(s.manifest("acme").unwrap().manifest_version, 1);
    // Forward again with the next manifest, the bundle sent along.
    let v3 = bundle(3);
    s.install_manifest(&manifest(&v3, 3, 2), Some(&v3), NOW)
        .unwrap();
    assert_eq!(active_version(&s, NOW), Some(3));
}

#[test]
fn replayed_and_older_manifests_are_refused() {
    let s = store("replay");
    let (v1, v2) = (bundle(1), bundle(2));
    s.install_manifest(&manifest(&v2, 2, 5), Some(&v2), NOW)
        .unwrap();
    let old = manifest(&v1, 1, 4);
    match s.install_manifest(&old, Some(&v1), NOW) {
        Err(Rejection::ManifestReplay {
            version: 4,
            highest: 5,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let again = s.install_manifest(&manifest(&v2, 2, 5), None, NOW);
    assert_eq!(again.unwrap_err().code(), "manifest_replay");
    assert_eq!(active_version(&s, NOW), Some(2));
}

#[test]
fn expired_manifests_are_refused_and_one_that_expires_leaves_no_valid_snapshot() {
    let s = store("expiry");
    let v1 = bundle(1);
    let stale = manifest_by(&v1, 1, 1, NOW - 1, &distribution_key());
    assert_eq!(
        s.install_manifest(&stale, Some(&v1), NOW)
            .unwrap_err()
            .code(),
        "manifest_expired"
    );
    s.install_manifest(
        &manifest_by(&v1, 1, 2, NOW + DAY, &distribution_key()),
        Some(&v1),
        NOW,
    )
    .unwrap();
    assert_eq!(active_version(&s, NOW), Some(1));
    // A frozen manifest stops working: no valid snapshot, never the newest bundle instead.
    assert_eq!(active_version(&s, NOW + DAY), None);
}

/// Each key for its role: the policy key cannot sign a manifest, the distribution key cannot
/// sign a bundle.
#[test]
fn each_key_is_trusted_for_its_role_only() {
    let s = store("roles");
    let v1 = bundle(1);
    let by_policy_key = manifest_by(&v1, 1, 1, NOW + DAY, &policy_key());
    assert_eq!(
        s.install_manifest(&by_policy_key, Some(&v1), NOW)
            .unwrap_err()
            .code(),
        "manifest_unknown_key"
    );
    let by_distribution_key = bundle_by(1, &distribution_key());
    let m = manifest_by(&v1, 1, 1, NOW + DAY, &distribution_key());
    assert_eq!(
        s.install_manifest(&m, Some(&by_distribution_key), NOW)
            .unwrap_err()
            .code(),
        "unknown_key"
    );
    assert!(s.install(&by_distribution_key, NOW).is_err());
    // Without distribution keys a store refuses every manifest.
    let plain = SnapshotStore::open(s.dir().join("plain"), trusting(&policy_key()), None).unwrap();
    assert!(plain.install_manifest(&m, Some(&v1), NOW).is_err());
}

#[test]
fn a_manifest_must_name_the_bundle_it_comes_with() {
    let s = store("mismatch");
    let (v1, v2) = (bundle(1), bundle(2));
    // Version 2's bytes under a manifest for version 1's hash.
    let m = manifest(&v1, 1, 1);
    assert_eq!(
        s.install_manifest(&m, Some(&v2), NOW).unwrap_err().code(),
        "manifest_mismatch"
    );
    // A manifest for a bundle the store does not have, sent without it.
    assert_eq!(
        s.install_manifest(&m, None, NOW).unwrap_err().code(),
        "manifest_mismatch"
    );
    assert_eq!(active_version(&s, NOW), None);
}

#[test]
fn a_newer_bundle_installed_directly_supersedes_the_manifest_which_cannot_come_back() {
    let s = store("supersede");
    let (v1, v2) = (bundle(1), bundle(2));
    s.install(&v1, NOW).unwrap();
    s.install_manifest(&manifest(&v1, 1, 1), None, NOW).unwrap();
    s.install(&v2, NOW).unwrap();
    assert_eq!(active_version(&s, NOW), Some(2));
    assert!(s.manifest("acme").is_none());
    assert_eq!(
        s.install_manifest(&manifest(&v1, 1, 1), None, NOW)
            .unwrap_err()
            .code(),
        "manifest_replay"
    );
}

#[test]
fn a_tampered_manifest_file_means_no_valid_snapshot() {
    let s = store("tamper");
    let v1 = bundle(1);
    s.install_manifest(&manifest(&v1, 1, 1), Some(&v1), NOW)
        .unwrap();
    let file = std::fs::read_dir(s.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "hplm"))
        .expect("the manifest file");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(active_version(&s, NOW), None);
}

mod common;

/// The same through the CLI, with the keys from an MDM configuration.
#[test]
fn snapshot_install_follows_a_manifest_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("hpl-distribution-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hex = |k: &SigningKey| {
        k.verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let config = dir.join("mdm.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"hpl-ed25519-public:{}"}}],"distribution_keys":[{{"public_key":"hpl-ed25519-public:{}"}}]}}"#,
            hex(&policy_key()),
            hex(&distribution_key())
        ),
    )
    .unwrap();
    let (v1, v2) = (bundle(1), bundle(2));
    let p = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (b1, b2, m1) = (
        p("v1.hplb", &v1),
        p("v2.hplb", &v2),
        p("m1.hplm", &manifest(&v1, 1, 1)),
    );
    let store = dir.join("store").to_str().unwrap().to_string();
    let cfg = config.to_str().unwrap().to_string();
    let at = "2026-11-29T01:00:00Z";
    let run = |extra: &[&str]| {
        let mut args = vec!["snapshot"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--store", &store, "--config", &cfg, "--at", at]);
        common::hpl(&args)
    };
    assert_eq!(run(&["install", &b2]).0, 0);
    // The manifest names version 1 and brings it along.
    let (exit, out, err) = run(&["install", "--manifest", &m1, &b1]);
    assert_eq!(exit, 0, "{out}{err}");
    let (_, status, _) = run(&["status"]);
    assert!(status.contains("bundle version 1"), "{status}");
    // Again: a replay.
    let (exit, out, _) = run(&["install", "--manifest", &m1]);
    assert_eq!(exit, 1);
    assert!(out.contains("rejected (manifest_replay)"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
