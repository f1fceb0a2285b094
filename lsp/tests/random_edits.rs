//! Random edit sequences on the example files: the server never crashes and always answers.

mod common;
use common::{workspace, Editor};
use proptest::prelude::*;
use serde_json::json;

const SNIPPETS: &[&str] = &[
    "require ",
    "brew:",
    "deny! ",
    "{",
    "}",
    "\n",
    "when device.",
    "\"",
    "# c",
    "policy x version 1 {\n",
    "scope team ",
    "window mon-fri 01:00-",
    "é😀",
    "[",
    "&&",
    " ",
    "",
];

#[derive(Debug, Clone)]
struct Edit {
    start: prop::sample::Index,
    len: usize,
    text: &'static str,
    probe: prop::sample::Index,
}

fn edit() -> impl Strategy<Value = Edit> {
    (
        any::<prop::sample::Index>(),
        0usize..30,
        prop::sample::select(SNIPPETS),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(start, len, text, probe)| Edit {
            start,
            len,
            text,
            probe,
        })
}

fn position(text: &str, at: usize) -> serde_json::Value {
    let at = (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let line = text[..at].matches('\n').count();
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let col: usize = text[line_start..at].chars().map(char::len_utf16).sum();
    json!({"line": line, "character": col})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn the_server_survives_any_edit_sequence(file in prop::sample::select(vec!["baseline.hpl", "groups.hpl", "platform.hpl"]), edits in prop::collection::vec(edit(), 1..30)) {
        let root = workspace("random");
        let mut ed = Editor::start(&root);
        ed.request("initialize", json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {}}));
        ed.notify("initialized", json!({}));
        let uri = ed.uri(file);
        let mut text = std::fs::read_to_string(root.join(file)).expect("read");
        ed.notify("textDocument/didOpen", json!({"textDocument": {"uri": uri, "languageId": "hpl", "version": 1, "text": text}}));
        for (version, e) in edits.iter().enumerate() {
            let start = e.start.index(text.len() + 1);
            let start_pos = position(&text, start);
            let end_pos = position(&text, start + e.len);
            // Apply the same edit locally (positions are clamped to character boundaries).
            let s = common::offset_of(&text, &start_pos);
            let en = common::offset_of(&text, &end_pos).max(s);
            text.replace_range(s..en, e.text);
            ed.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": version + 2},
                "contentChanges": [{"range": {"start": start_pos, "end": end_pos}, "text": e.text}]}));
            let probe = position(&text, e.probe.index(text.len() + 1));
            ed.request("textDocument/hover", json!({"textDocument": {"uri": uri}, "position": probe}));
            ed.request("textDocument/completion", json!({"textDocument": {"uri": uri}, "position": probe}));
        }
        ed.request("textDocument/formatting", json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}));
        ed.request("textDocument/codeLens", json!({"textDocument": {"uri": uri}}));
        ed.request("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
        prop_assert_eq!(ed.request("shutdown", serde_json::Value::Null), serde_json::Value::Null);
        ed.notify("exit", serde_json::Value::Null);
        let (ok, log) = ed.finish();
        prop_assert!(ok);
        // The server survives a panicking feature, but a panic is a bug: it must not happen.
        prop_assert!(!log.contains("panicked") && !log.contains("internal error"), "the server logged a panic:\n{}", log);
        std::fs::remove_dir_all(root.parent().expect("parent")).ok();
    }
}

/// The harness sees a panic in a feature: the server answers `null` and goes on, and the
/// panic is in its log (debug builds panic in hover when the variable is set).
#[test]
fn a_panic_in_a_feature_is_answered_and_logged() {
    let root = workspace("panic");
    let mut ed = Editor::start_with(&root, &[("HPL_LSP_TEST_PANIC_IN_HOVER", "1")]);
    ed.request("initialize", json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {}}));
    ed.notify("initialized", json!({}));
    let uri = ed.uri("baseline.hpl");
    let text = std::fs::read_to_string(root.join("baseline.hpl")).expect("read");
    ed.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "hpl", "version": 1, "text": text}}),
    );
    let hover = ed.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 5, "character": 12}}),
    );
    assert!(hover.is_null());
    // Still serving.
    let symbols = ed.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert!(
        symbols.as_array().is_some_and(|s| !s.is_empty()),
        "{symbols}"
    );
    assert_eq!(
        ed.request("shutdown", serde_json::Value::Null),
        serde_json::Value::Null
    );
    ed.notify("exit", serde_json::Value::Null);
    let (ok, log) = ed.finish();
    assert!(ok);
    assert!(
        log.contains("panicked") && log.contains("internal error"),
        "{log}"
    );
    std::fs::remove_dir_all(root.parent().expect("parent")).ok();
}
