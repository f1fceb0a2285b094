//! Splits a file at declaration and statement boundaries before pest sees it.
//!
//! pest stops at the first error. To report every syntax error of a file, and to let the
//! checker and the language server see everything that does parse, the file is first cut
//! into chunks here: each top-level declaration, and inside a policy each statement. A
//! chunk starts at a keyword that begins a line (outside strings, comments and open
//! brackets, and not continuing the previous line). A top-level keyword inside an unclosed
//! `{` ends the unclosed item: a missing `}` costs one diagnostic, not the rest of the file.

use super::keywords;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawItem {
    Simple(Range<usize>),
    Policy {
        /// `policy NAME version N {`
        header: Range<usize>,
        stmts: Vec<Range<usize>>,
        /// The offset of the closing `}`, if there is one.
        close: Option<usize>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawComment {
    pub range: Range<usize>,
    pub trailing: bool,
}

#[derive(Debug, Default)]
pub struct Chunks {
    pub items: Vec<RawItem>,
    pub comments: Vec<RawComment>,
    /// Offsets of `{` that were never closed, and of where the item was cut off.
    pub unclosed: Vec<(usize, usize)>,
}

enum Current {
    Simple {
        start: usize,
    },
    Policy {
        start: usize,
        header_end: Option<usize>,
        stmts: Vec<Range<usize>>,
        stmt_start: Option<usize>,
    },
}

struct Scanner<'a> {
    src: &'a str,
    out: Chunks,
    current: Option<Current>,
    /// Brace depth inside the current item.
    depth: usize,
    /// Offset of the outermost open `{` of the current item.
    open_brace: Option<usize>,
    /// `(` and `[` depth.
    nesting: usize,
    /// End of the last significant (non-space, non-comment) byte seen.
    last_end: usize,
    last_char: Option<u8>,
}

pub fn split(src: &str) -> Chunks {
    let mut s = Scanner {
        src,
        out: Chunks::default(),
        current: None,
        depth: 0,
        open_brace: None,
        nesting: 0,
        last_end: 0,
        last_char: None,
    };
    let mut line_start = 0;
    while line_start < src.len() {
        let line_end = src[line_start..]
            .find('\n')
            .map_or(src.len(), |i| line_start + i);
        s.line(line_start, line_end);
        line_start = line_end + 1;
    }
    s.finish_item(true);
    s.out
}

fn word_at(line: &str) -> &str {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    if line[end..].starts_with('!') && &line[..end] == "deny" {
        &line[..end + 1]
    } else {
        &line[..end]
    }
}

impl Scanner<'_> {
    fn line(&mut self, start: usize, end: usize) {
        let text = &self.src[start..end];
        let indent = text.len() - text.trim_start().len();
        let first = start + indent;
        if first >= end {
            return;
        }
        let rest = &self.src[first..end];
        if !rest.starts_with('#') {
            let word = word_at(rest);
            let continues = self.nesting > 0
                || matches!(
                    self.last_char,
                    Some(b',' | b'(' | b'[' | b'&' | b'|' | b'=' | b'?' | b':')
                )
                || rest.starts_with(['.', ')', ']', '&', '|', '?', ':']);
            let in_policy_body =
                matches!(self.current, Some(Current::Policy { .. })) && self.depth <= 1;
            let continues = continues || rest.starts_with(['{', '}']);
            if keywords::items().any(|k| k == word) && !continues {
                self.finish_item(false);
                self.begin_item(first, word);
            } else if in_policy_body && !continues {
                // Every line of a policy body starts a statement, keyword or not, so a typo
                // in one statement never takes the one before it down with it.
                self.begin_stmt(first);
            } else if self.current.is_none() || (self.depth == 0 && !continues) {
                self.finish_item(false);
                self.begin_item(first, word);
            }
        }
        self.scan(first, end);
    }

    fn begin_item(&mut self, at: usize, word: &str) {
        self.depth = 0;
        self.nesting = 0;
        self.open_brace = None;
        self.current = Some(if word == "policy" {
            Current::Policy {
                start: at,
                header_end: None,
                stmts: Vec::new(),
                stmt_start: None,
            }
        } else {
            Current::Simple { start: at }
        });
    }

    fn begin_stmt(&mut self, at: usize) {
        let last_end = self.last_end;
        if let Some(Current::Policy {
            start,
            header_end,
            stmts,
            stmt_start,
        }) = &mut self.current
        {
            if header_end.is_none() {
                // The header never reached its `{`: end it here and read statements on.
                *header_end = Some(last_end.max(*start));
                self.depth = 1;
            }
            if let Some(s) = stmt_start.take() {
                if last_end > s {
                    stmts.push(s..last_end);
                }
            }
            *stmt_start = Some(at);
            self.nesting = 0;
        }
    }

    /// Closes the current item at the last significant byte. `at_eof` is only for messages.
    fn finish_item(&mut self, _at_eof: bool) {
        let Some(current) = self.current.take() else {
            return;
        };
        if self.depth > 0 {
            if let Some(open) = self.open_brace {
                self.out.unclosed.push((open, self.last_end));
            }
        }
        let end = self.last_end;
        match current {
            Current::Simple { start } => {
                if end > start {
                    self.out.items.push(RawItem::Simple(start..end));
                }
            }
            Current::Policy {
                start,
                header_end,
                mut stmts,
                stmt_start,
            } => {
                if let Some(s) = stmt_start {
                    if end > s {
                        stmts.push(s..end);
                    }
                }
                let header_end = header_end.unwrap_or(end).max(start);
                self.out.items.push(RawItem::Policy {
                    header: start..header_end,
                    stmts,
                    close: None,
                });
            }
        }
        self.depth = 0;
        self.nesting = 0;
        self.open_brace = None;
    }

    fn significant(&mut self, i: usize, c: u8) {
        self.last_end = i + 1;
        self.last_char = Some(c);
        if let Some(Current::Policy {
            header_end: Some(_),
            stmt_start,
            ..
        }) = &mut self.current
        {
            if stmt_start.is_none() && self.depth == 1 && c != b'}' {
                *stmt_start = Some(i);
            }
        }
        if self.current.is_none() {
            self.current = Some(Current::Simple { start: i });
        }
    }

    fn scan(&mut self, from: usize, to: usize) {
        let bytes = self.src.as_bytes();
        let mut i = from;
        while i < to {
            let c = bytes[i];
            match c {
                b' ' | b'\t' | b'\r' => {}
                b'#' => {
                    let trailing = i > from;
                    self.out.comments.push(RawComment {
                        range: i..to,
                        trailing,
                    });
                    return;
                }
                b'"' => {
                    self.significant(i, c);
                    i += 1;
                    while i < to && bytes[i] != b'"' {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    let close = i.min(to.saturating_sub(1)).max(self.last_end - 1);
                    self.last_end = close + 1;
                }
                b'{' => {
                    self.significant(i, c);
                    self.depth += 1;
                    if self.depth == 1 {
                        self.open_brace = Some(i);
                        if let Some(Current::Policy { header_end, .. }) = &mut self.current {
                            if header_end.is_none() {
                                *header_end = Some(i + 1);
                            }
                        }
                    }
                }
                b'}' => {
                    let closes_policy =
                        self.depth == 1 && matches!(self.current, Some(Current::Policy { .. }));
                    if closes_policy {
                        let end = self.last_end;
                        if let Some(Current::Policy {
                            start,
                            header_end,
                            mut stmts,
                            stmt_start,
                        }) = self.current.take()
                        {
                            if let Some(s) = stmt_start {
                                if end > s {
                                    stmts.push(s..end);
                                }
                            }
                            let header = start..header_end.unwrap_or(i);
                            self.out.items.push(RawItem::Policy {
                                header,
                                stmts,
                                close: Some(i),
                            });
                        }
                        self.depth = 0;
                        self.nesting = 0;
                        self.open_brace = None;
                        self.last_end = i + 1;
                        self.last_char = Some(c);
                    } else {
                        self.significant(i, c);
                        self.depth = self.depth.saturating_sub(1);
                    }
                }
                b'(' | b'[' => {
                    self.significant(i, c);
                    self.nesting += 1;
                }
                b')' | b']' => {
                    self.significant(i, c);
                    self.nesting = self.nesting.saturating_sub(1);
                }
                _ => self.significant(i, c),
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        split(src)
            .items
            .iter()
            .map(|item| match item {
                RawItem::Simple(r) => format!("item[{}]", &src[r.clone()]),
                RawItem::Policy {
                    header,
                    stmts,
                    close,
                } => format!(
                    "policy[{}] {:?} closed={}",
                    &src[header.clone()],
                    stmts.iter().map(|r| &src[r.clone()]).collect::<Vec<_>>(),
                    close.is_some()
                ),
            })
            .collect()
    }

    #[test]
    fn splits_items_and_statements() {
        let src = "tenant acme  # the org\n\ndepartment eng {\n  team a\n}\npolicy p version 1 {\n  scope team a,\n    team b\n  require brew:git when device.arch == \"arm64\" &&\n    device.ring == \"pilot\"\n  deny brew:x # no\n}\nset s = [\n  brew:a,\n  brew:b,\n]\n";
        assert_eq!(
            texts(src),
            vec![
                "item[tenant acme]".to_string(),
                "item[department eng {\n  team a\n}]".into(),
                "policy[policy p version 1 {] [\"scope team a,\\n    team b\", \"require brew:git when device.arch == \\\"arm64\\\" &&\\n    device.ring == \\\"pilot\\\"\", \"deny brew:x\"] closed=true".into(),
                "item[set s = [\n  brew:a,\n  brew:b,\n]]".into(),
            ]
        );
        let chunks = split(src);
        assert_eq!(chunks.comments.len(), 2);
        assert!(chunks.comments.iter().all(|c| c.trailing));
    }

    #[test]
    fn a_missing_brace_does_not_swallow_the_next_item() {
        let src = "policy a version 1 {\n  scope org\npolicy b version 2 {\n  scope org\n}\n";
        let chunks = split(src);
        assert_eq!(chunks.unclosed.len(), 1);
        assert_eq!(texts(src).len(), 2);
    }

    #[test]
    fn one_line_policy() {
        let src = "policy a version 1 { scope org }";
        assert_eq!(
            texts(src),
            vec!["policy[policy a version 1 {] [\"scope org\"] closed=true"]
        );
    }
}
