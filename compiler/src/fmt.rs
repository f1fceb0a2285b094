//! The formatter: one canonical layout, comments kept, idempotent.
//!
//! Layout: two-space indentation, one statement per line, single spaces between tokens,
//! at most one blank line where the source had one or more, `department` teams one per
//! line, sets on one line unless longer than [`MAX_WIDTH`]. Expressions are printed with the
//! fewest parentheses that keep their meaning. Every comment is printed exactly once, in
//! source order, before the node it preceded or after the line it ended.

use crate::diagnostics::Diagnostic;
use crate::source::{FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::parse_file;

pub const MAX_WIDTH: usize = 100;

/// Formats a file. Files with syntax errors are not formatted: the errors are returned.
pub fn format_source(text: &str) -> Result<String, Vec<Diagnostic>> {
    let (file, errors) = parse_file(FileId(0), text);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(format_file(text, &file))
}

pub fn format_file(text: &str, file: &File) -> String {
    let mut p = Printer {
        src: text,
        out: String::new(),
        comments: &file.comments,
        next_comment: 0,
        indent: 0,
    };
    let mut prev_end: Option<usize> = None;
    for item in &file.items {
        let span = item.span();
        p.gap(prev_end, span.start as usize);
        p.item(item);
        prev_end = Some(span.end as usize);
    }
    p.flush_all();
    let mut out = p.out.trim_end().to_string();
    out.push('\n');
    if out.trim().is_empty() {
        return String::new();
    }
    out
}

struct Printer<'a> {
    src: &'a str,
    out: String,
    comments: &'a [Comment],
    next_comment: usize,
    indent: usize,
}

impl Printer<'_> {
    fn pad(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    /// Emits a blank line if the source had one between `prev_end` and `next` (looking past
    /// the comments in between), then the comments that precede `next`.
    fn gap(&mut self, prev_end: Option<usize>, next: usize) {
        let first_comment = self
            .comments
            .get(self.next_comment)
            .map(|c| c.span.start as usize)
            .filter(|&s| s < next);
        if let Some(prev) = prev_end {
            let upto = first_comment.unwrap_or(next);
            if blank_line_between(self.src, prev, upto)
                && !self.out.ends_with("\n\n")
                && !self.out.is_empty()
            {
                self.out.push('\n');
            }
        }
        self.leading(next);
    }

    /// Comments before `pos`, each on its own line; a blank line between them is kept.
    fn leading(&mut self, pos: usize) {
        while let Some(c) = self.comments.get(self.next_comment) {
            if c.span.start as usize >= pos {
                break;
            }
            self.pad();
            self.out.push_str(&format!("#{}\n", c.text));
            self.next_comment += 1;
            if let Some(next) = self.comments.get(self.next_comment) {
                let (a, b) = (c.span.end as usize, (next.span.start as usize).min(pos));
                if b > a && blank_line_between(self.src, a, b) {
                    self.out.push('\n');
                }
            } else if blank_line_between(self.src, c.span.end as usize, pos) {
                self.out.push('\n');
            }
        }
    }

    /// Ends a code line whose source ended at `end`, attaching the comment that trails it.
    fn end_line(&mut self, end: usize) {
        if let Some(c) = self.comments.get(self.next_comment) {
            let start = c.span.start as usize;
            if c.trailing && start >= end && !self.src[end..start].contains('\n') {
                self.out.push_str(&format!("  #{}", c.text));
                self.next_comment += 1;
            }
        }
        self.out.push('\n');
    }

    fn flush_all(&mut self) {
        self.leading(usize::MAX);
    }

    fn line(&mut self, text: &str, end: usize) {
        self.pad();
        self.out.push_str(text);
        self.end_line(end);
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Tenant(n, s) => self.line(&format!("tenant {}", n.text), s.end as usize),
            Item::Environment(n, s) => {
                self.line(&format!("environment {}", n.text), s.end as usize)
            }
            Item::DeviceGroup(n, s) => {
                self.line(&format!("device_group {}", n.text), s.end as usize)
            }
            Item::Department(d) => {
                if d.teams.is_empty() && !self.src[d.span.range()].contains('{') {
                    self.line(&format!("department {}", d.name.text), d.span.end as usize);
                    return;
                }
                let open = find_from(self.src, d.name.span.end as usize, '{');
                self.line(&format!("department {} {{", d.name.text), open + 1);
                self.indent += 1;
                let mut prev = open + 1;
                for team in &d.teams {
                    self.gap(Some(prev), team.span.start as usize);
                    self.line(&format!("team {}", team.text), team.span.end as usize);
                    prev = team.span.end as usize;
                }
                self.leading(d.span.end as usize - 1);
                self.indent -= 1;
                self.line("}", d.span.end as usize);
            }
            Item::Set(s) => self.set(s),
            Item::Policy(p) => self.policy(p),
            Item::Manager(m) => self.manager(m),
        }
    }

    fn set(&mut self, s: &SetDecl) {
        let members: Vec<String> = s.members.iter().map(target).collect();
        let one_line = format!("set {} = [{}]", s.name.text, members.join(", "));
        let has_inner_comments = self
            .comments
            .get(self.next_comment)
            .is_some_and(|c| (c.span.start as usize) < s.span.end as usize);
        if one_line.len() + self.indent * 2 <= MAX_WIDTH && !has_inner_comments {
            self.line(&one_line, s.span.end as usize);
            return;
        }
        let open = find_from(self.src, s.name.span.end as usize, '[');
        self.line(&format!("set {} = [", s.name.text), open + 1);
        self.indent += 1;
        let mut prev = open + 1;
        for (member, text) in s.members.iter().zip(&members) {
            let span = member.span();
            self.gap(Some(prev), span.start as usize);
            // The comma belongs to the member's line.
            let after = self.src[span.end as usize..]
                .find(|c: char| !c.is_whitespace())
                .map(|i| span.end as usize + i);
            let end = match after {
                Some(i) if self.src[i..].starts_with(',') => i + 1,
                _ => span.end as usize,
            };
            self.line(&format!("{text},"), end);
            prev = end;
        }
        self.leading(s.span.end as usize - 1);
        self.indent -= 1;
        self.line("]", s.span.end as usize);
    }

    fn manager(&mut self, m: &ManagerDecl) {
        let open = find_from(self.src, m.name.span.end as usize, '{');
        self.line(&format!("manager {} {{", m.name.text), open + 1);
        self.indent += 1;
        let names = |v: &[Name]| {
            v.iter()
                .map(|n| n.text.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut fields = Vec::new();
        if let Some(t) = &m.title {
            fields.push(format!("title {}", quote(t)));
        }
        if !m.aliases.is_empty() {
            fields.push(format!("aliases {}", names(&m.aliases)));
        }
        if let Some(s) = &m.scheme {
            fields.push(format!("scheme {}", s.text));
        }
        if !m.capabilities.is_empty() {
            fields.push(format!("capabilities {}", names(&m.capabilities)));
        }
        if let Some(p) = &m.phase {
            fields.push(format!("phase {}", p.text));
        }
        for f in fields {
            self.pad();
            self.out.push_str(&f);
            self.out.push('\n');
        }
        self.leading(m.span.end as usize - 1);
        self.indent -= 1;
        self.line("}", m.span.end as usize);
    }

    fn policy(&mut self, p: &Policy) {
        self.line(
            &format!("policy {} version {} {{", p.name.text, p.version),
            p.header_span.end as usize,
        );
        self.indent += 1;
        let mut prev = p.header_span.end as usize;
        for stmt in &p.stmts {
            self.gap(Some(prev), stmt.span.start as usize);
            self.line(&stmt_text(stmt), stmt.span.end as usize);
            prev = stmt.span.end as usize;
        }
        let closed = self.src.get(p.span.end as usize - 1..p.span.end as usize) == Some("}");
        if closed {
            self.leading(p.span.end as usize - 1);
        }
        self.indent -= 1;
        self.line("}", p.span.end as usize);
    }
}

fn find_from(src: &str, from: usize, c: char) -> usize {
    src[from..].find(c).map_or(from, |i| from + i)
}

fn blank_line_between(src: &str, a: usize, b: usize) -> bool {
    let (a, b) = (a.min(src.len()), b.min(src.len()));
    if b <= a {
        return false;
    }
    let gap = &src[a..b];
    // A blank line is two newlines with only spaces between them.
    let mut newlines = 0;
    for c in gap.chars() {
        match c {
            '\n' => {
                newlines += 1;
                if newlines >= 2 {
                    return true;
                }
            }
            ' ' | '\t' | '\r' => {}
            _ => newlines = 0,
        }
    }
    false
}

pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Other control characters are written as escapes, so the file stays readable
            // text and parses back to the same string.
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn target(t: &Target) -> String {
    match t {
        Target::Package(p) => format!("{}:{}", p.manager.text, p.package.text),
        Target::Set(n) => n.text.clone(),
    }
}

fn clauses(c: &Clauses) -> String {
    let mut out = String::new();
    if let Some(e) = &c.when {
        out.push_str(" when ");
        out.push_str(&expr(e));
    }
    if c.warn.is_some() {
        out.push_str(" warn");
    }
    if let Some((reason, _)) = &c.because {
        out.push_str(" because ");
        out.push_str(&quote(reason));
    }
    out
}

fn time(t: &str) -> String {
    match t.split_once(':') {
        Some((h, m)) if h.len() == 1 => format!("0{h}:{m}"),
        _ => t.to_string(),
    }
}

/// One statement on one line.
pub fn stmt_text(stmt: &Stmt) -> String {
    match &stmt.kind {
        StmtKind::Scope(refs) => {
            let refs: Vec<String> = refs
                .iter()
                .map(|r| match &r.name {
                    Some(n) => format!("{} {}", r.level.keyword(), n.text),
                    None => "org".into(),
                })
                .collect();
            format!("scope {}", refs.join(", "))
        }
        StmtKind::Mode(n) => format!("mode {}", n.text),
        StmtKind::Rule(r) => {
            let keyword = if r.is_final {
                "deny!"
            } else {
                r.kind.keyword()
            };
            let constraint = r
                .constraint
                .as_ref()
                .map(|c| {
                    format!(
                        " {}",
                        c.text.split_whitespace().collect::<Vec<_>>().join(" ")
                    )
                })
                .unwrap_or_default();
            format!(
                "{keyword} {}{constraint}{}",
                target(&r.target),
                clauses(&r.clauses)
            )
        }
        StmtKind::Toolchain(t) => {
            let sources: Vec<&str> = t.sources.iter().map(|s| s.text.as_str()).collect();
            format!(
                "toolchain {} from {}{}",
                t.name.text,
                sources.join(", "),
                clauses(&t.clauses)
            )
        }
        StmtKind::Window(w) => {
            let days: Vec<String> = w
                .days
                .iter()
                .map(|d| match &d.last {
                    Some(l) => format!("{}-{}", d.first.text, l.text),
                    None => d.first.text.clone(),
                })
                .collect();
            let zone = w
                .zone
                .as_ref()
                .map_or("local".to_string(), |(z, _)| quote(z));
            format!(
                "window {} {}-{} {zone}{}",
                days.join(","),
                time(&w.start.text),
                time(&w.end.text),
                clauses(&w.clauses)
            )
        }
        StmtKind::Guard(g) => format!(
            "guard {} {}{}",
            g.target.text,
            g.level.text,
            clauses(&g.clauses)
        ),
    }
}

const PREC_COND: u8 = 0;
const PREC_UNARY: u8 = 6;
const PREC_POSTFIX: u8 = 7;

/// Prints an expression with the fewest parentheses that keep its meaning.
pub fn expr(e: &Expr) -> String {
    let mut out = String::new();
    print_expr(e, PREC_COND, &mut out);
    out
}

fn print_expr(e: &Expr, min: u8, out: &mut String) {
    match &e.kind {
        ExprKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ExprKind::Int(n) => {
            if *n < 0 && min >= PREC_POSTFIX {
                out.push_str(&format!("({n})"));
            } else {
                out.push_str(&n.to_string());
            }
        }
        ExprKind::Str(s) => out.push_str(&quote(s)),
        ExprKind::Null => out.push_str("null"),
        ExprKind::Var(v) => out.push_str(v),
        ExprKind::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_expr(item, PREC_COND, out);
            }
            out.push(']');
        }
        ExprKind::Member(base, field) => {
            print_expr(base, PREC_POSTFIX, out);
            out.push('.');
            out.push_str(&field.text);
        }
        ExprKind::Index(base, index) => {
            print_expr(base, PREC_POSTFIX, out);
            out.push('[');
            print_expr(index, PREC_COND, out);
            out.push(']');
        }
        ExprKind::Call {
            receiver,
            function,
            args,
        } => {
            if let Some(r) = receiver {
                print_expr(r, PREC_POSTFIX, out);
                out.push('.');
            }
            out.push_str(&function.text);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_expr(a, PREC_COND, out);
            }
            out.push(')');
        }
        ExprKind::Unary(op, operand) => {
            let wrap = min > PREC_UNARY;
            if wrap {
                out.push('(');
            }
            out.push(match op {
                UnaryOp::Not => '!',
                UnaryOp::Neg => '-',
            });
            // `- -x` and `-(-5)` must not print as `--x`.
            let nested_neg = matches!(op, UnaryOp::Neg)
                && matches!(
                    &operand.kind,
                    ExprKind::Unary(UnaryOp::Neg, _) | ExprKind::Int(i64::MIN..=-1)
                );
            if nested_neg {
                out.push('(');
                print_expr(operand, PREC_COND, out);
                out.push(')');
            } else {
                print_expr(operand, PREC_UNARY, out);
            }
            if wrap {
                out.push(')');
            }
        }
        ExprKind::Binary(op, l, r) => {
            let p = op.precedence();
            let wrap = p < min;
            if wrap {
                out.push('(');
            }
            print_expr(l, p, out);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            print_expr(r, p + 1, out);
            if wrap {
                out.push(')');
            }
        }
        ExprKind::Cond(c, a, b) => {
            let wrap = min > PREC_COND;
            if wrap {
                out.push('(');
            }
            print_expr(c, 1, out);
            out.push_str(" ? ");
            print_expr(a, 1, out);
            out.push_str(" : ");
            print_expr(b, PREC_COND, out);
            if wrap {
                out.push(')');
            }
        }
    }
}

/// The span of a whole file, for diagnostics about formatting.
pub fn file_span(file: FileId, text: &str) -> Span {
    Span::new(file, 0, text.len())
}
