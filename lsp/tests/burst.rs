//! Issue 9 (17): a burst of changes is coalesced (the server used to analyse and publish every
//! file after each of them: 1,000 changes gave 13,013 diagnostic sets and kept the next hover
//! waiting behind them), and a document over the size the server analyses is refused with a
//! message instead of taking gigabytes.

mod common;
use common::{position_of, start, stop};
use serde_json::json;

#[test]
fn a_burst_of_changes_is_one_analysis_and_the_next_request_sees_all_of_them() {
    let (root, mut ed) = start("burst");
    let files = std::fs::read_dir(&root).expect("dir").count();
    let uri = ed.uri("baseline.hpl");
    let text = std::fs::read_to_string(root.join("baseline.hpl")).expect("read");
    ed.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "hpl", "version": 1, "text": text}}),
    );
    // 1,000 changes, each adding a comment line at the top; the last one adds a conflict.
    const CHANGES: i64 = 1000;
    for version in 2..=CHANGES {
        ed.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": format!("# {version}\n")}]}));
    }
    let after = position_of(
        &text,
        "  require brew:mise\n",
        "  require brew:mise\n".len(),
    );
    let line = after["line"].as_u64().expect("line") + (CHANGES as u64 - 1);
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": CHANGES + 1},
        "contentChanges": [{"range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}, "text": "  deny brew:mise\n"}]}));

    // A request right after the burst answers from all of it: the hover on the new rule.
    ed.send(
        &json!({"jsonrpc": "2.0", "id": 900, "method": "textDocument/hover",
        "params": {"textDocument": {"uri": uri}, "position": {"line": line, "character": 13}}}),
    );
    let mut published = 0;
    let hover = loop {
        let m = ed.receive();
        if m["method"] == "textDocument/publishDiagnostics" {
            published += 1;
        }
        if m["id"] == 900 {
            break m["result"].clone();
        }
    };
    let before_hover = published;
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        shown.contains("mise"),
        "the hover missed the last change: {hover}"
    );

    // Then the diagnostics of the last version arrive, with the conflict, and little else did.
    let last = loop {
        let m = ed.receive();
        if m["method"] == "textDocument/publishDiagnostics" {
            published += 1;
            if m["params"]["uri"] == uri.as_str() && m["params"]["version"] == CHANGES + 1 {
                break m;
            }
        }
    };
    let codes: Vec<&str> = last["params"]["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(codes.contains(&"HPL0401"), "{codes:?}");
    eprintln!(
        "{before_hover} diagnostic sets before the hover, {published} up to the last version's, for {CHANGES} changes to {files} files"
    );
    // One analysis publishes one set per file; a handful of analyses may run while the
    // messages arrive, never one per change.
    assert!(
        published <= 10 * files,
        "{published} diagnostic sets for {CHANGES} changes to {files} files"
    );
    stop(root, ed);
}

#[test]
fn a_document_over_the_analysed_size_is_refused_with_a_message_and_comes_back_when_smaller() {
    let (root, mut ed) = start("huge");
    let uri = ed.uri("huge.hpl");
    let big = format!(
        "policy huge version 1 {{\n  require brew:jq\n}}\n{}",
        "# padding\n".repeat(500_000)
    );
    ed.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "hpl", "version": 1, "text": big}}),
    );
    let message = loop {
        let m = ed.receive();
        if m["method"] == "window/showMessage" {
            break m;
        }
    };
    let text = message["params"]["message"].as_str().expect("message");
    assert!(text.contains("up to 4 MiB"), "{text}");
    // The document itself carries the reason, and no analysis of it.
    let refused = loop {
        let m = ed.receive();
        if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri.as_str() {
            break m;
        }
    };
    let diagnostics = refused["params"]["diagnostics"].as_array().expect("array");
    assert_eq!(diagnostics.len(), 1, "{refused}");
    assert!(diagnostics[0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("5000044 bytes")));
    let symbols = ed.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert!(
        symbols.is_null(),
        "a refused document was analysed: {symbols}"
    );

    // Cut back to a normal size, it is analysed again.
    ed.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
        "contentChanges": [{"text": "policy huge version 1 {\n  require brew:jq\n}\n"}]}),
    );
    let symbols = ed.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(symbols[0]["name"], "policy huge v1", "{symbols}");
    stop(root, ed);
}

/// A document that is not on disk loses its diagnostics when it is closed (the server used to
/// leave the last set standing in the editor).
#[test]
fn closing_an_unsaved_document_clears_its_diagnostics() {
    let (root, mut ed) = start("closed");
    let uri = ed.uri("scratch.hpl");
    ed.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "hpl", "version": 1,
        "text": "policy scratch version 1 {\n  mode asist\n}\n"}}),
    );
    let opened = loop {
        let m = ed.receive();
        if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri.as_str() {
            break m;
        }
    };
    assert!(
        !opened["params"]["diagnostics"]
            .as_array()
            .expect("array")
            .is_empty(),
        "{opened}"
    );
    ed.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri}}),
    );
    let closed = loop {
        let m = ed.receive();
        if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri.as_str() {
            break m;
        }
    };
    assert_eq!(closed["params"]["diagnostics"], json!([]), "{closed}");
    stop(root, ed);
}
