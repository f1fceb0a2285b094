//! `hpl-lsp`: the hpl language server over stdio.

#[tokio::main]
async fn main() {
    hpl_lsp::serve_stdio().await;
    // Every frame is written and flushed. Exit now: a read of stdin may still be pending on a
    // blocking thread, and tokio cannot cancel it, so returning would wait for the next byte.
    std::process::exit(0);
}
