//! The three renderings of diagnostics: for people (rustc-like, via codespan-reporting), JSON
//! for tools, and SARIF 2.1.0 for code scanning in CI.

use super::{Code, Diagnostic, Severity};
use crate::source::{FileId, SourceDb, Span};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term;
use serde_json::{json, Value};

impl<'a> Files<'a> for SourceDb {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(&self.get(id).name)
    }

    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(&self.get(id).text)
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        Ok(self.get(id).line_col(byte_index).0 - 1)
    }

    fn line_range(
        &'a self,
        id: FileId,
        line_index: usize,
    ) -> Result<std::ops::Range<usize>, FilesError> {
        let file = self.get(id);
        let starts = file.line_starts();
        let start = *starts.get(line_index).ok_or(FilesError::LineTooLarge {
            given: line_index,
            max: starts.len().saturating_sub(1),
        })?;
        let end = starts
            .get(line_index + 1)
            .copied()
            .unwrap_or(file.text.len());
        Ok(start..end)
    }
}

fn to_codespan(d: &Diagnostic) -> cs::Diagnostic<FileId> {
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
        Severity::Note => cs::Severity::Note,
    };
    let mut labels = vec![
        cs::Label::primary(d.primary.span.file, d.primary.span.range())
            .with_message(d.primary.message.clone()),
    ];
    for related in &d.related {
        labels.push(
            cs::Label::secondary(related.span.file, related.span.range())
                .with_message(related.message.clone()),
        );
    }
    let mut notes = d.notes.clone();
    if let Some(help) = &d.help {
        notes.push(format!("help: {help}"));
    }
    cs::Diagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

/// Renders for people, rustc-style, with a closing summary line.
pub fn human(db: &SourceDb, diagnostics: &[Diagnostic]) -> String {
    let config = term::Config::default();
    let mut out = String::new();
    for d in diagnostics {
        match term::emit_into_string(&config, db, &to_codespan(d)) {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!(
                "{}[{}]: {} (could not show source: {e})\n",
                d.severity.as_str(),
                d.code,
                d.message
            )),
        }
    }
    out.push_str(&summary(diagnostics));
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `2 errors, 1 warning, 0 notes`
pub fn summary(diagnostics: &[Diagnostic]) -> String {
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
    format!(
        "{}, {}, {}\n",
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        plural(count(Severity::Note), "note")
    )
}

fn position(db: &SourceDb, span: Span) -> Value {
    let file = db.get(span.file);
    let (line, column) = file.line_col(span.start as usize);
    let (end_line, end_column) = file.line_col(span.end as usize);
    json!({
        "file": file.name,
        "line": line,
        "column": column,
        "end": { "line": end_line, "column": end_column },
    })
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// One JSON object per diagnostic, in a JSON array.
pub fn json(db: &SourceDb, diagnostics: &[Diagnostic]) -> Value {
    Value::Array(
        diagnostics
            .iter()
            .map(|d| {
                let head = json!({
                    "code": d.code.as_str(),
                    "severity": d.severity.as_str(),
                    "message": d.message,
                });
                let mut v = merge(head, position(db, d.primary.span));
                let extra = json!({
                    "label": d.primary.message,
                    "related": d.related.iter().map(|r| merge(position(db, r.span), json!({ "message": r.message }))).collect::<Vec<_>>(),
                    "notes": d.notes,
                    "help": d.help,
                    "suggestion": d.suggestion.as_ref().map(|s| merge(position(db, s.span), json!({
                        "replacement": s.replacement,
                        "message": s.message,
                    }))),
                });
                v = merge(v, extra);
                v
            })
            .collect(),
    )
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

fn sarif_location(db: &SourceDb, span: Span) -> Value {
    let file = db.get(span.file);
    let (line, column) = file.line_col(span.start as usize);
    let (end_line, end_column) = file.line_col(span.end as usize);
    json!({
        "physicalLocation": {
            "artifactLocation": { "uri": file.name.replace('\\', "/") },
            "region": { "startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column },
        }
    })
}

/// A SARIF 2.1.0 log with one run; every code of the registry is a reporting rule.
pub fn sarif(db: &SourceDb, diagnostics: &[Diagnostic]) -> Value {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "name": c.title(),
                "shortDescription": { "text": c.title() },
                "fullDescription": { "text": c.explanation() },
                "help": { "text": c.explanation() },
                "defaultConfiguration": { "level": sarif_level(c.severity()) },
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str(&format!(" (help: {help})"));
            }
            json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0),
                "level": sarif_level(d.severity),
                "message": { "text": message },
                "locations": [sarif_location(db, d.primary.span)],
                "relatedLocations": d.related.iter().enumerate().map(|(i, r)| merge(sarif_location(db, r.span), json!({
                    "id": i,
                    "message": { "text": r.message },
                }))).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "hpl",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }]
    })
}
