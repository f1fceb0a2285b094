//! A minimal LSP client that speaks to the built server over stdio.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// How long a test waits for the server's next message before it fails (instead of hanging,
/// which is what a server that stopped answering would otherwise make of the test).
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

pub struct Editor {
    pub child: Child,
    stdin: ChildStdin,
    /// The server's messages, read by a thread so that waiting for one can time out.
    messages: std::sync::mpsc::Receiver<Value>,
    next_id: i64,
    root: PathBuf,
    /// Everything the server wrote to stderr (its log), collected by a thread.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Editor {
    pub fn start(root: &Path) -> Editor {
        Editor::start_with(root, &[])
    }

    /// Starts the server with extra environment variables.
    pub fn start_with(root: &Path, env: &[(&str, &str)]) -> Editor {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hpl-lsp"));
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_BACKTRACE", "0");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start hpl-lsp");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, messages) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while let Some(m) = read_message(&mut stdout) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            sink.lock().expect("log").push_str(&text);
        });
        Editor {
            child,
            stdin,
            messages,
            next_id: 1,
            root: root.to_path_buf(),
            stderr: log,
        }
    }

    /// The server's stderr so far; complete once the server has exited (after `wait`).
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("log").clone()
    }

    /// Waits for the server to exit and for its log to be read; panics in features show here.
    pub fn finish(&mut self) -> (bool, String) {
        let ok = self.child.wait().expect("exit").success();
        // The reader thread ends at EOF, right after the process exits, dropping its handle.
        for _ in 0..100 {
            if std::sync::Arc::strong_count(&self.stderr) == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        (ok, self.stderr())
    }

    pub fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    /// The server's next message; fails the test if none comes within [`PATIENCE`] or the
    /// server closed its output.
    pub fn receive(&mut self) -> Value {
        match self.messages.recv_timeout(PATIENCE) {
            Ok(m) => m,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("no message from the server in {PATIENCE:?}")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the server closed its output")
            }
        }
    }

    /// Sends a frame with exactly this body (valid JSON-RPC or not).
    pub fn send_raw(&mut self, body: &[u8]) {
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).expect("write");
        self.stdin.write_all(body).expect("write");
        self.stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its result, collecting notifications that arrive first.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.receive();
            if m.get("id") == Some(&json!(id)) {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
        }
    }

    /// The next `publishDiagnostics`: (file name, codes, version).
    fn publication(&mut self) -> (String, Vec<String>, Value) {
        loop {
            let m = self.receive();
            if m["method"] != "textDocument/publishDiagnostics" {
                continue;
            }
            let name = m["params"]["uri"]
                .as_str()
                .expect("uri")
                .rsplit('/')
                .next()
                .expect("name")
                .to_string();
            let codes = m["params"]["diagnostics"]
                .as_array()
                .expect("array")
                .iter()
                .map(|d| d["code"].as_str().unwrap_or("").to_string())
                .collect();
            return (name, codes, m["params"]["version"].clone());
        }
    }

    /// Reads `publishDiagnostics` until every file has reported once; returns codes per file.
    pub fn diagnostics(&mut self, files: usize) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut out = std::collections::BTreeMap::new();
        while out.len() < files {
            let (name, codes, _) = self.publication();
            out.insert(name, codes);
        }
        out
    }

    /// Reads `publishDiagnostics` until `file`'s of `version` arrive: the server sends a file's
    /// diagnostics only when they (or its version) changed, so after an edit that is the
    /// edited file and whatever else changed. Returns the codes per file sent meanwhile.
    pub fn published(
        &mut self,
        file: &str,
        version: i64,
    ) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut out = std::collections::BTreeMap::new();
        loop {
            let (name, codes, v) = self.publication();
            let done = name == file && v == version;
            out.insert(name, codes);
            if done {
                return out;
            }
        }
    }

    pub fn uri(&self, file: &str) -> String {
        format!("file://{}", self.root.join(file).display())
    }

    pub fn scrub(&self, v: &Value) -> String {
        serde_json::to_string_pretty(v)
            .expect("json")
            .replace(&format!("file://{}", self.root.display()), "file://<root>")
    }
}

/// One framed message from the server, or `None` at the end of its output.
fn read_message(stdout: &mut BufReader<ChildStdout>) -> Option<Value> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.parse().expect("length");
        }
    }
    let mut body = vec![0; length];
    stdout.read_exact(&mut body).ok()?;
    Some(serde_json::from_slice(&body).expect("JSON"))
}

/// A copy of the examples named `name`, and a server on it past `initialize`/`initialized`.
pub fn start(name: &str) -> (PathBuf, Editor) {
    let root = workspace(name);
    let mut ed = Editor::start(&root);
    ed.request(
        "initialize",
        json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {}}),
    );
    ed.notify("initialized", json!({}));
    (root, ed)
}

/// `shutdown` and `exit`: the server stops cleanly, logged no panic, and the copy goes.
pub fn stop(root: PathBuf, mut ed: Editor) {
    assert_eq!(ed.request("shutdown", Value::Null), Value::Null);
    ed.notify("exit", Value::Null);
    let (ok, log) = ed.finish();
    assert!(ok, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    std::fs::remove_dir_all(root.parent().expect("parent")).ok();
}

pub fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("hpl-lsp-{name}-{}", std::process::id()))
        .join("acme");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // The policy files only (examples/acme/tests holds its `hpl test` suite).
    for e in std::fs::read_dir("../examples/acme").expect("examples") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "hpl") {
            std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

pub fn position_of(text: &str, needle: &str, delta: usize) -> Value {
    let at = text.find(needle).expect("needle") + delta;
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": col})
}

/// Byte offset of an LSP position (UTF-16 columns), as the server computes it.
pub fn offset_of(text: &str, pos: &Value) -> usize {
    let line = pos["line"].as_u64().unwrap_or(0) as usize;
    let character = pos["character"].as_u64().unwrap_or(0) as u32;
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut units = 0;
    for (i, c) in text[start..end].char_indices() {
        if units >= character {
            return start + i;
        }
        units += c.len_utf16() as u32;
    }
    end
}
