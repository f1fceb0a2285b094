//! The built `hpl-lsp` binary, spoken to over stdio exactly as an editor would.

mod common;
use common::{position_of, workspace, Editor};
use serde_json::{json, Value};

#[test]
fn an_editor_session() {
    let root = workspace("e2e");
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
    let changed = ed.published("baseline.hpl", 2);
    assert!(
        changed["baseline.hpl"].contains(&"HPL0401".to_string()),
        "{changed:?}"
    );
    // ... and remove it again.
    let line = after["line"].as_u64().expect("line");
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": baseline_uri, "version": 3},
        "contentChanges": [{"range": {"start": {"line": line, "character": 0}, "end": {"line": line + 1, "character": 0}}, "text": ""}]}));
    let removed = ed.published("baseline.hpl", 3);
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
    let scope_text = hover_scope["contents"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no hover on the scope: {hover_scope}"));
    assert!(scope_text.contains("platform"), "{scope_text}");
    let definition = ed.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": position_of(&text, "require core_cli", 10)}),
    );
    insta::assert_snapshot!("definition_set", ed.scrub(&definition));
    // A manager leads to the stdlib catalog.
    let catalog = ed.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": position_of(&text, "brew:git >= 2.40", 1)}),
    );
    assert!(
        catalog["uri"]
            .as_str()
            .expect("uri")
            .ends_with("managers.hpl"),
        "{catalog}"
    );
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
    let typo = ed.published("baseline.hpl", 4);
    assert!(
        typo["baseline.hpl"].contains(&"HPL0105".to_string()),
        "{typo:?}"
    );
    let actions = ed.request("textDocument/codeAction", json!({"textDocument": doc, "range": {"start": mode, "end": mode}, "context": {"diagnostics": []}}));
    insta::assert_snapshot!("code_action_quick_fix", ed.scrub(&actions));
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": baseline_uri, "version": 5}, "contentChanges": [{"text": text}]}));
    ed.published("baseline.hpl", 5);

    // A redundant rule gets a quick fix that removes it.
    let after_jq = position_of(&text, "  require core_cli\n", "  require core_cli\n".len());
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": baseline_uri, "version": 6},
        "contentChanges": [{"range": {"start": after_jq, "end": after_jq}, "text": "  require brew:jq\n"}]}));
    let redundant = ed.published("baseline.hpl", 6);
    assert!(
        redundant["baseline.hpl"].contains(&"HPL0407".to_string()),
        "{redundant:?}"
    );
    let removal = ed.request("textDocument/codeAction", json!({"textDocument": doc, "range": {"start": after_jq, "end": after_jq}, "context": {"diagnostics": []}}));
    insta::assert_snapshot!("code_action_remove_redundant", ed.scrub(&removal));
    ed.notify("textDocument/didChange", json!({"textDocument": {"uri": baseline_uri, "version": 7}, "contentChanges": [{"text": text}]}));
    ed.published("baseline.hpl", 7);

    let symbols = ed.request("workspace/symbol", json!({"query": "platform"}));
    let names: Vec<&str> = symbols
        .as_array()
        .expect("symbols")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["policy platform", "team platform"]);
    let tokens = ed.request(
        "textDocument/semanticTokens/full",
        json!({"textDocument": doc}),
    );
    let data = tokens["data"].as_array().expect("data");
    assert!(
        data.len() > 100 && data.len().is_multiple_of(5),
        "{} numbers",
        data.len()
    );
    assert_eq!(
        init["capabilities"]["semanticTokensProvider"]["legend"]["tokenTypes"][0],
        "keyword"
    );

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
