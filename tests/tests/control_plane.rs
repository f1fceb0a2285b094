//! The control plane end to end on loopback: a real `hpl-server` (the library's `serve`, on a
//! socket), three rings and 30 simulated devices each running the real agent sync
//! (`hpl_agent::sync`, what `hpl agent sync` calls) with its own store, key and outbox.
//! Publish, canary gets it, the gate lets it out, pilot gets it; a bad release trips the
//! health gate and pauses canary, whose promotion is then refused with the figures; rollback
//! restores the old bundle on canary's devices; replayed and expired manifests are refused;
//! with the server down a device answers from its snapshot and its outbox drains when the
//! server is back; the server's metrics are `hpl report`'s numbers for the same devices.
//!
//! On SQLite, and on PostgreSQL when `HPL_TEST_DATABASE_URL` is set (`.ci/run` sets it).

mod common;
#[path = "../../server/tests/common/idp.rs"]
mod idp;
use common::hpl;
use ed25519_dalek::SigningKey;
use hpl_agent::sync::ManifestOutcome;
use hpl_runtime::config::ManagedConfig;
use hpl_runtime::inventory::Inventory;
use hpl_runtime::record::State;
use hpl_server::membership::Members;
use hpl_server::{auth, rings, Db};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEVICES: usize = 30;

fn policy_key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn public_text(k: &SigningKey) -> String {
    format!(
        "hpl-ed25519-public:{}",
        hpl_runtime::load::hex(k.verifying_key().as_bytes())
    )
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hpl-cp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A bundle of the example policies; `bad` adds a requirement no device meets.
fn bundle(version: u64, bad: bool, dir: &Path) -> Vec<u8> {
    let src = dir.join(format!("policy-{version}"));
    std::fs::create_dir_all(&src).unwrap();
    for e in std::fs::read_dir("../examples/acme").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "hpl") {
            let mut text = std::fs::read_to_string(&p).unwrap();
            if bad && p.file_name().unwrap() == "baseline.hpl" {
                text = text.replace(
                    "  require brew:mise\n",
                    "  require brew:mise\n  require brew:acme-vpn-agent\n",
                );
            }
            std::fs::write(src.join(p.file_name().unwrap()), text).unwrap();
        }
    }
    let files = hpl_compiler::driver::load_files(&[src]).unwrap();
    let analysis =
        hpl_compiler::analyze_sources(files, hpl_compiler::check::CheckOptions::default());
    let options = hpl_compiler::lower::BuildOptions {
        bundle_version: version,
        issued_at: hpl_server::now() - 3600,
        expires_at: None,
        root: None,
    };
    hpl_compiler::build::build_bundle(&analysis, &options, &[&policy_key()]).unwrap()
}

/// A running server: its URL, and a handle that stops it.
struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(rt: &tokio::runtime::Runtime, db: Db) -> Server {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = rt.handle().clone();
        let thread = std::thread::spawn(move || {
            handle
                .block_on(hpl_server::http::serve(listener, db, async {
                    let _ = rx.await;
                }))
                .unwrap();
        });
        Server {
            url,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn databases(name: &str, dir: &Path) -> Vec<(String, Db)> {
    let file = dir.join(format!("{name}.db"));
    let mut out = vec![(
        "sqlite".to_string(),
        Db::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap(),
    )];
    match std::env::var("HPL_TEST_DATABASE_URL") {
        Ok(url) => {
            use sqlx::Connection;
            let db = format!("hpl_test_cp_{name}_{}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(&url)
                .await
                .expect("PostgreSQL at HPL_TEST_DATABASE_URL");
            for q in [
                format!("DROP DATABASE IF EXISTS {db}"),
                format!("CREATE DATABASE {db}"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
            let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
            out.push((
                "postgres".to_string(),
                Db::connect(&format!("{base}/{db}")).await.unwrap(),
            ));
        }
        Err(_) => {
            eprintln!("PostgreSQL not tested: HPL_TEST_DATABASE_URL is not set (.ci/run sets it)")
        }
    }
    out
}

/// One simulated device.
struct Sim {
    store: PathBuf,
    config: ManagedConfig,
    inventory: Inventory,
    inventory_json: serde_json::Value,
    ring: &'static str,
}

/// Canary is the design department (the example's compliant and warning designers' laptops);
/// pilot the `pilot_fleet` device group, which MDM gives devices 1, 2, 3 and 6 (one example
/// inventory is in it already); broad the rest.
fn mdm_pilot(i: usize) -> bool {
    matches!(i, 1 | 2 | 3 | 6)
}

fn devices(dir: &Path, distribution: &str, at: i64) -> Vec<Sim> {
    let templates = hpl_tests::fleet::templates();
    (0..DEVICES)
        .map(|i| {
            // The example devices as they are (no generated drift), one id each.
            let mut json = templates[i % templates.len()].clone();
            json["device_id"] = format!("SIM{i:03}").into();
            json["collected_at"] = hpl_runtime::eval::timestamp(at).into();
            let hints = if mdm_pilot(i) {
                r#","scope_hints":{"device_groups":["pilot_fleet"]}"#
            } else {
                ""
            };
            let config = ManagedConfig::from_json_str(&format!(
                r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"{}"}}],"distribution_keys":[{{"public_key":"{distribution}"}}]{hints}}}"#,
                public_text(&policy_key())
            ))
            .unwrap();
            let inventory = Inventory::from_json(&json).unwrap();
            // Some example inventories are in pilot_fleet themselves.
            let device = hpl_runtime::device::Device::without_snapshot("", Some(config.clone()));
            let labels = hpl_runtime::summary::scope_labels(&device.prepared(&inventory), "acme");
            let ring = if labels.iter().any(|l| l == "department:design") {
                "canary"
            } else if labels.iter().any(|l| l == "device_group:pilot_fleet") {
                "pilot"
            } else {
                "broad"
            };
            Sim {
                store: dir.join(format!("device-{i}")),
                config,
                inventory,
                inventory_json: json,
                ring,
            }
        })
        .collect()
}

fn sync(d: &Sim, server: Option<&str>, at: i64) -> hpl_agent::SyncReport {
    hpl_agent::sync(hpl_agent::SyncOptions {
        store: &d.store,
        config: &d.config,
        inventory: &d.inventory,
        server,
        budget: Duration::from_secs(20),
        now: at,
        events: Vec::new(),
    })
    .unwrap()
}

/// The device's snapshot store, opened with its MDM trust as the agent opens it.
fn store_of(d: &Sim) -> hpl_runtime::store::SnapshotStore {
    hpl_runtime::store::SnapshotStore::open(
        &d.store,
        d.config.trusted_keys.clone(),
        Some("acme".into()),
    )
    .unwrap()
    .with_distribution_keys(d.config.distribution_keys.clone())
}

fn active(d: &Sim, at: i64) -> Option<u64> {
    store_of(d)
        .active(at)
        .map(|b| b.content().manifest.bundle_version)
}

/// The sync installed a manifest that makes `version` active.
fn installed(r: &hpl_agent::SyncReport, version: u64) -> bool {
    matches!(r.manifest, ManifestOutcome::Installed { bundle_version, .. } if bundle_version == version)
}

#[test]
fn thirty_devices_follow_their_rings_through_a_bad_release_and_a_rollback() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let root = temp("e2e");
    for (backend, db) in rt.block_on(databases("e2e", &root)) {
        let dir = root.join(&backend);
        std::fs::create_dir_all(&dir).unwrap();
        let url = db.url().to_string();
        e2e(&rt, db, &dir, &backend);
        if let (Ok(admin), Some((_, name))) =
            (std::env::var("HPL_TEST_DATABASE_URL"), url.rsplit_once('/'))
        {
            if url.starts_with("postgres") {
                rt.block_on(async {
                    use sqlx::Connection;
                    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await
                    .unwrap();
                });
            }
        }
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// `init` and the tenant acme: what init printed, the owner, the enrollment token.
fn tenant(
    rt: &tokio::runtime::Runtime,
    db: &Db,
    at: i64,
) -> (rings::Initialised, hpl_server::Principal, String) {
    let init = rt.block_on(rings::init(db, at)).unwrap();
    let owner = rt
        .block_on(auth::authenticate(db, &init.owner_token))
        .unwrap();
    let enrollment = rt
        .block_on(rings::add_tenant(
            db,
            &owner,
            "acme",
            &public_text(&policy_key()),
            at,
        ))
        .unwrap();
    (init, owner, enrollment)
}

fn e2e(rt: &tokio::runtime::Runtime, db: Db, dir: &Path, backend: &str) {
    let at = hpl_server::now();
    let (init, owner, enrollment) = tenant(rt, &db, at);
    let thresholds = hpl_server::health::Thresholds {
        min_records: 8,
        ..Default::default()
    };
    rt.block_on(rings::set_thresholds(&db, &owner, "acme", &thresholds, at))
        .unwrap();
    // Membership by scopes and device groups the policy declares (an undeclared group would
    // make every record `unknown`): the test knows every device's ring.
    let canary = Members {
        scopes: vec!["department:design".into()],
        ..Members::default()
    };
    let pilot = Members {
        device_groups: vec!["pilot_fleet".into()],
        ..Members::default()
    };
    for (ring, members) in [("canary", canary), ("pilot", pilot)] {
        rt.block_on(rings::set_members(&db, &owner, "acme", ring, members, at))
            .unwrap();
    }
    let mut server = Server::start(rt, db.clone());
    let sims = devices(dir, &init.distribution_public_key, at);

    // Enrollment (through the agent): each device lands on its ring.
    for d in &sims {
        let device = hpl_runtime::device::Device::without_snapshot("", Some(d.config.clone()));
        let scopes = hpl_runtime::summary::scope_labels(&device.prepared(&d.inventory), "acme");
        let id = hpl_agent::enroll(
            &server.url,
            &enrollment,
            &d.store,
            &d.inventory.device_id,
            &scopes,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(id.ring, d.ring, "{backend}: {}", d.inventory.device_id);
    }

    // Release 1 on canary: canary's devices install it, the others have none yet.
    let v1 = bundle(1, false, dir);
    rt.block_on(rings::publish(&db, &owner, "acme", &v1, at))
        .unwrap();
    rt.block_on(rings::promote(&db, &owner, "acme", "canary", 1, at))
        .unwrap();
    for d in &sims {
        let r = sync(d, None, at);
        assert!(r.reachable, "{r:?}");
        if d.ring == "canary" {
            assert!(installed(&r, 1), "{r:?}");
            assert_eq!(active(d, at), Some(1));
            assert!(
                matches!(r.state, State::Compliant | State::Warning),
                "{backend}: {r:?}"
            );
        } else {
            assert_eq!(r.manifest, ManifestOutcome::NoRelease, "{r:?}");
            assert_eq!(r.state, State::Unknown, "no valid snapshot is unknown");
        }
        assert_eq!((r.queued, r.refused), (0, 0), "{r:?}");
    }
    // A second sync of an up-to-date device is one 304.
    let first_canary = sims.iter().position(|d| d.ring == "canary").unwrap();
    let again = sync(&sims[first_canary], None, at);
    assert_eq!(again.manifest, ManifestOutcome::Unchanged);

    // Out of canary only with enough records: its 6 devices have uploaded 7 so far.
    assert_eq!(sims.iter().filter(|d| d.ring == "canary").count(), 6);
    let refused = rt
        .block_on(rings::promote(&db, &owner, "acme", "pilot", 1, at))
        .unwrap_err();
    assert_eq!(refused.code(), "unhealthy", "{refused}");
    assert!(refused.to_string().contains("only 7 records"), "{refused}");
    for d in sims.iter().filter(|d| d.ring == "canary") {
        sync(d, None, at);
    }
    rt.block_on(rings::promote(&db, &owner, "acme", "pilot", 1, at))
        .unwrap();
    for d in sims.iter().filter(|d| d.ring == "pilot") {
        let r = sync(d, None, at);
        assert!(installed(&r, 1), "{r:?}");
    }

    // The server's numbers for pilot on release 1 are `hpl report`'s for the same devices.
    let metrics = rt
        .block_on(hpl_server::metrics::tenant(&db, "acme"))
        .unwrap();
    let metrics = serde_json::to_value(&metrics).unwrap();
    let pilot = metrics["rings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ring"] == "pilot")
        .unwrap();
    let on_v1 = pilot["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["release"] == 1)
        .expect("pilot reports on release 1");
    let inventories = dir.join("pilot.jsonl");
    let lines: Vec<String> = sims
        .iter()
        .filter(|d| d.ring == "pilot")
        .map(|d| {
            // What the device evaluated: its ring from the server, its MDM device group.
            let mut j = d.inventory_json.clone();
            j["ring"] = "pilot".into();
            let groups = &mut j["scopes"]["device_groups"];
            if !groups.is_array() {
                *groups = serde_json::json!([]);
            }
            if !groups
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "pilot_fleet")
            {
                groups.as_array_mut().unwrap().push("pilot_fleet".into());
            }
            j.to_string()
        })
        .collect();
    std::fs::write(&inventories, lines.join("\n") + "\n").unwrap();
    let bundle_file = dir.join("v1.hplb");
    std::fs::write(&bundle_file, &v1).unwrap();
    let key_file = dir.join("policy.pub");
    std::fs::write(&key_file, public_text(&policy_key())).unwrap();
    let stamp = hpl_runtime::eval::timestamp(at);
    let (code, out, err) = hpl(&[
        "report",
        "--bundle",
        bundle_file.to_str().unwrap(),
        "--key",
        key_file.to_str().unwrap(),
        "--inventories",
        inventories.to_str().unwrap(),
        "--at",
        &stamp,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for field in [
        "devices",
        "states",
        "compliant_percent",
        "by_scope",
        "by_ring",
        "by_manager",
        "distinct_drifts",
        "top_drifts",
        "top_rules",
        "unknown",
    ] {
        assert_eq!(
            on_v1["fleet"][field], report[field],
            "{backend}: `{field}` differs between the server and hpl report"
        );
    }
    assert_eq!(
        on_v1["devices"],
        sims.iter().filter(|d| d.ring == "pilot").count()
    );

    // A bad release on canary: its records turn non-compliant, the gate pauses canary as the
    // uploads arrive, and the promotion out of it is refused with the figures.
    let v3 = bundle(3, true, dir);
    rt.block_on(rings::publish(&db, &owner, "acme", &v3, at))
        .unwrap();
    rt.block_on(rings::promote(&db, &owner, "acme", "canary", 3, at))
        .unwrap();
    let (bad_manifest, _) = rt.block_on(rings::current(&db, "acme", "canary")).unwrap();
    for _ in 0..2 {
        for d in sims.iter().filter(|d| d.ring == "canary") {
            let r = sync(d, None, at);
            assert_eq!(active(d, at), Some(3));
            assert_eq!(r.state, State::NonCompliant, "{r:?}");
        }
    }
    let status = rt.block_on(rings::rings(&db, "acme")).unwrap();
    let figures = rt.block_on(hpl_server::health::figures(
        &db,
        "acme",
        "canary",
        3,
        Some(1),
    ));
    assert!(
        status[0].paused,
        "{backend}: the gate paused canary: {figures:?}"
    );
    let trail = rt.block_on(hpl_server::audit::trail(&db)).unwrap();
    let pause = trail
        .iter()
        .find(|e| e.action == "ring.auto_pause")
        .expect("an audited auto-pause");
    assert_eq!(pause.actor, "health-gate");
    assert!(pause
        .after
        .as_deref()
        .unwrap()
        .contains("non-compliant devices rose"));
    let refused = rt
        .block_on(rings::promote(&db, &owner, "acme", "pilot", 3, at))
        .unwrap_err();
    assert_eq!(refused.code(), "unhealthy");
    let text = refused.to_string();
    assert!(
        text.contains("non-compliant devices rose from") && text.contains("100.0 %"),
        "{text}"
    );

    // Rollback: canary's devices go back to release 1 (older, named by a newer manifest).
    rt.block_on(rings::rollback(&db, &owner, "acme", "canary", 1, at))
        .unwrap();
    for d in sims.iter().filter(|d| d.ring == "canary") {
        let r = sync(d, None, at);
        assert!(installed(&r, 1), "{r:?}");
        assert_eq!(active(d, at), Some(1));
    }
    // The superseded manifest (naming release 3) is refused as a replay, and the current one
    // once expired; neither changes the snapshot.
    let canary = &sims[first_canary];
    let store = store_of(canary);
    assert_eq!(
        store
            .install_manifest(&bad_manifest, None, at)
            .unwrap_err()
            .code(),
        "manifest_replay"
    );
    let (current, _) = rt.block_on(rings::current(&db, "acme", "canary")).unwrap();
    let later = at + rings::MANIFEST_LIFETIME + 1;
    assert_eq!(
        store
            .install_manifest(&current, None, later)
            .unwrap_err()
            .code(),
        "manifest_expired"
    );
    assert_eq!(active(canary, at), Some(1));

    // The server goes down: a device keeps its snapshot, answers from it, says so, queues.
    server.stop();
    let offline = sync(&sims[first_canary], None, at);
    assert!(!offline.reachable);
    assert!(
        offline
            .human()
            .contains("answered from the active snapshot"),
        "{}",
        offline.human()
    );
    assert_eq!(offline.active.as_ref().map(|b| b.version), Some(1));
    assert!(offline.queued > 0);
    let offline_twice = sync(&sims[first_canary], None, at);
    assert!(offline_twice.queued > offline.queued);
    // It comes back (on another port): the outbox drains, nothing is stored twice.
    let server = Server::start(rt, db.clone());
    let back = sync(&sims[first_canary], Some(&server.url), at);
    assert!(back.reachable, "{back:?}");
    assert_eq!(back.queued, 0);
    assert!(back.stored > offline_twice.queued, "{back:?}");
    assert_eq!(back.duplicates, 0, "{back:?}");
    let metrics = rt
        .block_on(hpl_server::metrics::tenant(&db, "acme"))
        .unwrap();
    assert_eq!(metrics.fleet.devices, DEVICES as u64, "{backend}");
    drop(server);
}

/// The commands people and scripts use: `hpl publish`, `hpl ring`, `hpl agent enroll|sync`,
/// tokens from files, the gate's refusal on the command line, exit 7 when the server is down.
#[test]
fn the_cli_publishes_promotes_enrolls_and_syncs() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = temp("cli");
    let db = rt
        .block_on(Db::connect(&format!(
            "sqlite://{}",
            dir.join("server.db").display()
        )))
        .unwrap();
    let at = hpl_server::now();
    let (init, owner, enrollment) = tenant(&rt, &db, at);
    let canary = Members {
        scopes: vec!["department:design".into()],
        ..Members::default()
    };
    rt.block_on(rings::set_members(
        &db, &owner, "acme", "canary", canary, at,
    ))
    .unwrap();
    let mdm = rt.block_on(rings::mdm_config(&db, "acme", &[])).unwrap();
    let mut server = Server::start(&rt, db.clone());
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::write(path("owner"), &init.owner_token).unwrap();
    std::fs::write(path("enrollment"), &enrollment).unwrap();
    std::fs::write(path("wrong"), "hpl-owner-0000").unwrap();
    std::fs::write(path("mdm.json"), mdm.to_string()).unwrap();
    let v1 = bundle(1, false, &dir);
    std::fs::write(path("v1.hplb"), &v1).unwrap();
    let mut laptop: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("../examples/devices/design-warning.json").unwrap(),
    )
    .unwrap();
    laptop["collected_at"] = hpl_runtime::eval::timestamp(at).into();
    std::fs::write(path("laptop.json"), laptop.to_string()).unwrap();
    let url = server.url.clone();
    let op = |args: &[&str], token: &str| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend([
            "--server".into(),
            url.clone(),
            "--token-file".into(),
            path(token),
        ]);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        hpl(&refs)
    };

    let (code, _, err) = op(&["publish", &path("v1.hplb")], "wrong");
    assert_eq!(code, 1);
    assert!(err.contains("401 unauthorized"), "{err}");
    let (code, out, err) = op(&["publish", &path("v1.hplb")], "owner");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("published release 1 of acme (sha256:"),
        "{out}"
    );
    let (code, out, _) = op(&["publish", &path("v1.hplb")], "owner");
    assert_eq!(code, 0);
    assert!(out.starts_with("already published: release 1"), "{out}");
    // Acme's operators sign in with its identity provider; bob is an admin.
    let provider = rt.block_on(idp::Provider::start("hpl-acme"));
    provider.user("bob", &["hpl-admins"]);
    let role_map = hpl_server::rbac::Role::ALL
        .into_iter()
        .map(|r| (format!("hpl-{r}s"), r))
        .collect();
    rt.block_on(hpl_server::oidc::set_sso(
        &db,
        &owner,
        "acme",
        &hpl_server::oidc::SsoConfig {
            issuer: provider.issuer.clone(),
            client_id: "hpl-acme".into(),
            client_secret: None,
            roles_claim: "groups".into(),
            role_map,
        },
        at,
    ))
    .unwrap();
    // `hpl login`: the device flow; bob approves it in "the browser" (the stub) meanwhile.
    let config_dir = path("config");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let approver = {
        let (provider, done) = (provider.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                provider.approve_device("bob");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let (code, out, err) = hpl(&[
        "login",
        "--server",
        &url,
        "--tenant",
        "acme",
        "--config-dir",
        &config_dir,
    ]);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    approver.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("enter the code HPL-TEST"), "{err}");
    assert!(
        out.starts_with("signed in to acme as bob@example.com (admin); the token is kept in "),
        "{out}"
    );
    let kept = Path::new(&config_dir).join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is the user's only");
    }
    // As bob from now on: the kept token, no token file.
    let as_bob = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend([
            "--server".into(),
            url.clone(),
            "--config-dir".into(),
            config_dir.clone(),
        ]);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        hpl(&refs)
    };
    let owner_id = owner.id.clone();
    let (code, out, err) = op(
        &["ring", "promote", "acme", "canary", "--release", "1"],
        "owner",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.replace(&owner_id, "[owner]"),
        "request 1: release 1 onto canary: pending (0 of 1 approvals), requested by [owner]\n"
    );
    // The owner cannot approve their own request.
    let (code, _, err) = op(&["approvals", "approve", "acme", "1"], "owner");
    assert_eq!(code, 1);
    assert!(err.contains("four eyes"), "{err}");
    // The ID token's hour is over: the kept refresh token renews it, and the renewal is kept.
    let mut creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kept).unwrap()).unwrap();
    assert!(creds[&url]["refresh_token"].is_string(), "{creds}");
    creds[&url]["expires_at"] = 0.into();
    std::fs::write(&kept, creds.to_string()).unwrap();
    let (code, out, err) = as_bob(&["approvals", "list", "acme", "--state", "pending"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("request 1: release 1 onto canary: pending"),
        "{out}"
    );
    let renewed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kept).unwrap()).unwrap();
    assert!(
        renewed[&url]["expires_at"].as_i64().unwrap() > at,
        "{renewed}"
    );
    // A refresh token the provider no longer knows: sign in again, says the CLI.
    let mut revoked = renewed.clone();
    revoked[&url]["expires_at"] = 0.into();
    revoked[&url]["refresh_token"] = "revoked".into();
    std::fs::write(&kept, revoked.to_string()).unwrap();
    let (code, _, err) = as_bob(&["approvals", "list", "acme"]);
    assert_eq!(code, 2);
    assert!(err.contains("hpl login --server"), "{err}");
    std::fs::write(&kept, renewed.to_string()).unwrap();
    let (code, out, err) = as_bob(&["approvals", "approve", "acme", "1", "--comment", "ok"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("request 1: release 1 onto canary: applied (1 of 1 approvals)"),
        "{out}"
    );
    let (code, out, _) = op(&["ring", "status", "acme"], "owner");
    assert_eq!(code, 0);
    assert!(
        out.starts_with("canary   release 1      revision 2\n"),
        "{out}"
    );

    let device = path("device");
    let (code, out, err) = hpl(&[
        "agent",
        "enroll",
        "--server",
        &url,
        "--store",
        &device,
        "--config",
        &path("mdm.json"),
        "--inventory",
        &path("laptop.json"),
        "--token-file",
        &path("enrollment"),
    ]);
    assert_eq!(code, 0, "{err}");
    let id = hpl_agent::identity::load(Path::new(&device)).unwrap();
    assert_eq!(
        out,
        format!(
            "enrolled C02DSGN002 as {} (tenant acme, ring canary) with {url}\n",
            id.device_id
        )
    );
    let sync_args = [
        "agent",
        "sync",
        "--store",
        &device,
        "--config",
        &path("mdm.json"),
        "--inventory",
        &path("laptop.json"),
        "--timeout",
        "10",
    ];
    let (code, out, err) = hpl(&sync_args);
    assert_eq!(code, 0, "{err}");
    let shown = out
        .replace(&id.device_id, "[device]")
        .replace(&url, "[server]");
    let shown = regex_free_hash(&shown);
    insta::assert_snapshot!("cli_sync", shown);

    // The gate refuses pilot with one record, on the command line too: the approval that
    // would apply it says why, and the request is failed.
    let (code, out, err) = op(
        &["ring", "promote", "acme", "pilot", "--release", "1"],
        "owner",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("request 2: release 1 onto pilot: pending"),
        "{out}"
    );
    let (code, _, err) = as_bob(&["approvals", "approve", "acme", "2"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unhealthy") && err.contains("only 1 records from `canary` on release 1"),
        "{err}"
    );
    let (_, out, _) = as_bob(&["approvals", "list", "acme", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["state"], "failed", "{listed}");

    // The audit trail, exported by bob and verified offline; one changed byte is found.
    let export = path("audit.jsonl");
    let (code, _, err) = as_bob(&["audit", "export", "acme", "-o", &export]);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("next cursor: a"), "{err}");
    let (code, out, err) = hpl(&["audit", "verify", &export]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("chain acme: "), "{out}");
    assert!(out.contains("entries verified, head "), "{out}");
    let text = std::fs::read_to_string(&export).unwrap();
    // Bob's name changed everywhere in the line (OCSF fields and entry alike): the hash.
    std::fs::write(&export, text.replace("oidc:acme:bob", "oidc:acme:eve")).unwrap();
    let (code, out, _) = hpl(&["audit", "verify", &export]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BROKEN at entry ") && out.contains("was changed"),
        "{out}"
    );
    // Only the OCSF field a SIEM reads: the line is not its entry's.
    std::fs::write(
        &export,
        text.replacen("\"oidc:acme:bob\"", "\"oidc:acme:eve\"", 1),
    )
    .unwrap();
    let (code, out, _) = hpl(&["audit", "verify", &export]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("OCSF fields are not its entry's"), "{out}");
    let (code, out, _) = op(&["ring", "health", "acme", "canary"], "owner");
    assert_eq!(code, 0);
    assert!(out.contains("1 records"), "{out}");

    // Down: the agent answers from its snapshot and exits 7; operators get an error.
    server.stop();
    let (code, out, _) = hpl(&sync_args);
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("the control plane is unreachable"), "{out}");
    assert!(out.contains("state: warning"), "{out}");
    let (code, _, err) = op(&["ring", "status", "acme"], "owner");
    assert_eq!(code, 1);
    assert!(err.contains("unreachable"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sha256:<64 hex>` as `sha256:[hash]`.
fn regex_free_hash(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i + 7]);
        let after = &rest[i + 7..];
        let n = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str("[hash]");
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}
