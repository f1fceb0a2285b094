//! The health gate on the core (SQLite, and PostgreSQL when `HPL_TEST_DATABASE_URL` is set):
//! each figure, on enough records, refuses a promotion out of the ring and pauses it (when the
//! uploads arrive, audited as the gate); too few records refuse without pausing.

mod common;
use common::*;
use ed25519_dalek::SigningKey;
use hpl_server::devices::{self, Batch, Device, Item, ItemKind};
use hpl_server::health::Thresholds;
use hpl_server::membership::Members;
use hpl_server::{rings, Db, Principal};

fn event(kind: &str, serial: &str, version: u64) -> serde_json::Value {
    serde_json::json!({ "event": kind, "tenant_id": "acme", "device_id": serial, "policy_version": version })
}

async fn upload(db: &Db, d: &Device, task: &str, bodies: Vec<(ItemKind, serde_json::Value)>) {
    let batch = Batch {
        items: bodies
            .into_iter()
            .enumerate()
            .map(|(i, (kind, body))| Item {
                task_id: task.into(),
                seq: i as u64,
                kind,
                scopes: None,
                body,
            })
            .collect(),
    };
    let (acks, look) = devices::ingest(db, d, &batch, NOW).await.unwrap();
    assert!(acks
        .items
        .iter()
        .all(|a| a.disposition == devices::Disposition::Stored));
    if look {
        devices::watch_health(db, &d.tenant, &acks.ring, NOW)
            .await
            .unwrap();
    }
}

/// Three canary devices on release 1, min_records 3.
async fn canary(db: &Db) -> (Principal, Vec<Device>) {
    let (_, owner, enrollment) = setup_with_enrollment(db).await;
    let thresholds = Thresholds {
        min_records: 3,
        ..Thresholds::default()
    };
    rings::set_thresholds(db, &owner, "acme", &thresholds, NOW)
        .await
        .unwrap();
    let members = Members {
        device_groups: vec!["canary".into()],
        ..Members::default()
    };
    rings::set_members(db, &owner, "acme", "canary", members, NOW)
        .await
        .unwrap();
    rings::publish(db, &owner, "acme", &bundle(1), NOW)
        .await
        .unwrap();
    rings::publish(db, &owner, "acme", &bundle(2), NOW)
        .await
        .unwrap();
    rings::promote(db, &owner, "acme", "canary", 1, NOW)
        .await
        .unwrap();
    let mut out = Vec::new();
    for i in 0..3u8 {
        let d = enroll(
            db,
            &enrollment,
            &SigningKey::from_bytes(&[40 + i; 32]),
            &format!("G{i}"),
            &["org:acme", "device_group:canary"],
        )
        .await;
        assert_eq!(d.ring, "canary");
        out.push(d);
    }
    (owner, out)
}

fn paused(rings: &[rings::Ring], name: &str) -> bool {
    rings.iter().any(|r| r.name == name && r.paused)
}

#[tokio::test]
async fn remediation_failures_pause_the_ring_and_refuse_promotion_with_the_figures() {
    for db in databases("gate_remediation").await {
        let (owner, devices) = canary(&db).await;
        // Too few records: refused, not paused.
        upload(
            &db,
            &devices[0],
            "s1",
            vec![(
                ItemKind::Record,
                record("design-compliant", "G0", &bundle(1)),
            )],
        )
        .await;
        let e = rings::promote(&db, &owner, "acme", "pilot", 1, NOW)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("only 1 records"), "{e}");
        assert!(!paused(&rings::rings(&db, "acme").await.unwrap(), "canary"));
        // Enough records, and half the remediations failing.
        for (i, d) in devices.iter().enumerate().skip(1) {
            upload(
                &db,
                d,
                "s1",
                vec![
                    (
                        ItemKind::Record,
                        record("design-compliant", &d.serial, &bundle(1)),
                    ),
                    (ItemKind::Event, event("remediation_started", &d.serial, 1)),
                    (ItemKind::Event, event("remediation_started", &d.serial, 1)),
                    (
                        ItemKind::Event,
                        event(
                            if i == 1 {
                                "remediation_completed"
                            } else {
                                "remediation_failed"
                            },
                            &d.serial,
                            1,
                        ),
                    ),
                    (ItemKind::Event, event("remediation_failed", &d.serial, 1)),
                ],
            )
            .await;
        }
        let status = rings::rings(&db, "acme").await.unwrap();
        assert!(paused(&status, "canary"), "the upload tripped the gate");
        let e = rings::promote(&db, &owner, "acme", "pilot", 1, NOW)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unhealthy");
        assert_eq!(
            e.to_string(),
            "the health gate refuses release 1 out of `canary`: remediation failures 75.0 % (3 of 4 started) are above 20.0 % (the ring is paused)"
        );
        let trail = hpl_server::audit::trail(&db).await.unwrap();
        let pauses: Vec<_> = trail
            .iter()
            .filter(|e| e.action == "ring.auto_pause")
            .collect();
        assert_eq!(pauses.len(), 1, "paused once");
        assert_eq!(pauses[0].actor, "health-gate");
        // Metrics count the events per ring and release.
        let m = hpl_server::metrics::tenant(&db, "acme").await.unwrap();
        let r = &m.rings[0].releases[0];
        assert_eq!(
            (
                r.remediation.started,
                r.remediation.completed,
                r.remediation.failed
            ),
            (4, 1, 3)
        );
        assert_eq!(r.devices, 3);
    }
}

#[tokio::test]
async fn policy_rejections_pause_the_ring() {
    for db in databases("gate_rejected").await {
        let (owner, devices) = canary(&db).await;
        rings::promote(&db, &owner, "acme", "canary", 2, NOW)
            .await
            .unwrap();
        // Every device refuses release 2 and reports on release 1.
        for d in &devices {
            upload(
                &db,
                d,
                "s2",
                vec![
                    (ItemKind::Event, event("policy_rejected", &d.serial, 2)),
                    (
                        ItemKind::Record,
                        record("design-compliant", &d.serial, &bundle(1)),
                    ),
                ],
            )
            .await;
        }
        assert!(paused(&rings::rings(&db, "acme").await.unwrap(), "canary"));
        let f = rings::health(&db, "acme", "canary").await.unwrap();
        assert_eq!((f.policy_rejected, f.records), (3, 0));
        assert!(f.unhealthy);
        assert!(
            f.failures[0].starts_with("policy rejections 100.0 %"),
            "{f:?}"
        );
        let m = hpl_server::metrics::tenant(&db, "acme").await.unwrap();
        let v2 = m.rings[0].releases.iter().find(|r| r.release == 2).unwrap();
        assert_eq!((v2.policy_rejected, v2.devices), (3, 0));
    }
}

#[tokio::test]
async fn a_rise_in_non_compliance_against_the_previous_release_pauses_the_ring() {
    for db in databases("gate_noncompliant").await {
        let (owner, devices) = canary(&db).await;
        for d in &devices {
            upload(
                &db,
                d,
                "s1",
                vec![(
                    ItemKind::Record,
                    record("design-compliant", &d.serial, &bundle(1)),
                )],
            )
            .await;
        }
        rings::promote(&db, &owner, "acme", "canary", 2, NOW)
            .await
            .unwrap();
        for d in &devices {
            upload(
                &db,
                d,
                "s2",
                vec![(
                    ItemKind::Record,
                    record("platform-noncompliant", &d.serial, &bundle(2)),
                )],
            )
            .await;
        }
        let f = rings::health(&db, "acme", "canary").await.unwrap();
        assert_eq!(f.previous_release, Some(1));
        assert_eq!(f.non_compliant_increase, Some(1.0));
        assert!(paused(&rings::rings(&db, "acme").await.unwrap(), "canary"));
        // A new membership rule moves the enrolled devices at once (audited).
        let members = Members {
            device_groups: vec!["contractors".into()],
            ..Members::default()
        };
        rings::set_members(&db, &owner, "acme", "canary", members, NOW)
            .await
            .unwrap();
        let m = hpl_server::metrics::tenant(&db, "acme").await.unwrap();
        let enrolled: Vec<u64> = m.rings.iter().map(|r| r.enrolled).collect();
        assert_eq!(enrolled[0], 0, "none left on canary");
        assert_eq!(enrolled.iter().sum::<u64>(), 3);
    }
}
