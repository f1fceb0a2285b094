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

/// A language server session: a valid `initialize` (with the examples as the workspace), then
/// the input as messages, then `shutdown` and `exit`. An input that starts with `R` is the raw
/// byte stream (headers and all); otherwise each line is one message body, framed, with
/// `file:///ROOT/` standing for the examples (tests/fixtures/lsp/session.jsonl is the seed). The server
/// must answer and stop: no panic (not even one it catches), no hang, and every frame it
/// writes is JSON.
pub fn lsp(data: &[u8]) {
    let _ = lsp_session(data);
}

/// [`lsp`], answering the frames the server wrote.
pub fn lsp_session(data: &[u8]) -> Vec<serde_json::Value> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let frame = |body: &[u8]| {
        let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        out.extend_from_slice(body);
        out
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/acme");
    let root = std::fs::canonicalize(root).expect("examples");
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {},
            // No quiet period: the worker's analyses and publications run within the session.
            "initializationOptions": {"debounceMs": 0}}});
    let init = frame(init.to_string().as_bytes());
    // (frame, is it a request): in line mode the session waits for the answer to each
    // request before the next message, so the session is the same every time it runs.
    let mut messages: Vec<(Vec<u8>, bool)> = Vec::new();
    match data.strip_prefix(b"R") {
        Some(raw) => messages.push((raw.to_vec(), false)),
        None => {
            let root_uri = format!("file://{}/", root.display());
            let text = String::from_utf8_lossy(data).replace("file:///ROOT/", &root_uri);
            for line in text.split('\n').filter(|l| !l.is_empty()) {
                let is_request = serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
                    v.get("id").is_some() && v.get("method").is_some_and(|m| m.is_string())
                });
                messages.push((frame(line.as_bytes()), is_request));
            }
        }
    }
    // A raw stream may end inside a frame: the shutdown starts on a fresh header either way
    // (the guard reads a broken frame as an error and goes on at the next header).
    messages.push((b"\r\n\r\n".to_vec(), false));
    messages.push((
        frame(br#"{"jsonrpc":"2.0","id":999999,"method":"shutdown"}"#),
        false,
    ));
    let before = hpl_lsp::internal_errors();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let frames = runtime.block_on(async move {
        let (mut to_server, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, from_server) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(hpl_lsp::transport::serve(server_in, server_out));
        // As an editor does: initialize and wait for the answer, then the session and
        // `shutdown`, and `exit` only once `shutdown` is answered.
        let (initialized, initialized_rx) = tokio::sync::oneshot::channel::<()>();
        let (shut, shut_rx) = tokio::sync::oneshot::channel::<()>();
        // How many answers (frames with an id and no method) the server has written.
        let (answered, mut answers) = tokio::sync::watch::channel(0usize);
        let writer = tokio::spawn(async move {
            let _ = to_server.write_all(&init).await;
            if initialized_rx.await.is_ok() {
                let mut requests = 1; // initialize
                for (bytes, is_request) in &messages {
                    if to_server.write_all(bytes).await.is_err() {
                        break;
                    }
                    if *is_request {
                        requests += 1;
                        // Every request gets one answer; a session that ended (`exit` in
                        // the input) has none to give.
                        if answers.wait_for(|n| *n >= requests).await.is_err() {
                            break;
                        }
                    }
                }
            }
            if shut_rx.await.is_ok() {
                let _ = to_server
                    .write_all(&frame(br#"{"jsonrpc":"2.0","method":"exit"}"#))
                    .await;
            }
            to_server
        });
        let mut r = BufReader::new(from_server);
        let (mut initialized, mut shut) = (Some(initialized), Some(shut));
        let mut frames = Vec::new();
        loop {
            let mut length = None;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let n = line
                    .strip_prefix("Content-Length: ")
                    .expect("a length header");
                length = Some(n.parse::<usize>().expect("a length"));
            }
            let Some(length) = length else { break };
            let mut body = vec![0; length];
            r.read_exact(&mut body).await.expect("the whole body");
            let v: serde_json::Value = serde_json::from_slice(&body).expect("a JSON frame");
            assert!(v.is_object(), "{v}");
            if v.get("id").is_some() && v.get("method").is_none() {
                answered.send_modify(|n| *n += 1);
            }
            if v["id"] == 0 {
                initialized.take().map(|s| s.send(()));
            }
            if v["id"] == 999999 {
                shut.take().map(|s| s.send(()));
            }
            frames.push(v);
        }
        let _ = server.await;
        drop(writer.await);
        frames
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    assert_eq!(
        hpl_lsp::internal_errors(),
        before,
        "the server caught a panic (see stderr)"
    );
    frames
}

/// `hpl test` files: any text as a test file; each test's overrides applied to an example
/// inventory, then evaluated, authorized and rendered as its snapshot would be.
pub fn policy_test(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = hpl_cli::test::spec::parse(text, "fuzz.toml") else {
        return;
    };
    static BASE: OnceLock<serde_json::Value> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/devices/platform-noncompliant.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
    });
    let device = hpl_runtime::device::Device::with_bundle(acme().clone(), None);
    for t in file.tests.iter().take(8) {
        let json = match &t.set {
            Some(set) => match hpl_cli::test::spec::apply(base.clone(), set) {
                Ok(j) => j,
                Err(_) => continue,
            },
            None => base.clone(),
        };
        let Ok(inv) = Inventory::from_json(&json) else {
            continue;
        };
        let record = device.evaluate(&inv, NOW);
        let asked: Vec<hpl_cli::test::snapshot::Asked> = t
            .authorize
            .iter()
            .take(8)
            .map(|a| {
                let request = a.request().to_string();
                hpl_cli::test::snapshot::Asked {
                    decision: device.authorize_json(&inv, &request, NOW),
                    request,
                }
            })
            .collect();
        let _ = hpl_cli::test::snapshot::render(&t.name, &record, &asked);
    }
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
    ("lsp", lsp),
    ("policy_test", policy_test),
];
