//! Issue 9 (16): a malformed JSON-RPC message gets the right error reply and the session goes
//! on; an oversized one is refused with a message. (The transport used to end the session.)

mod common;
use common::{start, stop};
use serde_json::json;

#[test]
fn malformed_messages_are_answered_and_the_session_goes_on() {
    let (root, mut ed) = start("malformed");
    for (body, code) in [
        (&b"{bad}"[..], -32700),
        (b"[]", -32600),
        (b"null", -32600),
        (br#"{"jsonrpc":"1.0","id":77,"method":"shutdown"}"#, -32600),
        (br#"{"jsonrpc":"2.0","id":78}"#, -32600),
        // Valid JSON that tower-lsp-server cannot decode: it used to stop answering after it
        // (found by the `lsp` fuzz target).
        (
            br#"{"jsonrpc":"2.0","id":79,"method":"textDocument/hover","id":80,"method":"x"}"#,
            -32600,
        ),
        (
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"shutdown"}"#,
            -32600,
        ),
    ] {
        ed.send_raw(body);
        // The error reply, then the server still answers a real request.
        let reply = loop {
            let m = ed.receive();
            if m.get("error").is_some() {
                break m;
            }
        };
        assert_eq!(
            reply["error"]["code"],
            code,
            "{}: {reply}",
            String::from_utf8_lossy(body)
        );
        let uri = ed.uri("baseline.hpl");
        let symbols = ed.request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        );
        assert!(symbols.is_array() || symbols.is_null(), "{symbols}");
    }
    stop(root, ed);
}

#[test]
fn an_oversized_message_is_refused_with_a_message() {
    let (root, mut ed) = start("oversized");
    let text = "#".repeat(17 * 1024 * 1024);
    let body = json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": ed.uri("big.hpl"), "languageId": "hpl", "version": 1, "text": text}}}).to_string();
    ed.send_raw(body.as_bytes());
    let message = loop {
        let m = ed.receive();
        if m["method"] == "window/showMessage" {
            break m;
        }
    };
    assert!(
        message["params"]["message"]
            .as_str()
            .is_some_and(|t| t.contains("larger than")),
        "{message}"
    );
    stop(root, ed);
}
