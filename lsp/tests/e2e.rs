//! The built `hpl-lsp` binary, spoken to over stdio exactly as an editor would.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

struct Editor {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
    root: PathBuf,
}

impl Editor {
    fn start(root: &Path) -> Editor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hpl-lsp"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hpl-lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Editor {
            child,
            stdin,
            stdout,
            next_id: 1,
            root: root.to_path_buf(),
        }
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn receive(&mut self) -> Value {
        let mut length = 0;
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).expect("read") > 0,
                "the server closed its output"
            );
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
        serde_json::from_slice(&body).expect("JSON")
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its result, collecting notifications that arrive first.
    fn request(&mut self, method: &str, params: Value) -> Value {
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

    /// Reads `publishDiagnostics` until every file has reported once; returns codes per file.
    fn diagnostics(&mut self, files: usize) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut out = std::collections::BTreeMap::new();
        while out.len() < files {
            let m = self.receive();
            if m["method"] == "textDocument/publishDiagnostics" {
                let uri = m["params"]["uri"]
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
                out.insert(uri, codes);
            }
        }
        out
    }

    fn uri(&self, file: &str) -> String {
        format!("file://{}", self.root.join(file).display())
    }

    fn scrub(&self, v: &Value) -> String {
        serde_json::to_string_pretty(v)
            .expect("json")
            .replace(&format!("file://{}", self.root.display()), "file://<root>")
    }
}

fn workspace() -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("hpl-lsp-e2e-{}", std::process::id()))
        .join("acme");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    for e in std::fs::read_dir("../examples/acme").expect("examples") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
    }
    dir
}

fn position_of(text: &str, needle: &str, delta: usize) -> Value {
    let at = text.find(needle).expect("needle") + delta;
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": col})
}

#[test]
fn an_editor_session() {
    let root = workspace();
    let files = std::fs::read_dir(&root).expect("dir").count();
    let mut ed = Editor::start(&root);
    let init = ed.request("initialize", json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {},
        "workspaceFolders": [{"uri": format!("file://{}", root.display()), "name": "acme"}]}));
    assert_eq!(
        init["capabilities"]["textDocumentSync"], 2,
        "incremental sync"
    );
    ed.notify("initialized", json!({}));

    let baseline_uri = ed.uri("baseline.hpl");
    let text = std::fs::read_to_string(root.join("baseline.hpl")).expect("read");
    ed.notify("textDocument/didOpen", json!({"textDocument": {"uri": baseline_uri, "languageId": "hpl", "version": 1, "text": text}}));
    let opened = ed.diagnostics(files);
    assert!(
        opened.values().flatten().all(|c| c == "HPL0406"),
        "the examples have only override notes: {opened:?}"
    );

    // Introduce a conflict in one file: it shows there, with the other file's rule related.
    let after = position_of(
        &text,
        "  require brew:mise\n",
        "  require brew:mise\n".len(),
    );
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": baseline_uri, "version": 2},
        "contentChanges": [{"range": {"start": after, "end": after}, "text": "  deny brew:mise\n"}]}));
    let changed = ed.diagnostics(files);
    assert!(
        changed["baseline.hpl"].contains(&"HPL0401".to_string()),
        "{changed:?}"
    );
    // ... and remove it again.
    let line = after["line"].as_u64().expect("line");
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": baseline_uri, "version": 3},
        "contentChanges": [{"range": {"start": {"line": line, "character": 0}, "end": {"line": line + 1, "character": 0}}, "text": ""}]}));
    let removed = ed.diagnostics(files);
    assert!(
        !removed["baseline.hpl"].contains(&"HPL0401".to_string()),
        "{removed:?}"
    );

    let doc = json!({"uri": baseline_uri});
    let hover = ed.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": position_of(&text, "brew:git >= 2.40", 6)}),
    );
    insta::assert_snapshot!("hover_package", ed.scrub(&hover));
    let hover_scope = ed.request("textDocument/hover", json!({"textDocument": {"uri": ed.uri("platform.hpl")}, "position": {"line": 2, "character": 10}}));
    assert!(hover_scope.is_null() || hover_scope["contents"]["value"].as_str().is_some());
    let definition = ed.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": position_of(&text, "require core_cli", 10)}),
    );
    insta::assert_snapshot!("definition_set", ed.scrub(&definition));
    let references = ed.request("textDocument/references", json!({"textDocument": doc, "position": position_of(&text, "require core_cli", 10), "context": {"includeDeclaration": true}}));
    assert_eq!(
        references.as_array().expect("locations").len(),
        2,
        "declaration and use"
    );
    let completion = ed.request("textDocument/completion", json!({"textDocument": doc, "position": position_of(&text, "device.ring", "device.".len())}));
    let labels: Vec<&str> = completion
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["label"].as_str().expect("label"))
        .collect();
    insta::assert_snapshot!("completion_device_fields", labels.join("\n"));

    // A typo with a suggested fix becomes a quick fix.
    let mode = position_of(&text, "mode assist", "mode ".len());
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": baseline_uri, "version": 4},
        "contentChanges": [{"range": {"start": mode, "end": {"line": mode["line"], "character": mode["character"].as_u64().expect("c") + 6}}, "text": "asist"}]}));
    let typo = ed.diagnostics(files);
    assert!(
        typo["baseline.hpl"].contains(&"HPL0105".to_string()),
        "{typo:?}"
    );
    let actions = ed.request("textDocument/codeAction", json!({"textDocument": doc, "range": {"start": mode, "end": mode}, "context": {"diagnostics": []}}));
    insta::assert_snapshot!("code_action_quick_fix", ed.scrub(&actions));
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": baseline_uri, "version": 5}, "contentChanges": [{"text": text}]}));
    ed.diagnostics(files);

    let formatting = ed.request(
        "textDocument/formatting",
        json!({"textDocument": doc, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(formatting, json!([]), "the example is already formatted");
    let lenses = ed.request("textDocument/codeLens", json!({"textDocument": doc}));
    insta::assert_snapshot!("code_lens_overrides", ed.scrub(&lenses));
    let symbols = ed.request("textDocument/documentSymbol", json!({"textDocument": doc}));
    assert!(symbols[0]["name"]
        .as_str()
        .expect("name")
        .starts_with("policy baseline"));

    assert_eq!(ed.request("shutdown", Value::Null), Value::Null);
    ed.notify("exit", Value::Null);
    let status = ed.child.wait().expect("exit");
    assert!(status.success());
    std::fs::remove_dir_all(root.parent().expect("parent")).ok();
}
