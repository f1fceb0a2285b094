//! A guard in front of tower-lsp-server's transport. That transport ends the session on a
//! message it cannot read; an editor (or anything writing to our stdin) must not be able to
//! do that. So the framing is read here: each message is checked to be JSON-RPC 2.0 before it
//! is passed on, a malformed one is answered with the JSON-RPC error (parse error, invalid
//! request) and dropped, and one larger than [`MAX_MESSAGE_BYTES`] is skipped without being
//! buffered, with a `window/showMessage` saying why. Everything the server writes, and these
//! replies, go out as whole frames through one writer.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The largest message the server reads (a 16 MiB document is far beyond any policy file).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// One frame's body, or why there is none.
enum Frame {
    Body(Vec<u8>),
    TooLarge(usize),
    /// A header block without a usable `Content-Length`.
    BadHeader,
    End,
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Frame> {
    let mut length: Option<usize> = None;
    let mut saw_header = false;
    loop {
        let mut line = String::new();
        // Header lines are short; a client that sends an endless line is cut off here.
        let n = r.take(8 * 1024).read_line(&mut line).await?;
        if n == 0 {
            return Ok(Frame::End);
        }
        let line = line.trim_end();
        if line.is_empty() {
            if !saw_header {
                continue;
            }
            break;
        }
        saw_header = true;
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            }
        }
    }
    let Some(length) = length else {
        return Ok(Frame::BadHeader);
    };
    if length > MAX_MESSAGE_BYTES {
        // Skip the body without keeping it.
        let mut left = length as u64;
        let mut sink = tokio::io::sink();
        while left > 0 {
            let copied = tokio::io::copy(&mut r.take(left), &mut sink).await?;
            if copied == 0 {
                return Ok(Frame::End);
            }
            left -= copied;
        }
        return Ok(Frame::TooLarge(length));
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).await?;
    Ok(Frame::Body(body))
}

/// Why a body is not a JSON-RPC 2.0 message, as the error to reply with.
fn check(body: &[u8]) -> Result<(), Value> {
    let error = |code: i64, message: &str, id: Value| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Err(error(-32700, &format!("parse error: {e}"), Value::Null)),
    };
    let Some(o) = v.as_object() else {
        return Err(error(
            -32600,
            "invalid request: not a JSON object",
            Value::Null,
        ));
    };
    let id = o.get("id").cloned().unwrap_or(Value::Null);
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(error(
            -32600,
            "invalid request: `jsonrpc` must be \"2.0\"",
            id,
        ));
    }
    let is_request = o.get("method").is_some_and(Value::is_string);
    let is_response = o.contains_key("id") && (o.contains_key("result") || o.contains_key("error"));
    if !is_request && !is_response {
        return Err(error(-32600, "invalid request: no `method`", id));
    }
    // Last, what tower-lsp-server itself must decode: a message it cannot (a duplicate key, an
    // `id` that is neither a number nor a string) used to get its own id-less error, after
    // which it answered nothing more, the session dead but not ended (found by the `lsp` fuzz
    // target). Such a message is answered and dropped here instead.
    let decoded = if is_request {
        serde_json::from_slice::<tower_lsp_server::jsonrpc::Request>(body).map(drop)
    } else {
        serde_json::from_slice::<tower_lsp_server::jsonrpc::Response>(body).map(drop)
    };
    if let Err(e) = decoded {
        let id = match id {
            Value::Number(_) | Value::String(_) => id,
            _ => Value::Null,
        };
        return Err(error(-32600, &format!("invalid request: {e}"), id));
    }
    Ok(())
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Serves the language server on `input`/`output` behind the guard.
pub async fn serve<I, O>(input: I, output: O)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let (service, socket) = crate::service();
    let (mut to_server, server_in) = tokio::io::duplex(1 << 20);
    let (server_out, from_server) = tokio::io::duplex(1 << 20);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);

    // One writer: whole frames only, in the order they are queued.
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(body) = rx.recv().await {
            if output.write_all(&frame(&body)).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    // The server's own frames.
    let server_tx = tx.clone();
    let relay = tokio::spawn(async move {
        let mut r = BufReader::new(from_server);
        while let Ok(Frame::Body(body)) = read_frame(&mut r).await {
            if server_tx.send(body).await.is_err() {
                break;
            }
        }
    });
    // The client's frames, checked.
    let reader = tokio::spawn(async move {
        let mut r = BufReader::new(input);
        loop {
            match read_frame(&mut r).await {
                Ok(Frame::Body(body)) => match check(&body) {
                    Ok(()) => {
                        if to_server.write_all(&frame(&body)).await.is_err() {
                            break;
                        }
                    }
                    Err(reply) => {
                        let _ = tx.send(reply.to_string().into_bytes()).await;
                    }
                },
                Ok(Frame::TooLarge(n)) => {
                    let note = json!({"jsonrpc": "2.0", "method": "window/showMessage", "params": {"type": 1,
                        "message": format!("hpl-lsp: a message of {n} bytes is larger than the {MAX_MESSAGE_BYTES} bytes it accepts; it was ignored")}});
                    let _ = tx.send(note.to_string().into_bytes()).await;
                }
                Ok(Frame::BadHeader) => {
                    let reply = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error: a message without a valid Content-Length"}});
                    let _ = tx.send(reply.to_string().into_bytes()).await;
                }
                Ok(Frame::End) | Err(_) => break,
            }
        }
        // End of input: the server sees the end of its input and stops.
        drop(to_server);
    });
    tower_lsp_server::Server::new(server_in, server_out, socket)
        .serve(service)
        .await;
    // `exit` (or the end of input): let the server's last frames out, then stop.
    reader.abort();
    let _ = relay.await;
    let _ = writer.await;
}
