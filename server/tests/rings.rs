//! The control plane's core on SQLite, and on PostgreSQL when `HPL_TEST_DATABASE_URL` is set
//! (`.ci/run` sets it to the machine's PostgreSQL): tenants, releases, rings, manifests a
//! device's snapshot store follows, the audit trail, credentials.

use ed25519_dalek::SigningKey;
use hpl_runtime::load::TrustedKeys;
use hpl_runtime::store::SnapshotStore;
use hpl_server::rings::{self, Initialised};
use hpl_server::{auth, Principal, ServerError};
use std::sync::atomic::Ordering;

mod common;
use common::*;

fn distribution_keys(init: &Initialised) -> TrustedKeys {
    let text = init
        .distribution_public_key
        .strip_prefix("hpl-ed25519-public:")
        .unwrap();
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut distribution = TrustedKeys::new();
    distribution.add(&bytes.try_into().unwrap()).unwrap();
    distribution
}

fn device_store(name: &str, init: &Initialised) -> SnapshotStore {
    let dir = std::env::temp_dir().join(format!(
        "hpl-server-device-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut policy = TrustedKeys::new();
    policy.add(policy_key().verifying_key().as_bytes()).unwrap();
    SnapshotStore::open(dir, policy, Some("acme".into()))
        .unwrap()
        .with_distribution_keys(distribution_keys(init))
}

#[tokio::test]
async fn releases_move_ring_by_ring_and_devices_follow_the_manifests() {
    for db in databases("flow").await {
        let (init, owner) = setup(&db).await;
        assert_eq!(rings::init(&db, NOW).await.unwrap_err().code(), "conflict");
        // The health gate is tested on its own (tests/gate.rs); here it asks for no records.
        let lenient = hpl_server::health::Thresholds {
            min_records: 0,
            ..Default::default()
        };
        rings::set_thresholds(&db, &owner, "acme", &lenient, NOW)
            .await
            .unwrap();
        let r1 = rings::publish(&db, &owner, "acme", &bundle(1), NOW)
            .await
            .unwrap();
        assert!(r1.new);
        assert!(
            !rings::publish(&db, &owner, "acme", &bundle(1), NOW)
                .await
                .unwrap()
                .new,
            "idempotent"
        );
        let foreign = bundle_by(3, &SigningKey::from_bytes(&[6; 32]));
        assert_eq!(
            rings::publish(&db, &owner, "acme", &foreign, NOW)
                .await
                .unwrap_err()
                .code(),
            "invalid"
        );
        assert_eq!(
            rings::publish(&db, &owner, "acme", b"not a bundle", NOW)
                .await
                .unwrap_err()
                .code(),
            "invalid"
        );

        rings::promote(&db, &owner, "acme", "canary", 1, NOW)
            .await
            .unwrap();
        let skip = rings::promote(&db, &owner, "acme", "broad", 1, NOW)
            .await
            .unwrap_err();
        assert!(
            skip.to_string().contains("does not run on `pilot`"),
            "{skip}"
        );
        rings::promote(&db, &owner, "acme", "pilot", 1, NOW)
            .await
            .unwrap();

        let device = device_store("flow", &init);
        let (m, b) = rings::current(&db, "acme", "canary").await.unwrap();
        device.install_manifest(&m, Some(&b), NOW).unwrap();
        assert_eq!(
            device
                .active(NOW)
                .unwrap()
                .content()
                .manifest
                .bundle_version,
            1
        );

        rings::publish(&db, &owner, "acme", &bundle(2), NOW)
            .await
            .unwrap();
        rings::promote(&db, &owner, "acme", "canary", 2, NOW)
            .await
            .unwrap();
        let (m2, b2) = rings::current(&db, "acme", "canary").await.unwrap();
        device.install_manifest(&m2, Some(&b2), NOW).unwrap();
        assert_eq!(
            device
                .active(NOW)
                .unwrap()
                .content()
                .manifest
                .bundle_version,
            2
        );

        // Pause: nothing promoted out of canary; rollback repairs it.
        rings::set_paused(&db, &owner, "acme", "canary", true, NOW)
            .await
            .unwrap();
        let out = rings::promote(&db, &owner, "acme", "pilot", 2, NOW)
            .await
            .unwrap_err();
        assert_eq!(out.code(), "conflict");
        rings::rollback(&db, &owner, "acme", "canary", 1, NOW)
            .await
            .unwrap();
        let (m3, b3) = rings::current(&db, "acme", "canary").await.unwrap();
        device.install_manifest(&m3, Some(&b3), NOW).unwrap();
        assert_eq!(
            device
                .active(NOW)
                .unwrap()
                .content()
                .manifest
                .bundle_version,
            1
        );
        // The device refuses the superseded manifest that named version 2.
        assert_eq!(
            device.install_manifest(&m2, None, NOW).unwrap_err().code(),
            "manifest_replay"
        );

        let status = rings::rings(&db, "acme").await.unwrap();
        let canary = &status[0];
        assert_eq!(
            (canary.release, canary.paused, canary.revision),
            (Some(1), true, 4)
        );
        let trail = hpl_server::audit::trail(&db).await.unwrap();
        let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "init",
                "tenant.add",
                "tenant.health",
                "release.publish",
                "ring.promote",
                "ring.promote",
                "release.publish",
                "ring.promote",
                "ring.pause",
                "ring.rollback"
            ]
        );
        assert!(trail.iter().all(|e| e.actor == owner.id));
        let rollback = trail.last().unwrap();
        assert!(rollback
            .before
            .as_deref()
            .unwrap()
            .contains("\"release\":2"));
        assert!(rollback.after.as_deref().unwrap().contains("\"release\":1"));
    }
}

#[tokio::test]
async fn credentials_are_checked_and_scoped() {
    for db in databases("auth").await {
        let init = rings::init(&db, NOW).await.unwrap();
        let owner = auth::authenticate(&db, &init.owner_token).await.unwrap();
        assert_eq!(owner.tenant, None);
        let enrollment = rings::add_tenant(&db, &owner, "acme", &public_text(&policy_key()), NOW)
            .await
            .unwrap();
        assert!(enrollment.starts_with("hpl-enrollment-"));
        for wrong in [enrollment.as_str(), "hpl-owner-00", ""] {
            assert_eq!(
                auth::authenticate(&db, wrong).await.unwrap_err().code(),
                "unauthorized",
                "{wrong}"
            );
        }
        let limited = Principal::operator("x", "globex", vec![hpl_server::rbac::Role::Owner]);
        assert_eq!(
            rings::add_tenant(&db, &limited, "initech", &public_text(&policy_key()), NOW)
                .await
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            rings::publish(&db, &limited, "globex", &bundle(1), NOW)
                .await
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            rings::add_tenant(&db, &owner, "acme", &public_text(&policy_key()), NOW)
                .await
                .unwrap_err()
                .code(),
            "conflict"
        );
        assert_eq!(
            rings::add_tenant(&db, &owner, "bad name!", &public_text(&policy_key()), NOW)
                .await
                .unwrap_err()
                .code(),
            "invalid"
        );
    }
}

/// Two operators changing one ring at once (the same code replicas run): one result, and the
/// ring, its manifests and its audit entries agree.
#[tokio::test]
async fn replicas_changing_one_ring_at_once_leave_one_consistent_result() {
    for db in databases("race").await {
        let (init, owner) = setup(&db).await;
        for v in 1..=4 {
            rings::publish(&db, &owner, "acme", &bundle(v), NOW)
                .await
                .unwrap();
        }
        // Four replicas: each its own connection pool on the one database.
        let mut replicas = Vec::new();
        for _ in 0..4 {
            replicas.push(hpl_server::Db::connect(db.url()).await.unwrap());
        }
        let tasks: Vec<_> = (1..=4u64)
            .zip(replicas)
            .map(|(v, db)| {
                let owner = owner.clone();
                tokio::spawn(
                    async move { rings::promote(&db, &owner, "acme", "canary", v, NOW).await },
                )
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(ServerError::Conflict(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(ok >= 1);
        let canary = rings::rings(&db, "acme").await.unwrap().remove(0);
        assert_eq!(canary.revision, ok);
        let trail = hpl_server::audit::trail(&db).await.unwrap();
        assert_eq!(
            trail.iter().filter(|e| e.action == "ring.promote").count() as i64,
            ok
        );
        // The newest manifest is of the ring's revision and names its release.
        let (manifest, _) = rings::current(&db, "acme", "canary").await.unwrap();
        let verified = hpl_runtime::manifest::verify(&manifest, &distribution_keys(&init)).unwrap();
        assert_eq!(verified.manifest().manifest_version, canary.revision as u64);
        assert_eq!(Some(verified.manifest().bundle_version), canary.release);
    }
}
