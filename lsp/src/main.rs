//! `hpl-lsp`: the hpl language server over stdio.

#[tokio::main]
async fn main() {
    hpl_lsp::serve_stdio().await;
}
