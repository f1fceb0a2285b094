//! Load: simulated devices (in-process clients, bounded in number and time) enrolling,
//! syncing and uploading against one `hpl-server` on loopback. Prints throughput, p50/p99
//! latency per request kind, and checks that no record was lost or stored twice.
//!
//! ```sh
//! cargo bench -p hpl-bench --bench load                                   # 10,000 devices, SQLite
//! HPL_LOAD_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p hpl-bench --bench load
//! HPL_LOAD_DEVICES=1000 HPL_LOAD_CLIENTS=32 cargo bench -p hpl-bench --bench load
//! ```
//!
//! Each device: enroll; sync 1 (signed GET manifest → 200, GET bundle → 200, POST a record and
//! two events); sync 2 (GET manifest with its ETag → 304, POST a record and two events). A
//! benchmark, recorded in BENCHMARKS.md — not a timed test.

use ed25519_dalek::SigningKey;
use hpl_agent::client::{Client, Retry};
use hpl_runtime::device::Device;
use hpl_runtime::inventory::Inventory;
use hpl_server::{auth, rings, Db};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Lat {
    enroll: Vec<Duration>,
    manifest: Vec<Duration>,
    not_modified: Vec<Duration>,
    bundle: Vec<Duration>,
    upload: Vec<Duration>,
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` (criterion's protocol): nothing to list
    }
    let devices = env("HPL_LOAD_DEVICES", 10_000);
    let clients = env("HPL_LOAD_CLIENTS", 64).max(1);
    let dir = std::env::temp_dir().join(format!("hpl-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let admin = std::env::var("HPL_LOAD_DATABASE_URL").ok();
    let url = match admin.clone().ok_or(()) {
        // A fresh database on the server named, dropped at the end.
        Ok(server) => rt.block_on(async {
            use sqlx::Connection;
            let name = format!("hpl_load_{}", std::process::id());
            let mut c = sqlx::PgConnection::connect(&server).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut c)
                .await
                .unwrap();
            let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }),
        Err(_) => format!("sqlite://{}", dir.join("load.db").display()),
    };
    let db = rt.block_on(Db::connect(&url)).unwrap();
    let now = hpl_server::now();
    let init = rt.block_on(rings::init(&db, now)).unwrap();
    let owner = rt
        .block_on(auth::authenticate(&db, &init.owner_token))
        .unwrap();
    let policy = SigningKey::from_bytes(&[5; 32]);
    let public = format!(
        "hpl-ed25519-public:{}",
        hpl_runtime::load::hex(policy.verifying_key().as_bytes())
    );
    let enrollment = rt
        .block_on(rings::add_tenant(&db, &owner, "acme", &public, now))
        .unwrap();
    let lenient = hpl_server::health::Thresholds {
        min_records: 0,
        ..Default::default()
    };
    rt.block_on(rings::set_thresholds(&db, &owner, "acme", &lenient, now))
        .unwrap();
    let bundle = {
        let files =
            hpl_compiler::driver::load_files(&[std::path::PathBuf::from("../examples/acme")])
                .unwrap();
        let analysis =
            hpl_compiler::analyze_sources(files, hpl_compiler::check::CheckOptions::default());
        let options = hpl_compiler::lower::BuildOptions {
            bundle_version: 1,
            issued_at: now - 60,
            expires_at: None,
            root: None,
        };
        hpl_compiler::build::build_bundle(&analysis, &options, &[&policy]).unwrap()
    };
    rt.block_on(rings::publish(&db, &owner, "acme", &bundle, now))
        .unwrap();
    for ring in ["canary", "pilot", "broad"] {
        rt.block_on(rings::promote(&db, &owner, "acme", ring, 1, now))
            .unwrap();
    }
    // One record per example device, evaluated once (evaluation is the device's work, not
    // the server's); each simulated device uploads its template's with its own id.
    let templates = hpl_tests::fleet::templates();
    let mut keys = hpl_runtime::load::TrustedKeys::new();
    keys.add(policy.verifying_key().as_bytes()).unwrap();
    let verified = hpl_runtime::load::load(&bundle, &keys).unwrap();
    let evaluator = Device::with_bundle(verified, None);
    let records: Vec<serde_json::Value> = templates
        .iter()
        .map(|t| {
            let inv = Inventory::from_json(t).unwrap();
            serde_json::to_value(evaluator.evaluate(&inv, now)).unwrap()
        })
        .collect();

    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_db = db.clone();
    let handle = rt.handle().clone();
    let server = std::thread::spawn(move || {
        handle
            .block_on(hpl_server::http::serve(listener, server_db, async {
                let _ = stop_rx.await;
            }))
            .unwrap();
    });

    let next = Arc::new(AtomicUsize::new(0));
    let lat = Arc::new(Mutex::new(Lat::default()));
    let stored = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (next, lat, stored) = (next.clone(), lat.clone(), stored.clone());
            let (base, enrollment, records) = (base.clone(), enrollment.clone(), records.clone());
            std::thread::spawn(move || {
                let client = Client::new(&base, Duration::from_secs(3600)).with_retry(Retry {
                    attempts: 1,
                    ..Retry::default()
                });
                let mut mine = Lat::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= devices {
                        break;
                    }
                    let mut seed = [0u8; 32];
                    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                    let key = SigningKey::from_bytes(&seed);
                    let serial = format!("LOAD{i:06}");
                    let body = serde_json::to_vec(&serde_json::json!({
                        "public_key": format!("hpl-ed25519-public:{}", hpl_runtime::load::hex(key.verifying_key().as_bytes())),
                        "serial": serial,
                        "scopes": ["org:acme"],
                    }))
                    .unwrap();
                    let t = Instant::now();
                    let reply = client.enroll(&key, &enrollment, &body).expect("enroll");
                    mine.enroll.push(t.elapsed());
                    let id: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                    let device = id["device_id"].as_str().unwrap().to_string();
                    let mut record = records[i % records.len()].clone();
                    record["device_id"] = serial.clone().into();
                    let mut etag = None;
                    for sync in 0..2 {
                        let extra: Vec<(&'static str, String)> =
                            etag.iter().map(|e: &String| ("if-none-match", e.clone())).collect();
                        let t = Instant::now();
                        let m = client
                            .signed(&key, &device, "GET", "/v1/device/manifest", None, &extra)
                            .expect("manifest");
                        if m.status == 304 {
                            mine.not_modified.push(t.elapsed());
                        } else {
                            mine.manifest.push(t.elapsed());
                            etag = m.etag.clone();
                            let t = Instant::now();
                            client
                                .signed(&key, &device, "GET", "/v1/device/bundles/1", None, &[])
                                .expect("bundle");
                            mine.bundle.push(t.elapsed());
                        }
                        let event = serde_json::json!({ "event": "remediation_started", "tenant_id": "acme", "device_id": serial, "policy_version": 1 });
                        let batch = serde_json::json!({ "items": [
                            { "task_id": format!("sync-{sync}"), "seq": 0, "kind": "record", "scopes": ["org:acme"], "body": record },
                            { "task_id": format!("sync-{sync}"), "seq": 1, "kind": "event", "body": event },
                            { "task_id": format!("sync-{sync}"), "seq": 2, "kind": "event", "body": event },
                        ]});
                        let body = serde_json::to_vec(&batch).unwrap();
                        let t = Instant::now();
                        let reply = client
                            .signed(&key, &device, "POST", "/v1/device/reports", Some(&body), &[])
                            .expect("upload");
                        mine.upload.push(t.elapsed());
                        let acks: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                        for a in acks["items"].as_array().unwrap() {
                            assert_eq!(a["disposition"], "stored", "{a}");
                            stored.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                let mut all = lat.lock().unwrap();
                all.enroll.extend(mine.enroll);
                all.manifest.extend(mine.manifest);
                all.not_modified.extend(mine.not_modified);
                all.bundle.extend(mine.bundle);
                all.upload.extend(mine.upload);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    server.join().unwrap();

    // Nothing lost, nothing twice: the server counts what the clients were told it stored.
    let metrics = rt
        .block_on(hpl_server::metrics::tenant(&db, "acme"))
        .unwrap();
    let started_events: u64 = metrics
        .rings
        .iter()
        .flat_map(|r| &r.releases)
        .map(|r| r.remediation.started)
        .sum();
    let stored = stored.load(Ordering::Relaxed);
    assert_eq!(stored, devices * 6, "every item acknowledged as stored");
    assert_eq!(
        metrics.fleet.devices, devices as u64,
        "one newest record per device"
    );
    assert_eq!(started_events, devices as u64 * 4, "every event once");

    let mut l = Arc::try_unwrap(lat).ok().unwrap().into_inner().unwrap();
    let requests =
        l.enroll.len() + l.manifest.len() + l.not_modified.len() + l.bundle.len() + l.upload.len();
    println!(
        "load: {} on {}, {devices} devices, {clients} clients: {requests} requests in {:.1} s = {:.0} requests/s, {:.0} devices/s (enroll + 2 syncs)",
        if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" },
        base,
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        devices as f64 / elapsed.as_secs_f64()
    );
    for (name, v) in [
        ("enroll", &mut l.enroll),
        ("manifest 200", &mut l.manifest),
        ("manifest 304", &mut l.not_modified),
        ("bundle", &mut l.bundle),
        ("upload (3 items)", &mut l.upload),
    ] {
        println!(
            "  {name:<17} {:>6}  p50 {:>7.2} ms  p99 {:>7.2} ms",
            v.len(),
            pct(v, 0.50),
            pct(v, 0.99)
        );
    }
    println!("  stored {stored} items, lost 0, duplicated 0 (checked against the server's counts)");
    drop(db);
    if let (Some(server), Some((_, name))) = (admin, url.rsplit_once('/')) {
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&server).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await
            .unwrap();
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}
