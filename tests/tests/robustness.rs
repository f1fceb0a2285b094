//! No panic on any bytes as a bundle, and a verified bundle never panics when evaluated —
//! even when its content was altered and then properly re-signed (so only the verifier
//! stands between the bytes and the VM).

use ed25519_dalek::{Signer, SigningKey};
use hpl_compiler::build::build_bundle;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_runtime::bundle::{sign_bundle, SigningInput};
use hpl_runtime::inventory::Inventory;
use hpl_runtime::load::{key_id, load, open_envelope, TrustedKeys};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Fixture {
    key: SigningKey,
    keys: TrustedKeys,
    content: Vec<u8>,
    inventories: Vec<Inventory>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let files = hpl_compiler::driver::load_files(&[PathBuf::from("../examples/acme")])
            .expect("examples");
        let analysis = hpl_compiler::analyze_sources(files, CheckOptions::default());
        let key = SigningKey::from_bytes(&[3; 32]);
        let options = BuildOptions {
            bundle_version: 1,
            issued_at: 1_795_900_000,
            expires_at: None,
            root: None,
        };
        let bytes = build_bundle(&analysis, &options, &[&key]).expect("build");
        let content = open_envelope(&bytes).expect("envelope").0.to_vec();
        let mut keys = TrustedKeys::new();
        keys.add(key.verifying_key().as_bytes()).expect("key");
        let inventories = ["platform-noncompliant", "contractor-web", "pilot-mixed"]
            .iter()
            .map(|d| {
                Inventory::from_json_str(
                    &std::fs::read_to_string(format!("../examples/devices/{d}.json"))
                        .expect("read"),
                )
                .expect("inventory")
            })
            .collect();
        Fixture {
            key,
            keys,
            content,
            inventories,
        }
    })
}

fn resign(f: &Fixture, content: &[u8]) -> Vec<u8> {
    let sign = |hash: &[u8; 32]| f.key.sign(hash).to_bytes();
    sign_bundle(
        content,
        &[SigningInput {
            key_id: key_id(f.key.verifying_key().as_bytes()),
            sign: &sign,
        }],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_rejected_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let f = fixture();
        prop_assert!(load(&bytes, &f.keys).is_err());
        let mut with_magic = b"HPLB\x01\x00".to_vec();
        with_magic.extend_from_slice(&bytes);
        prop_assert!(load(&with_magic, &f.keys).is_err());
    }

    #[test]
    fn altered_and_resigned_content_is_rejected_or_evaluates_without_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let f = fixture();
        let mut content = f.content.clone();
        for (at, byte) in &edits {
            let i = at.index(content.len());
            content[i] = *byte;
        }
        let bytes = resign(f, &content);
        if let Ok(bundle) = load(&bytes, &f.keys) {
            for inventory in &f.inventories {
                let record = hpl_runtime::eval::evaluate(&bundle, inventory, 1_795_914_000);
                prop_assert!(!record.device_id.is_empty());
            }
        }
    }
}

#[test]
fn the_untouched_content_resigned_still_loads() {
    let f = fixture();
    assert!(load(&resign(f, &f.content), &f.keys).is_ok());
}

/// Re-signed content with one rule table entry changed, decoded and encoded again.
fn resigned_with(
    f: &Fixture,
    change: impl FnOnce(&mut hpl_runtime::bundle::BundleContent),
) -> Vec<u8> {
    let mut content = hpl_runtime::bundle::decode_content(&f.content, 0).expect("decodes");
    change(&mut content);
    resign(f, &hpl_runtime::bundle::encode(&content))
}

// Issue 8, defect 10: a "final" require would be decided as a final deny.
#[test]
fn the_verifier_rejects_a_final_flag_on_a_rule_that_is_not_a_deny() {
    let f = fixture();
    for kind in [
        hpl_runtime::vocab::RuleKind::Require,
        hpl_runtime::vocab::RuleKind::Allow,
    ] {
        let bytes = resigned_with(f, |c| {
            let r = c
                .rules
                .iter_mut()
                .find(|r| r.kind == kind && !r.glob)
                .expect("a rule of this kind");
            r.is_final = true;
        });
        match load(&bytes, &f.keys) {
            Err(hpl_runtime::load::LoadError::Invalid { what }) => {
                assert!(what.contains("only a deny can be final"), "{what}")
            }
            other => panic!("{kind}: expected invalid, got {other:?}"),
        }
    }
    // The same edit on a deny is a plain final deny: accepted.
    let bytes = resigned_with(f, |c| {
        let r = c
            .rules
            .iter_mut()
            .find(|r| r.kind == hpl_runtime::vocab::RuleKind::Deny && !r.is_final)
            .expect("a deny");
        r.is_final = true;
    });
    assert!(load(&bytes, &f.keys).is_ok());
}

#[test]
fn the_verifier_rejects_a_parent_on_a_scope_that_is_not_a_team() {
    let f = fixture();
    let bytes = resigned_with(f, |c| {
        let env = c
            .scopes
            .iter_mut()
            .find(|s| s.level == hpl_runtime::vocab::Level::Environment)
            .expect("an environment");
        env.parent = Some(0);
    });
    assert!(matches!(
        load(&bytes, &f.keys),
        Err(hpl_runtime::load::LoadError::Invalid { .. })
    ));
}
