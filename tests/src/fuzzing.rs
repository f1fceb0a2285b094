//! The fuzz targets' bodies, as plain functions: `fuzz/` runs them under libFuzzer
//! (`fuzz/run.sh`), and `tests/tests/fuzz_smoke.rs` runs them on the seed corpus and on
//! generated inputs in every CI run. Each must return normally on any bytes; a panic, a hang
//! or a broken invariant (asserted here) is a finding.

use ed25519_dalek::{Signer, SigningKey};
use hpl_compiler::check::CheckOptions;
use hpl_compiler::source::SourceFile;
use hpl_runtime::bundle::{sign_bundle, SigningInput};
use hpl_runtime::device::Device;
use hpl_runtime::inventory::Inventory;
use hpl_runtime::load::{key_id, load, TrustedKeys, VerifiedBundle};
use std::sync::OnceLock;

const NOW: i64 = 1_795_914_000;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_bytes(&[11; 32]))
}

fn trusted() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    let _ = keys.add(key().verifying_key().as_bytes());
    keys
}

/// The example organisation, compiled once.
pub fn acme() -> &'static VerifiedBundle {
    static B: OnceLock<VerifiedBundle> = OnceLock::new();
    B.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/acme");
        let files = hpl_compiler::driver::load_files(&[root]).expect("examples");
        let analysis = hpl_compiler::analyze_sources(files, CheckOptions::default());
        hpl_compiler::build::compile_verified(
            &analysis,
            &hpl_compiler::lower::BuildOptions {
                bundle_version: 1,
                issued_at: NOW - 3600,
                expires_at: None,
                root: None,
            },
        )
        .expect("the example compiles")
    })
}

fn example_inventory() -> &'static Inventory {
    static I: OnceLock<Inventory> = OnceLock::new();
    I.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/devices/platform-noncompliant.json");
        Inventory::from_json_str(&std::fs::read_to_string(path).expect("read")).expect("inventory")
    })
}

/// Source text → the whole front end.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = hpl_compiler::analyze_sources(
        vec![SourceFile::new("fuzz.hpl", text)],
        CheckOptions::default(),
    );
}

/// Source text → fmt → fmt again: idempotent, and formatting keeps the diagnostics' codes.
pub fn fmt(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let Ok(once) = hpl_compiler::fmt::format_source(&text) else {
        return;
    };
    let twice = hpl_compiler::fmt::format_source(&once).expect("formatted text parses");
    assert_eq!(once, twice, "fmt is idempotent");
    let codes = |t: &str| {
        let mut c: Vec<String> = hpl_compiler::analyze_sources(
            vec![SourceFile::new("fuzz.hpl", t.to_string())],
            CheckOptions::default(),
        )
        .diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect();
        c.sort();
        c
    };
    assert_eq!(codes(&text), codes(&once), "fmt keeps the meaning");
}

/// Bytes as a bundle: rejected or loaded, never a panic.
pub fn bundle_load(data: &[u8]) {
    let _ = load(data, &trusted());
}

/// Arbitrary content, properly signed: only the verifier stands between it and evaluation.
pub fn bundle_eval(data: &[u8]) {
    let sign = |hash: &[u8; 32]| key().sign(hash).to_bytes();
    let bytes = sign_bundle(
        data,
        &[SigningInput {
            key_id: key_id(key().verifying_key().as_bytes()),
            sign: &sign,
        }],
    );
    if let Ok(bundle) = load(&bytes, &trusted()) {
        let record = hpl_runtime::eval::evaluate(&bundle, example_inventory(), NOW);
        assert!(!record.device_id.is_empty());
    }
}

/// Inventory JSON → evaluation against the example organisation.
pub fn inventory(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(inv) = Inventory::from_json_str(text) {
        let _ = hpl_runtime::eval::evaluate(acme(), &inv, NOW);
    }
}

/// A request → authorization: never a panic, and a request that cannot be read is denied.
pub fn authorize(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let device = Device::with_bundle(acme().clone(), None);
    let d = device.authorize_json(example_inventory(), &text, NOW);
    if serde_json::from_str::<hpl_runtime::enforce::ActionRequest>(&text).is_err() {
        assert_eq!(d.decision, hpl_runtime::enforce::Verdict::Deny);
    }
}

/// MDM configuration bytes (JSON, XML or binary plist).
pub fn config(data: &[u8]) {
    let _ = hpl_runtime::config::ManagedConfig::parse_bytes(data);
}

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, for the smoke test and `fuzz/run.sh`.
pub const TARGETS: &[(&str, Target)] = &[
    ("check", check),
    ("fmt", fmt),
    ("bundle_load", bundle_load),
    ("bundle_eval", bundle_eval),
    ("inventory", inventory),
    ("authorize", authorize),
    ("config", config),
];
