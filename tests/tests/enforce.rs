//! Enforcement: remediation plans per mode, authorization decisions, the snapshot store under
//! crashes and races, audit events.

mod common;
use common::hpl;
use ed25519_dalek::SigningKey;
use hpl_compiler::build::build_bundle;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_runtime::events::{EventType, TaskReport};
use hpl_runtime::load::TrustedKeys;
use hpl_runtime::store::{install_event, Rejection, SnapshotStore};
use std::path::PathBuf;

const AT: &str = "2026-11-29T02:00:00Z";
const NOW: i64 = 1_795_917_600;
const PUBLIC: &str =
    "hpl-ed25519-public:ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hpl-enforce-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn config_with_cap(dir: &std::path::Path, cap: Option<&str>) -> String {
    let path = dir.join(format!("mdm-{}.json", cap.unwrap_or("none")));
    let cap = cap
        .map(|c| format!(",\"mode_cap\":\"{c}\""))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            "{{\"tenant_id\":\"acme\",\"trusted_keys\":[{{\"public_key\":\"{PUBLIC}\"}}]{cap}}}"
        ),
    )
    .expect("write");
    path.to_string_lossy().into_owned()
}

#[test]
fn remediation_plans_in_each_mode() {
    let dir = temp("plans");
    let mut out = String::new();
    for device in ["platform-noncompliant", "pilot-mixed", "ci-runner-intel"] {
        for cap in [None, Some("assist"), Some("observe")] {
            let config = config_with_cap(&dir, cap);
            let inventory = format!("../examples/devices/{device}.json");
            let (_, json, err) = hpl(&[
                "eval",
                "--policy",
                "../examples/acme",
                "--config",
                &config,
                "--inventory",
                &inventory,
                "--at",
                AT,
                "--format",
                "json",
            ]);
            assert!(err.is_empty(), "{err}");
            let v: serde_json::Value = serde_json::from_str(&json).expect("record");
            out.push_str(&format!(
                "## {device}, mode cap {}\n{}\n",
                cap.unwrap_or("none"),
                serde_json::to_string_pretty(&v["remediation"]).expect("json")
            ));
            if cap == Some("observe") {
                assert!(
                    v["remediation"].as_array().expect("plan").is_empty(),
                    "observe plans nothing"
                );
            }
            if cap == Some("assist") {
                assert!(v["remediation"]
                    .as_array()
                    .expect("plan")
                    .iter()
                    .all(|r| r["needs_confirmation"] == true));
            }
        }
    }
    insta::assert_snapshot!("remediation_plans", out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn authorization_decisions() {
    let cases = [
        (
            "platform-noncompliant",
            r#"{"action":"upgrade","manager":"homebrew_formula","package":"terraform","to":"1.10.0"}"#,
            6,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"upgrade","manager":"homebrew_formula","package":"terraform","to":"1.9.8"}"#,
            0,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"unpin","manager":"homebrew_formula","package":"terraform"}"#,
            6,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"uninstall","manager":"homebrew_formula","package":"kubectl"}"#,
            6,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"install","manager":"homebrew_formula","package":"kubectl","to":"1.29.0"}"#,
            6,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"install","manager":"homebrew_formula","package":"telnet"}"#,
            5,
        ),
        (
            "platform-noncompliant",
            // Each package gets the verdict `upgrade` of it (without a version) gets: where a
            // range decides and the version reached is unknown (kubectl, helm, terraform-docs)
            // the user confirms; the overall verdict is the strictest.
            r#"{"action":"upgrade-all","manager":"homebrew_formula"}"#,
            5,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"search","manager":"npm","package":"left-pad"}"#,
            0,
        ),
        (
            "platform-noncompliant",
            r#"{"action":"upgrade","manager":"softwareupdate","package":"macOS","to":"15.4"}"#,
            5,
        ),
        (
            "build-agent-compliant",
            r#"{"action":"install","manager":"homebrew_formula","package":"telnet"}"#,
            0,
        ),
        (
            "contractor-web",
            r#"{"action":"install","manager":"npm","package":"lodash"}"#,
            6,
        ),
        (
            "contractor-web",
            r#"{"action":"install","manager":"npm","package":"typescript","to":"5.6.3"}"#,
            0,
        ),
        (
            "security-lab",
            r#"{"action":"install","manager":"homebrew_formula","package":"john-jumbo"}"#,
            6,
        ),
        (
            "security-lab",
            r#"{"action":"upgrade","manager":"homebrew_formula","package":"nmap","to":"7.96"}"#,
            6,
        ),
        // The final deny of the installed event-stream blocks upgrades (baseline is assist: the user decides).
        (
            "ci-runner-intel",
            r#"{"action":"upgrade","manager":"npm","package":"pnpm","to":"9.14.0"}"#,
            5,
        ),
        (
            "web-observe",
            r#"{"action":"install","manager":"npm","package":"node-ipc","to":"10.1.2"}"#,
            0,
        ),
        (
            "design-compliant",
            r#"{"action":"install","manager":"homebrew_cask","package":"teamviewer"}"#,
            5,
        ),
        (
            "design-compliant",
            r#"{"action":"frobnicate","manager":"npm"}"#,
            6,
        ),
    ];
    let mut out = String::new();
    for (device, action, expected) in cases {
        let inventory = format!("../examples/devices/{device}.json");
        let (exit, json, err) = hpl(&[
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
        assert_eq!(exit, expected, "{device} {action}: {json}");
        let v: serde_json::Value = serde_json::from_str(&json).expect("decision");
        out.push_str(&format!(
            "{device} {action}\n  -> {}\n",
            serde_json::to_string(&v).expect("json")
        ));
    }
    insta::assert_snapshot!("authorization_decisions", out);
}

struct Builder {
    key: SigningKey,
    analysis: hpl_compiler::Analysis,
}

impl Builder {
    fn new() -> Builder {
        let files = hpl_compiler::driver::load_files(&[PathBuf::from("../examples/acme")])
            .expect("examples");
        Builder {
            key: SigningKey::from_bytes(&[5; 32]),
            analysis: hpl_compiler::analyze_sources(files, CheckOptions::default()),
        }
    }

    fn bundle(&self, version: u64, expires_at: Option<i64>) -> Vec<u8> {
        build_bundle(
            &self.analysis,
            &BuildOptions {
                bundle_version: version,
                issued_at: NOW - 3600,
                expires_at,
                root: None,
            },
            &[&self.key],
        )
        .expect("build")
    }

    fn keys(&self) -> TrustedKeys {
        let mut k = TrustedKeys::new();
        k.add(self.key.verifying_key().as_bytes()).expect("key");
        k
    }
}

fn active_version(store: &SnapshotStore, now: i64) -> Option<u64> {
    store
        .active(now)
        .map(|b| b.content().manifest.bundle_version)
}

#[test]
fn the_store_keeps_the_last_valid_snapshot_through_crashes_tampering_and_old_or_expired_bundles() {
    let b = Builder::new();
    let dir = temp("store");
    let store = SnapshotStore::open(&dir, b.keys(), Some("acme".into())).expect("store");
    assert_eq!(active_version(&store, NOW), None);
    assert!(store.install(&b.bundle(3, None), NOW).is_ok());
    assert_eq!(active_version(&store, NOW), Some(3));

    // Crash before the rename: a temporary file, complete or partial, is never active.
    std::fs::write(
        dir.join(".bundle-00000000000000000009.hplb.tmp-1-1"),
        b.bundle(9, None),
    )
    .expect("write");
    std::fs::write(
        dir.join(".bundle-00000000000000000010.hplb.tmp-1-2"),
        &b.bundle(10, None)[..100],
    )
    .expect("write");
    assert_eq!(active_version(&store, NOW), Some(3));
    // A file that claims a higher version but was cut short (a disk that lied about fsync).
    std::fs::write(
        dir.join("bundle-00000000000000000011.hplb"),
        &b.bundle(11, None)[..500],
    )
    .expect("write");
    assert_eq!(active_version(&store, NOW), Some(3));
    // A tampered file.
    let mut tampered = b.bundle(12, None);
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xFF;
    std::fs::write(dir.join("bundle-00000000000000000012.hplb"), &tampered).expect("write");
    assert_eq!(active_version(&store, NOW), Some(3));
    assert!(matches!(
        store.install(&tampered, NOW),
        Err(Rejection::Invalid(_))
    ));
    // A file whose name lies about its version.
    std::fs::write(
        dir.join("bundle-00000000000000000013.hplb"),
        b.bundle(2, None),
    )
    .expect("write");
    assert_eq!(active_version(&store, NOW), Some(3));

    // Older and equal versions are rejected; the active one stays.
    assert_eq!(
        store.install(&b.bundle(2, None), NOW).err(),
        Some(Rejection::NotNewer {
            version: 2,
            active: 3
        })
    );
    assert_eq!(
        store.install(&b.bundle(3, None), NOW).err(),
        Some(Rejection::NotNewer {
            version: 3,
            active: 3
        })
    );
    // An expired bundle is rejected; one that expires later becomes inactive when it does.
    assert!(matches!(
        store.install(&b.bundle(4, Some(NOW - 1)), NOW),
        Err(Rejection::Expired { .. })
    ));
    assert!(store.install(&b.bundle(5, Some(NOW + 3600)), NOW).is_ok());
    assert_eq!(active_version(&store, NOW), Some(5));
    // Issue 9 (11): after the newest expires there is no valid snapshot — never the older 3 —
    // and replaying 3 (or any version up to 5) is refused by the high-water mark.
    assert_eq!(
        active_version(&store, NOW + 7200),
        None,
        "an expired newest bundle is no valid snapshot"
    );
    assert_eq!(
        store.install(&b.bundle(3, None), NOW + 7200).err(),
        Some(Rejection::NotNewer {
            version: 3,
            active: 5
        })
    );
    assert!(store.install(&b.bundle(6, None), NOW + 7200).is_ok());
    assert_eq!(active_version(&store, NOW + 7200), Some(6));
    // Another tenant's bundle.
    let other = SnapshotStore::open(&dir, b.keys(), Some("globex".into())).expect("store");
    assert!(matches!(
        other.install(&b.bundle(20, None), NOW),
        Err(Rejection::WrongTenant { .. })
    ));

    // Issue 9 (13): installs clean the temporary files of dead writers.
    assert!(
        !dir.join(".bundle-00000000000000000009.hplb.tmp-1-1")
            .exists()
            && !dir
                .join(".bundle-00000000000000000010.hplb.tmp-1-2")
                .exists(),
        "the two temporary files are cleaned"
    );
    assert_eq!(store.clean(), 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn two_writers_at_once_leave_the_newest_valid_snapshot() {
    let b = Builder::new();
    let dir = temp("race");
    let bundles: Vec<Vec<u8>> = (1..=8).map(|v| b.bundle(v, None)).collect();
    std::thread::scope(|s| {
        for chunk in bundles.chunks(4) {
            let keys = b.keys();
            let dir = dir.clone();
            s.spawn(move || {
                let store = SnapshotStore::open(&dir, keys, None).expect("store");
                for bytes in chunk {
                    let _ = store.install(bytes, NOW);
                }
            });
        }
    });
    let store = SnapshotStore::open(&dir, b.keys(), None).expect("store");
    assert_eq!(active_version(&store, NOW), Some(8));
    assert_eq!(store.clean(), 0, "no temporary file is left behind");
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with("high-water-") || name == ".install.lock" {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            hpl_runtime::load::load(&bytes, &b.keys()).is_ok(),
            "every file in the store is a complete bundle"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn without_a_valid_snapshot_reads_run_and_writes_are_denied_with_the_reason() {
    let dir = temp("empty");
    let config = config_with_cap(&dir, None);
    let store = dir.join("store").to_string_lossy().into_owned();
    let inv = "../examples/devices/platform-noncompliant.json";
    let (exit, json, _) = hpl(&[
        "authorize",
        "--store",
        &store,
        "--config",
        &config,
        "--inventory",
        inv,
        "--action",
        r#"{"action":"install","manager":"npm","package":"x"}"#,
        "--at",
        AT,
    ]);
    assert_eq!(exit, 6);
    assert!(json.contains("no_valid_snapshot"));
    let (exit, _, _) = hpl(&[
        "authorize",
        "--store",
        &store,
        "--config",
        &config,
        "--inventory",
        inv,
        "--action",
        r#"{"action":"list","manager":"npm"}"#,
        "--at",
        AT,
    ]);
    assert_eq!(exit, 0);
    let (exit, json, _) = hpl(&[
        "eval",
        "--store",
        &store,
        "--config",
        &config,
        "--inventory",
        inv,
        "--at",
        AT,
        "--format",
        "json",
    ]);
    assert_eq!(exit, 4);
    assert!(json.contains("\"no_valid_snapshot\""));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_event_type_has_every_required_field_typed() {
    let text = std::fs::read_to_string("../docs/schemas/event.v1.json").expect("schema");
    let schema =
        jsonschema::validator_for(&serde_json::from_str(&text).expect("json")).expect("schema");
    let b = Builder::new();
    let dir = temp("events");
    let store = SnapshotStore::open(&dir, b.keys(), Some("acme".into())).expect("store");
    let applied = store.install(&b.bundle(1, None), NOW);
    let rejected = store.install(&b.bundle(1, None), NOW);
    let mut events = vec![
        install_event(&applied, "acme", "C02PLAT001", "t-1", NOW),
        install_event(&rejected, "acme", "C02PLAT001", "t-2", NOW),
    ];
    let bundle = applied.expect("applied");
    let inv = hpl_runtime::inventory::Inventory::from_json_str(
        &std::fs::read_to_string("../examples/devices/platform-noncompliant.json").expect("read"),
    )
    .expect("inv");
    let record = hpl_runtime::eval::evaluate(&bundle, &inv, NOW);
    events.extend(hpl_runtime::events::from_record(&record, NOW));
    let task = TaskReport {
        tenant_id: "acme",
        device_id: "C02PLAT001",
        scope_id: "team:platform",
        manager: "homebrew_formula",
        task_id: "r-7",
        action: hpl_runtime::vocab::Action::Install,
        policy_version: 4,
    };
    events.extend([
        task.started(NOW),
        task.completed(NOW + 30),
        task.failed(NOW + 60, "cancelled by the user"),
    ]);
    let mut seen = std::collections::BTreeSet::new();
    for e in &events {
        let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).expect("a JSON line");
        if let Err(err) = schema.validate(&v) {
            panic!("{:?} does not match the schema: {err}", e.event);
        }
        seen.insert(format!("{:?}", e.event));
    }
    for t in [
        EventType::PolicyApplied,
        EventType::PolicyRejected,
        EventType::ComplianceEvaluated,
        EventType::DriftDetected,
        EventType::RemediationStarted,
        EventType::RemediationCompleted,
        EventType::RemediationFailed,
    ] {
        assert!(seen.contains(&format!("{t:?}")), "no {t:?} event");
    }
    // The CLI appends the same lines.
    let log = dir.join("events.jsonl");
    let (_, _, _) = hpl(&[
        "eval",
        "--policy",
        "../examples/acme",
        "--inventory",
        "../examples/devices/platform-noncompliant.json",
        "--at",
        AT,
        "--events",
        &log.to_string_lossy(),
    ]);
    let lines = std::fs::read_to_string(&log).expect("log");
    assert_eq!(
        lines.lines().count(),
        1 + 6,
        "compliance_evaluated and one drift_detected per violation"
    );
    for line in lines.lines() {
        assert!(
            schema
                .validate(&serde_json::from_str(line).expect("json"))
                .is_ok(),
            "{line}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `f` on another thread and fails if it does not finish in time (a hang is a failure,
/// not a stuck test run).
fn within<T: Send + 'static>(seconds: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(seconds))
        .expect("finished in time")
}

// Issue 9 (12): special files named like bundles neither hang the store nor exhaust memory.
#[cfg(unix)]
#[test]
fn fifos_and_links_in_the_store_are_skipped_without_blocking() {
    let b = Builder::new();
    let dir = temp("special");
    let store = SnapshotStore::open(&dir, b.keys(), Some("acme".into())).expect("store");
    assert!(store.install(&b.bundle(3, None), NOW).is_ok());
    let fifo = dir.join("bundle-00000000000000000009.hplb");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", dir.join("bundle-00000000000000000010.hplb"))
        .expect("link");
    let keys = b.keys();
    let (active, installed) = within(20, {
        let dir = dir.clone();
        let bytes = b.bundle(4, None);
        move || {
            let store = SnapshotStore::open(&dir, keys, Some("acme".into())).expect("store");
            let active = store
                .active(NOW)
                .map(|b| b.content().manifest.bundle_version);
            let installed = store
                .install(&bytes, NOW)
                .map(|b| b.content().manifest.bundle_version);
            (active, installed)
        }
    });
    assert_eq!(active, Some(3));
    assert_eq!(installed, Ok(4));
    // The same reader refuses a link and a FIFO given directly (as `hpl snapshot install` gets them).
    use hpl_runtime::store::{read_regular_file, MAX_BUNDLE_BYTES};
    let (link, fifo_read) = within(20, move || {
        (
            read_regular_file(
                &dir.join("bundle-00000000000000000010.hplb"),
                MAX_BUNDLE_BYTES,
            )
            .is_err(),
            read_regular_file(&fifo, MAX_BUNDLE_BYTES).is_err(),
        )
    });
    assert!(link && fifo_read);
}

// Issue 9 (13): temporary files of dead writers are removed; a live writer's file stays.
#[test]
fn installs_clean_the_temporary_files_of_dead_writers_only() {
    let b = Builder::new();
    let dir = temp("leak");
    let store = SnapshotStore::open(&dir, b.keys(), Some("acme".into())).expect("store");
    // Thirty writers killed mid-write leave thirty partial files.
    for i in 0..30 {
        std::fs::write(
            dir.join(format!(".bundle-00000000000000000007.hplb.tmp-99999-{i}")),
            &b.bundle(7, None)[..200],
        )
        .expect("write");
    }
    // A writer at work holds its file locked.
    let live = dir.join(".bundle-00000000000000000008.hplb.tmp-1-1");
    let held = std::fs::File::create(&live).expect("create");
    held.lock().expect("lock");
    assert!(store.install(&b.bundle(3, None), NOW).is_ok());
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert_eq!(left, [".bundle-00000000000000000008.hplb.tmp-1-1"]);
    drop(held);
    assert_eq!(store.clean(), 1);
}

// Issue 9 (11): the high-water mark survives the store being reopened and bundles removed.
#[test]
fn the_high_water_mark_outlives_the_files() {
    let b = Builder::new();
    let dir = temp("mark");
    let store = SnapshotStore::open(&dir, b.keys(), Some("acme".into())).expect("store");
    assert!(store.install(&b.bundle(3, None), NOW).is_ok());
    assert!(store.install(&b.bundle(10, None), NOW).is_ok());
    std::fs::remove_file(dir.join("bundle-00000000000000000010.hplb")).expect("remove");
    let store = SnapshotStore::open(&dir, b.keys(), Some("acme".into())).expect("store");
    assert_eq!(
        active_version(&store, NOW),
        None,
        "below the mark is no valid snapshot"
    );
    assert!(matches!(
        store.install(&b.bundle(7, None), NOW),
        Err(Rejection::NotNewer {
            version: 7,
            active: 10
        })
    ));
    assert!(store.install(&b.bundle(11, None), NOW).is_ok());
    assert_eq!(active_version(&store, NOW), Some(11));
}
