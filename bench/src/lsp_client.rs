//! An editor over stdio for the language-server benchmark: `Content-Length` framed JSON-RPC
//! to the real `hpl-lsp` process.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub struct Editor {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

impl Editor {
    /// Starts `server` on the folder `root` with no debounce, and initializes it.
    pub fn start(server: &Path, root: &Path) -> Editor {
        let mut child = Command::new(server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hpl-lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut e = Editor {
            child,
            stdin,
            stdout,
        };
        e.send(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": null, "rootUri": uri(root), "capabilities": {},
            "initializationOptions": {"debounceMs": 0}}}),
        );
        while e.read().get("id") != Some(&json!(1)) {}
        e.send(&json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
        e
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn read(&mut self) -> Value {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).expect("read") == 0 {
                panic!("hpl-lsp closed its output");
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
        self.stdout.read_exact(&mut body).expect("body");
        serde_json::from_slice(&body).expect("json")
    }

    pub fn open(&mut self, path: &Path, text: &str) {
        self.send(
            &json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri(path), "languageId": "hpl", "version": 1, "text": text}}}),
        );
    }

    pub fn change(&mut self, path: &Path, version: i32, text: &str) {
        self.send(
            &json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri(path), "version": version},
            "contentChanges": [{"text": text}]}}),
        );
    }

    /// Reads messages until `path`'s diagnostics of `version` arrive; answers how many.
    pub fn wait_for_diagnostics(&mut self, path: &Path, version: i32) -> usize {
        let want = uri(path);
        loop {
            let m = self.read();
            if m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == want.as_str()
                && m["params"]["version"] == version
            {
                return m["params"]["diagnostics"].as_array().map_or(0, |d| d.len());
            }
        }
    }

    /// Ends the session. The server's unread messages (other files' diagnostics) are read to
    /// the end: a server blocked writing them would never read `shutdown`.
    pub fn stop(mut self) {
        self.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}));
        self.send(&json!({"jsonrpc": "2.0", "method": "exit"}));
        drop(self.stdin);
        let _ = std::io::copy(&mut self.stdout, &mut std::io::sink());
        let _ = self.child.wait();
    }
}
