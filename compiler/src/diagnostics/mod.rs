//! Diagnostics: one type for every stage, one registry of codes ([`codes`]), and the three
//! renderings (human, JSON, SARIF) in [`render`].

pub mod codes;
pub mod render;

pub use codes::Code;

use crate::source::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A machine-applicable fix: replace `span` with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub span: Span,
    pub replacement: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub primary: Label,
    /// Other sites: for conflicts, the other rule (with its scope).
    pub related: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Option<String>,
    pub suggestion: Option<Suggestion>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    pub fn new(
        code: Code,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary: Label {
                span,
                message: label.into(),
            },
            related: Vec::new(),
            notes: Vec::new(),
            help: None,
            suggestion: None,
        }
    }

    pub fn related(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.related.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn suggest(
        mut self,
        span: Span,
        replacement: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.suggestion = Some(Suggestion {
            span,
            replacement: replacement.into(),
            message: message.into(),
        });
        self
    }

    /// Adds "did you mean `X`?" and the fix that writes it at `span`, when one of the
    /// candidates is close to `wanted`. Every resolver reports unknown names through this.
    pub fn did_you_mean<'a>(
        self,
        span: Span,
        wanted: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Diagnostic {
        self.did_you_mean_inner(span, wanted, candidates).0
    }

    /// Like [`Diagnostic::did_you_mean`], with a help line for when nothing is close.
    pub fn did_you_mean_or<'a>(
        self,
        span: Span,
        wanted: &str,
        candidates: impl IntoIterator<Item = &'a str>,
        fallback: impl Into<String>,
    ) -> Diagnostic {
        match self.did_you_mean_inner(span, wanted, candidates) {
            (d, true) => d,
            (d, false) => d.help(fallback),
        }
    }

    fn did_you_mean_inner<'a>(
        self,
        span: Span,
        wanted: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> (Diagnostic, bool) {
        match crate::suggest::did_you_mean(wanted, candidates) {
            Some(s) => {
                let d = self.help(format!("did you mean `{s}`?"));
                (d.suggest(span, s, format!("replace with `{s}`")), true)
            }
            None => (self, false),
        }
    }

    pub fn span(&self) -> Span {
        self.primary.span
    }
}

/// Sorts diagnostics by file and position (stable for equal positions), as users read them.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| {
        (
            d.primary.span.file,
            d.primary.span.start,
            d.primary.span.end,
        )
    });
}
