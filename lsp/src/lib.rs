//! `hpl-lsp`: the compiler's diagnostics while typing, and where every rule comes from.
//!
//! The server keeps the open documents ([`workspace`]), re-runs the compiler's own analysis of
//! the whole policy directory on every change (the same `analyze_sources` as `hpl check`, so
//! the same codes and messages), and answers each request from it ([`features`]).

pub mod features;
pub mod position;
pub mod publish;
pub mod transport;
pub mod workspace;

use hpl_compiler::check::CheckOptions;
use position::{offset, range};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService};
use workspace::Workspace;

pub struct Backend {
    client: Client,
    shared: Arc<Shared>,
    /// Set once the analysis worker runs (it starts with the first document).
    worker: std::sync::OnceLock<()>,
}

/// What the request handlers and the analysis worker share.
struct Shared {
    state: Mutex<Workspace>,
    /// The workspace's change counter, readable while an analysis runs without the workspace.
    generation: Arc<AtomicU64>,
    /// Requests waiting for an analysis of the current inputs: while there are any, a running
    /// analysis is not given up for newer inputs (the request would starve under typing).
    waiting: Arc<AtomicUsize>,
    /// Wakes the worker after a change.
    wake: Notify,
    /// One analysis at a time: a second caller waits and then finds the work done.
    analysing: tokio::sync::Mutex<()>,
    /// The quiet period in milliseconds ([`DEBOUNCE`] unless `initializationOptions` say).
    debounce_ms: AtomicU64,
}

/// How long the inputs must stay unchanged before the worker analyses them: a burst of
/// keystrokes (or of `didChange` messages) becomes one analysis and one set of diagnostics.
/// An editor may set it with `initializationOptions: {"debounceMs": N}`, up to
/// [`MAX_DEBOUNCE`].
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// The longest quiet period an editor may ask for.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

/// The language server as a tower service, with the socket for its messages to the client.
pub fn service() -> (LspService<Backend>, tower_lsp_server::ClientSocket) {
    LspService::new(|client| {
        let ws = Workspace::default();
        let generation = ws.generation();
        Backend {
            client,
            shared: Arc::new(Shared {
                state: Mutex::new(ws),
                generation,
                waiting: Arc::new(AtomicUsize::new(0)),
                wake: Notify::new(),
                analysing: tokio::sync::Mutex::new(()),
                debounce_ms: AtomicU64::new(DEBOUNCE.as_millis() as u64),
            }),
            worker: std::sync::OnceLock::new(),
        }
    })
}

/// Serves the protocol on stdin and stdout, behind the [`transport`] guard.
pub async fn serve_stdio() {
    transport::serve(tokio::io::stdin(), tokio::io::stdout()).await;
}

fn path_of(uri: &Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|p| p.into_owned())
}

/// Writes an embedded stdlib file to `<temp>/hpl-stdlib-<version>/` (once) and returns its path.
fn materialize_stdlib(name: &str, text: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hpl-stdlib-{}", env!("CARGO_PKG_VERSION")));
    let file = dir.join(name.rsplit('/').next()?);
    if std::fs::read_to_string(&file).ok().as_deref() != Some(text) {
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::write(&file, text).ok()?;
    }
    Some(file)
}

fn uri_of(path: &std::path::Path) -> Option<Uri> {
    Uri::from_file_path(path)
}

impl Shared {
    /// Runs `f` on the state. A panic inside is a bug: the editor keeps a working server (the
    /// request answers `None`), but the bug is never silent: the panic hook has printed it to
    /// stderr (the editor's server log) and this adds a line tests look for.
    fn with<T>(&self, f: impl FnOnce(&mut Workspace) -> Option<T>) -> Option<T> {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut guard))) {
            Ok(answer) => answer,
            Err(payload) => {
                log_panic(&*payload);
                None
            }
        }
    }

    /// Brings the analysis up to date with the inputs, unless a newer change makes that
    /// pointless and nobody is waiting for it (then the analysis is given up between stages
    /// and the next one starts after the next quiet period).
    async fn refresh(&self) {
        let _turn = self.analysing.lock().await;
        let Some((generation, inputs, parses)) = self.with(|ws| {
            (!ws.is_current()).then(|| {
                let (generation, inputs) = ws.inputs();
                (generation, inputs, ws.parses.clone())
            })
        }) else {
            return;
        };
        let (current, waiting) = (self.generation.clone(), self.waiting.clone());
        let job = tokio::task::spawn_blocking(move || {
            // A panic in an earlier analysis poisons the lock; the trees it left are whole.
            let mut cache = parses.lock().unwrap_or_else(|p| p.into_inner());
            hpl_compiler::analyze_sources_cached(
                inputs,
                CheckOptions::default(),
                &|| {
                    current.load(Ordering::SeqCst) != generation
                        && waiting.load(Ordering::SeqCst) == 0
                },
                &mut cache,
            )
        });
        match job.await {
            Ok(Ok(analysis)) => {
                self.with(|ws| Some(ws.install(generation, analysis)));
            }
            // Newer inputs, nobody waiting: the worker has been woken for them.
            Ok(Err(hpl_compiler::Cancelled)) => {}
            Err(e) => {
                // The analysis panicked (a bug): keep the last good analysis, and do not
                // retry the same inputs until they change.
                if let Ok(payload) = e.try_into_panic() {
                    log_panic(&*payload);
                }
                self.with(|ws| {
                    ws.analyzed = generation;
                    ws.published = generation;
                    Some(())
                });
            }
        }
    }

    /// Waits until the analysis is of the inputs as they are now: every change sent before a
    /// request is seen by it. A burst of changes costs one analysis here, not one per change.
    async fn fresh(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.refresh().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Internal errors (panics caught in a feature or an analysis) since the process started:
/// each is a bug. The fuzz target of the message stream fails on any.
pub fn internal_errors() -> usize {
    INTERNAL_ERRORS.load(Ordering::SeqCst)
}

static INTERNAL_ERRORS: AtomicUsize = AtomicUsize::new(0);

fn log_panic(payload: &(dyn std::any::Any + Send)) {
    INTERNAL_ERRORS.fetch_add(1, Ordering::SeqCst);
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    eprintln!("hpl-lsp: internal error (a bug; please report it): {what}");
}

/// The analysis worker: after each change, wait for a quiet period, analyse, publish.
async fn run_worker(client: Client, shared: Arc<Shared>) {
    loop {
        shared.wake.notified().await;
        loop {
            let seen = shared.generation.load(Ordering::SeqCst);
            let quiet = Duration::from_millis(shared.debounce_ms.load(Ordering::SeqCst));
            tokio::time::sleep(quiet).await;
            if shared.generation.load(Ordering::SeqCst) == seen {
                break;
            }
        }
        shared.refresh().await;
        publish(&client, &shared).await;
    }
}

/// Publishes what changed since the last publication ([`publish::pending`]).
async fn publish(client: &Client, shared: &Shared) {
    let batches = shared.with(|ws| Some(publish::pending(ws)));
    for (uri, diags, version) in batches.unwrap_or_default() {
        client.publish_diagnostics(uri, diags, version).await;
    }
}

impl Backend {
    fn with<T>(&self, f: impl FnOnce(&mut Workspace) -> Option<T>) -> Option<T> {
        self.shared.with(f)
    }

    /// After a change: start the worker if it does not run yet, and wake it.
    fn changed(&self) {
        self.worker.get_or_init(|| {
            tokio::spawn(run_worker(self.client.clone(), self.shared.clone()));
        });
        self.shared.wake.notify_one();
    }

    /// The analysis, file id and byte offset for a position in a document.
    /// Every request sees every change sent before it: this waits for the analysis of them.
    async fn locate<T>(
        &self,
        uri: &Uri,
        pos: Position,
        f: impl FnOnce(&hpl_compiler::Analysis, hpl_compiler::source::FileId, usize) -> Option<T>,
    ) -> Option<T> {
        let path = path_of(uri)?;
        self.shared.fresh().await;
        self.with(|ws| {
            let id = ws.file(&path)?;
            let a = ws.analysis.as_ref()?;
            let o = offset(&a.db.get(id).text, pos);
            f(a, id, o)
        })
    }

    fn span_location(
        a: &hpl_compiler::Analysis,
        span: hpl_compiler::source::Span,
    ) -> Option<Location> {
        let f = a.db.get(span.file);
        let path = match &f.path {
            Some(p) => p.clone(),
            // The stdlib is embedded: write it out once so editors can open the catalog.
            None if f.is_stdlib => materialize_stdlib(&f.name, &f.text)?,
            None => return None,
        };
        Some(Location::new(
            uri_of(&path)?,
            range(&f.text, span.start as usize, span.end as usize),
        ))
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .and_then(|f| path_of(&f.uri))
            .or_else(|| {
                #[allow(deprecated)]
                params.root_uri.as_ref().and_then(path_of)
            });
        self.with(|ws| {
            ws.root = root;
            Some(())
        });
        let requested = params
            .initialization_options
            .as_ref()
            .and_then(|o| o.get("debounceMs"))
            .and_then(serde_json::Value::as_u64);
        if let Some(ms) = requested {
            let ms = ms.min(MAX_DEBOUNCE.as_millis() as u64);
            self.shared.debounce_ms.store(ms, Ordering::SeqCst);
        }
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::INCREMENTAL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".into(), ":".into(), " ".into(), "\"".into()]),
                    ..Default::default()
                }),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                document_formatting_provider: Some(OneOf::Left(true)),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                semantic_tokens_provider: Some(
                    SemanticTokensServerCapabilities::SemanticTokensOptions(
                        SemanticTokensOptions {
                            legend: SemanticTokensLegend {
                                token_types: features::TOKEN_TYPES
                                    .iter()
                                    .map(|t| SemanticTokenType::new(t))
                                    .collect(),
                                token_modifiers: vec![],
                            },
                            full: Some(SemanticTokensFullOptions::Bool(true)),
                            range: None,
                            ..Default::default()
                        },
                    ),
                ),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "hpl-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            ..Default::default()
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let Some(path) = path_of(&doc.uri) else {
            return;
        };
        let refused = self.with(|ws| {
            ws.open_document(path.clone(), doc.text, Some(doc.version));
            ws.open[&path].refusal()
        });
        self.changed();
        if let Some(reason) = refused {
            self.client
                .show_message(MessageType::WARNING, format!("hpl-lsp: {reason}"))
                .await;
        }
    }

    /// Applies the edits, and only that: no analysis runs here. The worker analyses once the
    /// changes pause ([`DEBOUNCE`]), and a request analyses what it needs first.
    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri) else {
            return;
        };
        let version = params.text_document.version;
        let newly_refused = self.with(|ws| {
            let before = ws.open.get(&path).and_then(|d| d.refusal()).is_some();
            ws.change_document(path.clone(), version, params.content_changes);
            let after = ws.open[&path].refusal();
            after.filter(|_| !before)
        });
        self.changed();
        if let Some(reason) = newly_refused {
            self.client
                .show_message(MessageType::WARNING, format!("hpl-lsp: {reason}"))
                .await;
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        if let Some(path) = path_of(&params.text_document.uri) {
            self.with(|ws| {
                ws.close_document(&path);
                Some(())
            });
            self.changed();
        }
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let p = params.text_document_position_params;
        Ok(self
            .locate(&p.text_document.uri, p.position, |a, id, o| {
                // Debug builds only: lets the tests prove a panic in a feature is seen.
                #[cfg(debug_assertions)]
                if std::env::var_os("HPL_LSP_TEST_PANIC_IN_HOVER").is_some() {
                    panic!("HPL_LSP_TEST_PANIC_IN_HOVER is set");
                }
                let (text, span) = features::hover(a, id, o)?;
                Some(Hover {
                    contents: HoverContents::Markup(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: text,
                    }),
                    range: Some(range(
                        &a.db.get(id).text,
                        span.start as usize,
                        span.end as usize,
                    )),
                })
            })
            .await)
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let p = params.text_document_position_params;
        Ok(self
            .locate(&p.text_document.uri, p.position, |a, id, o| {
                Some(GotoDefinitionResponse::Scalar(Self::span_location(
                    a,
                    features::definition(a, id, o)?,
                )?))
            })
            .await)
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let p = params.text_document_position;
        Ok(self
            .locate(&p.text_document.uri, p.position, |a, id, o| {
                Some(
                    features::references(a, id, o)
                        .into_iter()
                        .filter_map(|s| Self::span_location(a, s))
                        .collect(),
                )
            })
            .await)
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let p = params.text_document_position;
        Ok(self
            .locate(&p.text_document.uri, p.position, |a, id, o| {
                let text = &a.db.get(id).text;
                let line_start = text[..o].rfind('\n').map_or(0, |i| i + 1);
                let before = &text[line_start..o];
                // Inside a policy when the nearest `policy`/`}` above is a `policy`.
                let above = &text[..line_start];
                let in_policy = above
                    .rfind("\npolicy ")
                    .or_else(|| above.starts_with("policy ").then_some(0))
                    .is_some_and(|p| !above[p..].contains("\n}"));
                let items = features::completions(a, before, in_policy)
                    .into_iter()
                    .map(|(label, kind, detail)| CompletionItem {
                        label,
                        kind: Some(match kind {
                            "keyword" => CompletionItemKind::KEYWORD,
                            "field" => CompletionItemKind::FIELD,
                            "manager" => CompletionItemKind::MODULE,
                            "set" => CompletionItemKind::CONSTANT,
                            "scope" => CompletionItemKind::ENUM_MEMBER,
                            _ => CompletionItemKind::VALUE,
                        }),
                        detail: if detail.is_empty() {
                            None
                        } else {
                            Some(detail)
                        },
                        ..Default::default()
                    })
                    .collect();
                Some(CompletionResponse::Array(items))
            })
            .await)
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        Ok(self
            .locate(
                &params.text_document.uri,
                Position::default(),
                |a, id, _| {
                    let text = &a.db.get(id).text;
                    let tree = &a.files.iter().find(|(f, _)| *f == id)?.1;
                    let sym = |name: String,
                               kind: SymbolKind,
                               span: hpl_compiler::source::Span,
                               sel: hpl_compiler::source::Span,
                               children: Vec<DocumentSymbol>| {
                        #[allow(deprecated)]
                        DocumentSymbol {
                            name,
                            detail: None,
                            kind,
                            tags: None,
                            deprecated: None,
                            range: range(text, span.start as usize, span.end as usize),
                            selection_range: range(text, sel.start as usize, sel.end as usize),
                            children: if children.is_empty() {
                                None
                            } else {
                                Some(children)
                            },
                        }
                    };
                    let mut out = Vec::new();
                    for item in &tree.items {
                        use hpl_compiler::syntax::ast::{Item, StmtKind};
                        match item {
                            Item::Tenant(n, s) => out.push(sym(
                                format!("tenant {}", n.text),
                                SymbolKind::NAMESPACE,
                                *s,
                                n.span,
                                vec![],
                            )),
                            Item::Department(d) => {
                                let teams = d
                                    .teams
                                    .iter()
                                    .map(|t| {
                                        sym(
                                            format!("team {}", t.text),
                                            SymbolKind::ENUM_MEMBER,
                                            t.span,
                                            t.span,
                                            vec![],
                                        )
                                    })
                                    .collect();
                                out.push(sym(
                                    format!("department {}", d.name.text),
                                    SymbolKind::ENUM,
                                    d.span,
                                    d.name.span,
                                    teams,
                                ));
                            }
                            Item::Environment(n, s) => out.push(sym(
                                format!("environment {}", n.text),
                                SymbolKind::ENUM_MEMBER,
                                *s,
                                n.span,
                                vec![],
                            )),
                            Item::DeviceGroup(n, s) => out.push(sym(
                                format!("device_group {}", n.text),
                                SymbolKind::ENUM_MEMBER,
                                *s,
                                n.span,
                                vec![],
                            )),
                            Item::Set(s) => out.push(sym(
                                format!("set {}", s.name.text),
                                SymbolKind::CONSTANT,
                                s.span,
                                s.name.span,
                                vec![],
                            )),
                            Item::Manager(m) => out.push(sym(
                                format!("manager {}", m.name.text),
                                SymbolKind::MODULE,
                                m.span,
                                m.name.span,
                                vec![],
                            )),
                            Item::Policy(p) => {
                                let rules = p
                                    .stmts
                                    .iter()
                                    .filter(|s| {
                                        matches!(
                                            s.kind,
                                            StmtKind::Rule(_)
                                                | StmtKind::Toolchain(_)
                                                | StmtKind::Window(_)
                                                | StmtKind::Guard(_)
                                        )
                                    })
                                    .map(|s| {
                                        sym(
                                            hpl_compiler::fmt::stmt_text(s),
                                            SymbolKind::FIELD,
                                            s.span,
                                            s.span,
                                            vec![],
                                        )
                                    })
                                    .collect();
                                out.push(sym(
                                    format!("policy {} v{}", p.name.text, p.version),
                                    SymbolKind::CLASS,
                                    p.span,
                                    p.name.span,
                                    rules,
                                ));
                            }
                        }
                    }
                    Some(DocumentSymbolResponse::Nested(out))
                },
            )
            .await)
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri.clone();
        Ok(self
            .locate(&uri, params.range.start, |a, id, _| {
                let text = &a.db.get(id).text;
                // Whole lines: a cursor anywhere on a diagnostic's line gets its fixes.
                let from = text[..offset(text, params.range.start)]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let to_offset = offset(text, params.range.end);
                let to = text[to_offset..]
                    .find('\n')
                    .map_or(text.len(), |i| to_offset + i);
                let mut actions = Vec::new();
                for d in features::diagnostics_of(a, id) {
                    if (d.primary.span.end as usize) < from || (d.primary.span.start as usize) > to
                    {
                        continue;
                    }
                    if let Some((start, end, title)) = features::removable_rule(a, d) {
                        let mut changes = std::collections::HashMap::new();
                        changes.insert(
                            uri.clone(),
                            vec![TextEdit {
                                range: range(text, start, end),
                                new_text: String::new(),
                            }],
                        );
                        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                            title: format!("{title} ({})", d.code),
                            kind: Some(CodeActionKind::QUICKFIX),
                            edit: Some(WorkspaceEdit {
                                changes: Some(changes),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }));
                    }
                    let Some(s) = &d.suggestion else { continue };
                    if s.span.file != id {
                        continue;
                    }
                    let edit = TextEdit {
                        range: range(text, s.span.start as usize, s.span.end as usize),
                        new_text: s.replacement.clone(),
                    };
                    let mut changes = std::collections::HashMap::new();
                    changes.insert(uri.clone(), vec![edit]);
                    actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                        title: format!("{} ({})", s.message, d.code),
                        kind: Some(CodeActionKind::QUICKFIX),
                        is_preferred: Some(true),
                        edit: Some(WorkspaceEdit {
                            changes: Some(changes),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }));
                }
                Some(actions)
            })
            .await)
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        Ok(self
            .locate(
                &params.text_document.uri,
                Position::default(),
                |a, id, _| {
                    let text = &a.db.get(id).text;
                    Some(
                        features::override_lenses(a, id)
                            .into_iter()
                            .map(|(span, title)| CodeLens {
                                range: range(text, span.start as usize, span.end as usize),
                                command: Some(Command {
                                    title,
                                    command: String::new(),
                                    arguments: None,
                                }),
                                data: None,
                            })
                            .collect(),
                    )
                },
            )
            .await)
    }

    async fn semantic_tokens_full(
        &self,
        params: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        Ok(self
            .locate(
                &params.text_document.uri,
                Position::default(),
                |a, id, _| {
                    let mut data = Vec::new();
                    let (mut last_line, mut last_col) = (0u32, 0u32);
                    for (line, col, length, kind) in features::semantic_tokens(&a.db.get(id).text) {
                        let delta_line = line - last_line;
                        let delta_start = if delta_line == 0 { col - last_col } else { col };
                        data.push(SemanticToken {
                            delta_line,
                            delta_start,
                            length,
                            token_type: kind,
                            token_modifiers_bitset: 0,
                        });
                        last_line = line;
                        last_col = col;
                    }
                    Some(SemanticTokensResult::Tokens(SemanticTokens {
                        result_id: None,
                        data,
                    }))
                },
            )
            .await)
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        self.shared.fresh().await;
        Ok(self.with(|ws| {
            let a = ws.analysis.as_ref()?;
            #[allow(deprecated)]
            let symbols = features::workspace_symbols(a, &params.query)
                .into_iter()
                .filter_map(|(name, kind, span)| {
                    Some(SymbolInformation {
                        name,
                        kind: match kind {
                            "policy" => SymbolKind::CLASS,
                            "scope" => SymbolKind::ENUM_MEMBER,
                            _ => SymbolKind::CONSTANT,
                        },
                        tags: None,
                        deprecated: None,
                        location: Self::span_location(a, span)?,
                        container_name: None,
                    })
                })
                .collect();
            Some(WorkspaceSymbolResponse::Flat(symbols))
        }))
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        Ok(self
            .locate(
                &params.text_document.uri,
                Position::default(),
                |a, id, _| {
                    let text = &a.db.get(id).text;
                    let formatted = hpl_compiler::fmt::format_source(text).ok()?;
                    if &formatted == text {
                        return Some(vec![]);
                    }
                    Some(vec![TextEdit {
                        range: range(text, 0, text.len()),
                        new_text: formatted,
                    }])
                },
            )
            .await)
    }
}
