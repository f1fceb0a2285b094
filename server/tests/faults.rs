//! Faults with the real `hpl-server` binary: killed (SIGKILL) while devices upload, it loses
//! no record it acknowledged — after a restart, every acknowledged item sent again is a
//! duplicate. On SQLite, and on PostgreSQL when `HPL_TEST_DATABASE_URL` is set.

mod common;
use common::*;
use hpl_agent::client::{Client, Retry};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hpl-server");

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hpl-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn admin(url: &str, token: Option<&str>, args: &[&str]) -> serde_json::Value {
    let mut c = Command::new(BIN);
    c.args(["--database-url", url, "--format", "json"])
        .args(args);
    if let Some(t) = token {
        c.env("HPL_TOKEN", t);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(url: &str, port: u16) -> Child {
    let child = Command::new(BIN)
        .args(["--database-url", url, "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while Client::new(&base, Duration::from_secs(1))
        .with_retry(Retry {
            attempts: 1,
            ..Retry::default()
        })
        .operator("", "GET", "/healthz", None, "text/plain")
        .is_err()
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no server");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn event(serial: &str) -> serde_json::Value {
    serde_json::json!({ "event": "remediation_started", "tenant_id": "acme", "device_id": serial, "policy_version": 1 })
}

fn urls(dir: &Path) -> Vec<String> {
    let mut out = vec![format!("sqlite://{}", dir.join("server.db").display())];
    match std::env::var("HPL_TEST_DATABASE_URL") {
        Ok(url) => {
            let name = format!("hpl_test_faults_{}", std::process::id());
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                for q in [
                    format!("DROP DATABASE IF EXISTS {name}"),
                    format!("CREATE DATABASE {name}"),
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(q))
                        .execute(&mut c)
                        .await
                        .unwrap();
                }
            });
            let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
            out.push(format!("{base}/{name}"));
        }
        Err(_) => {
            eprintln!("PostgreSQL not tested: HPL_TEST_DATABASE_URL is not set (.ci/run sets it)")
        }
    }
    out
}

#[test]
fn a_server_killed_mid_ingest_loses_no_acknowledged_record() {
    let dir = temp("kill");
    for (n, url) in urls(&dir).into_iter().enumerate() {
        let init = admin(&url, None, &["init"]);
        let owner = init["owner_token"].as_str().unwrap().to_string();
        let key = dir.join(format!("policy-{n}.pub"));
        std::fs::write(&key, public_text(&policy_key())).unwrap();
        let tenant = admin(
            &url,
            Some(&owner),
            &[
                "tenant",
                "add",
                "acme",
                "--policy-key",
                key.to_str().unwrap(),
            ],
        );
        let enrollment = tenant["enrollment_token"].as_str().unwrap().to_string();
        let port = free_port();
        let mut server = serve(&url, port);
        let base = format!("http://127.0.0.1:{port}");

        let devices: Vec<(PathBuf, hpl_agent::Identity)> = (0..6)
            .map(|i| {
                let store = dir.join(format!("device-{n}-{i}"));
                let id = hpl_agent::enroll(
                    &base,
                    &enrollment,
                    &store,
                    &format!("K{i}"),
                    &[],
                    Duration::from_secs(10),
                )
                .unwrap();
                (store, id)
            })
            .collect();

        // Devices upload batches of 20 until the server dies; every acknowledged key is kept.
        let acked: Arc<Mutex<HashSet<(String, String, u64)>>> = Arc::default();
        let threads: Vec<_> = devices
            .iter()
            .cloned()
            .map(|(store, id)| {
                let acked = acked.clone();
                let base = base.clone();
                std::thread::spawn(move || {
                    let key = hpl_agent::identity::key(&store).unwrap();
                    let client = Client::new(&base, Duration::from_secs(30)).with_retry(Retry {
                        attempts: 1,
                        ..Retry::default()
                    });
                    for batch in 0.. {
                        let items: Vec<serde_json::Value> = (0..20)
                            .map(|seq| serde_json::json!({ "task_id": format!("b{batch}"), "seq": seq, "kind": "event", "body": event(&id.serial) }))
                            .collect();
                        let body = serde_json::to_vec(&serde_json::json!({ "items": items })).unwrap();
                        let Ok(reply) = client.signed(&key, &id.device_id, "POST", "/v1/device/reports", Some(&body), &[]) else {
                            return;
                        };
                        let acks: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                        let mut set = acked.lock().unwrap();
                        for a in acks["items"].as_array().unwrap() {
                            assert_eq!(a["disposition"], "stored");
                            set.insert((id.device_id.clone(), a["task_id"].as_str().unwrap().to_string(), a["seq"].as_u64().unwrap()));
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        server.kill().unwrap(); // SIGKILL: no graceful shutdown, transactions cut short
        server.wait().unwrap();
        for t in threads {
            t.join().unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        assert!(
            acked.len() >= 100,
            "the devices uploaded before the kill ({})",
            acked.len()
        );

        // After a restart, each acknowledged item sent again is already stored.
        let mut server = serve(&url, port);
        for (store, id) in &devices {
            let key = hpl_agent::identity::key(store).unwrap();
            let client = Client::new(&base, Duration::from_secs(30));
            let mine: Vec<_> = acked
                .iter()
                .filter(|(d, _, _)| d == &id.device_id)
                .collect();
            for chunk in mine.chunks(500) {
                let items: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|(_, task, seq)| serde_json::json!({ "task_id": task, "seq": seq, "kind": "event", "body": event(&id.serial) }))
                    .collect();
                let body = serde_json::to_vec(&serde_json::json!({ "items": items })).unwrap();
                let reply = client
                    .signed(
                        &key,
                        &id.device_id,
                        "POST",
                        "/v1/device/reports",
                        Some(&body),
                        &[],
                    )
                    .unwrap();
                let acks: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                for a in acks["items"].as_array().unwrap() {
                    assert_eq!(
                        a["disposition"], "duplicate",
                        "{url}: an acknowledged item was lost: {a}"
                    );
                }
            }
        }
        server.kill().unwrap();
        server.wait().unwrap();
        if let (Ok(admin), Some((_, name))) =
            (std::env::var("HPL_TEST_DATABASE_URL"), url.rsplit_once('/'))
        {
            if url.starts_with("postgres") {
                tokio::runtime::Runtime::new().unwrap().block_on(async {
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
    std::fs::remove_dir_all(&dir).unwrap();
}
