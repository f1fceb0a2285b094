//! pest pairs to AST, one chunk at a time.

use super::ast::*;
use super::chunk::{self, RawItem};
use super::keywords;
use crate::diagnostics::{Code, Diagnostic};
use crate::source::{FileId, Span};
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "syntax/grammar.pest"]
struct HplParser;

/// Files at least this big are parsed on two threads.
const PARALLEL_THRESHOLD: usize = 64 * 1024;

/// Parses one file. Never panics; returns the tree of everything that parsed and a
/// diagnostic for every chunk that did not.
pub fn parse_file(file: FileId, text: &str) -> (File, Vec<Diagnostic>) {
    let chunks = chunk::split(text);
    let mut diagnostics = Vec::new();
    let mut items = Vec::new();
    for (open, cut) in &chunks.unclosed {
        let span = Span::new(file, *open, open + 1);
        diagnostics.push(
            Diagnostic::new(
                Code::Unclosed,
                "unclosed `{`",
                span,
                "this `{` is never closed",
            )
            .related(Span::new(file, *cut, *cut), "the declaration ends here")
            .help("add `}` at the end of the declaration"),
        );
    }
    // Items are independent: a big file is parsed on two threads (results keep file order).
    let parallel = text.len() >= PARALLEL_THRESHOLD
        && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
    if parallel {
        let (first, second) = chunks.items.split_at(chunks.items.len() / 2);
        let parse_all = |raws: &[RawItem]| {
            let mut items = Vec::new();
            let mut diagnostics = Vec::new();
            for raw in raws {
                parse_item(file, text, raw, &mut items, &mut diagnostics);
            }
            (items, diagnostics)
        };
        let ((a_items, a_diags), (b_items, b_diags)) = std::thread::scope(|scope| {
            let handle = scope.spawn(|| parse_all(second));
            let a = parse_all(first);
            let b = handle.join().unwrap_or_else(|_| {
                // A panic on the helper thread is a bug; parse its half here instead.
                parse_all(second)
            });
            (a, b)
        });
        items.extend(a_items);
        items.extend(b_items);
        diagnostics.extend(a_diags);
        diagnostics.extend(b_diags);
    } else {
        for raw in &chunks.items {
            parse_item(file, text, raw, &mut items, &mut diagnostics);
        }
    }
    let comments = chunks
        .comments
        .iter()
        .map(|c| Comment {
            text: text[c.range.start + 1..c.range.end].trim_end().to_string(),
            span: Span::new(file, c.range.start, c.range.end),
            trailing: c.trailing,
        })
        .collect();
    (File { items, comments }, diagnostics)
}

/// Parses one raw item into `items`, reporting into `diagnostics`.
fn parse_item(
    file: FileId,
    text: &str,
    raw: &RawItem,
    items: &mut Vec<Item>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match raw {
        RawItem::Simple(range) => {
            let cx = Cx::chunk(file, text, range.start, range.end);
            match cx
                .parse(Rule::item_entry)
                .and_then(|pair| cx.keyword_alone(&keywords::items().collect::<Vec<_>>(), pair))
            {
                Ok(pair) => {
                    if let Some(item) = cx.item(pair) {
                        items.push(item);
                    }
                }
                Err(d) => diagnostics.push(*d),
            }
        }
        RawItem::Policy {
            header,
            stmts,
            close,
        } => {
            let header_cx = Cx::chunk(file, text, header.start, header.end);
            let header_pair = header_cx.parse(Rule::policy_header_entry);
            let mut parsed = Vec::new();
            for range in stmts {
                let cx = Cx::chunk(file, text, range.start, range.end);
                // Bounded before pest runs: its parser (and every later walk) recurses once
                // per nesting level, and a stack overflow is no diagnostic.
                if let Some(d) = cx.beyond_limits() {
                    diagnostics.push(d);
                    continue;
                }
                let parsed_stmt = cx.parse(stmt_entry_for(cx.text)).and_then(|pair| {
                    cx.keyword_alone(&keywords::statements().collect::<Vec<_>>(), pair)
                });
                match parsed_stmt {
                    Ok(pair) => parsed.push(cx.stmt(pair)),
                    Err(d) => diagnostics.push(*d),
                }
                diagnostics.extend(cx.take_late());
            }
            match header_pair {
                Ok(pair) => {
                    let mut inner = pair.into_inner();
                    let (Some(name), Some(version)) = (inner.next(), inner.next()) else {
                        return;
                    };
                    let cx = header_cx;
                    let header_span = Span::new(file, header.start, header.end);
                    let end = close
                        .map(|c| c + 1)
                        .or_else(|| stmts.last().map(|r| r.end))
                        .unwrap_or(header.end);
                    let version_span = cx.span(&version);
                    let version_value = match version.as_str().parse::<u64>() {
                        Ok(v) => v,
                        Err(_) => {
                            diagnostics.push(Diagnostic::new(
                                Code::Syntax,
                                "policy version is too large",
                                version_span,
                                "not a 64-bit number",
                            ));
                            0
                        }
                    };
                    items.push(Item::Policy(Policy {
                        name: cx.name(name),
                        version: version_value,
                        version_span,
                        stmts: parsed,
                        span: Span::new(file, header.start, end),
                        header_span,
                    }));
                }
                Err(d) => diagnostics.push(*d),
            }
        }
    }
}

/// How deep parentheses and lists may nest in one statement.
pub const MAX_NESTING: usize = 32;
/// How many operators one statement may have (a flat chain of `&&` nests as deep).
pub const MAX_OPERATORS: usize = 256;

fn int_out_of_range(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::Syntax,
        "integer literal out of range",
        span,
        "does not fit in a 64-bit signed integer",
    )
    .help("integers are int64, as in CEL: -9223372036854775808 to 9223372036854775807")
}

/// CEL's string escapes. On error: the byte offset and length of the bad escape, and why.
pub fn unescape(raw: &str) -> Result<String, (usize, usize, String)> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err((at, 1, "a string cannot end with a lone backslash".into()));
        };
        let simple = match e {
            '\\' => Some('\\'),
            '"' => Some('"'),
            '\'' => Some('\''),
            '`' => Some('`'),
            '?' => Some('?'),
            'a' => Some('\u{07}'),
            'b' => Some('\u{08}'),
            'f' => Some('\u{0C}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{0B}'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            continue;
        }
        let (digits, radix) = match e {
            'x' | 'X' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='3' => (2, 8),
            _ => {
                return Err((
                    at,
                    1 + e.len_utf8(),
                    format!("unknown escape `\\{e}` in a string"),
                ))
            }
        };
        let mut value: u32 = if radix == 8 { e as u32 - '0' as u32 } else { 0 };
        let mut len = 1 + e.len_utf8();
        for _ in 0..digits {
            match chars.peek().and_then(|&(_, d)| d.to_digit(radix)) {
                Some(d) => {
                    value = value * radix + d;
                    len += 1;
                    chars.next();
                }
                None => {
                    return Err((
                        at,
                        len,
                        format!(
                            "`\\{e}` needs {} {} digits",
                            if radix == 8 { 3 } else { digits },
                            if radix == 8 { "octal" } else { "hexadecimal" }
                        ),
                    ))
                }
            }
        }
        match char::from_u32(value) {
            Some(ch) => out.push(ch),
            None => {
                return Err((
                    at,
                    len,
                    format!("`{}` is not a Unicode scalar value", &raw[at..at + len]),
                ))
            }
        }
    }
    Ok(out)
}

/// Parses a lone condition expression (for tests and tools).
pub fn parse_expr(file: FileId, text: &str) -> Result<Expr, Box<Diagnostic>> {
    let cx = Cx {
        file,
        text,
        base: 0,
        late: Default::default(),
        min_literals: Default::default(),
    };
    if let Some(d) = cx.beyond_limits() {
        return Err(Box::new(d));
    }
    let pair = cx.parse(Rule::expr_entry)?;
    let e = cx.expr(pair);
    match cx.take_late().into_iter().next() {
        Some(d) => Err(Box::new(d)),
        None => Ok(e),
    }
}

/// The context of one chunk: `text` is the chunk alone, `base` its offset in the file.
struct Cx<'a> {
    file: FileId,
    text: &'a str,
    base: usize,
    /// Diagnostics found while building the tree from a chunk that did parse.
    late: std::cell::RefCell<Vec<Diagnostic>>,
    /// `9223372036854775808` literals: valid only right after a unary minus (as in CEL, the
    /// literal `-9223372036854775808` is int64's minimum); any left when the chunk is done are
    /// out of range.
    min_literals: std::cell::RefCell<Vec<Span>>,
}

/// How pest's rule names read in a message.
fn describe(rule: &Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of statement",
        Rule::name | Rule::ident | Rule::set_ref | Rule::variable => "a name",
        Rule::int => "a number",
        Rule::string | Rule::string_inner => "a string",
        Rule::item | Rule::item_entry => "a declaration",
        Rule::tenant_decl => "`tenant`",
        Rule::department_decl => "`department`",
        Rule::team_decl => "`team`",
        Rule::environment_decl => "`environment`",
        Rule::device_group_decl => "`device_group`",
        Rule::set_decl => "`set`",
        Rule::manager_decl => "`manager`",
        Rule::policy_header => "`policy NAME version N {`",
        Rule::stmt | Rule::stmt_entry => "a statement",
        Rule::scope_stmt => "`scope`",
        Rule::mode_stmt => "`mode`",
        Rule::require_stmt => "`require`",
        Rule::allow_stmt => "`allow`",
        Rule::deny_stmt | Rule::final_deny => "`deny`",
        Rule::pin_stmt => "`pin`",
        Rule::toolchain_stmt => "`toolchain`",
        Rule::window_stmt => "`window`",
        Rule::guard_stmt => "`guard`",
        Rule::scope_ref | Rule::scope_level | Rule::org_level => {
            "a scope (`org`, `department X`, `team X`, `environment X`, `device_group X`)"
        }
        Rule::package_ref | Rule::manager_name | Rule::package_name => "a package (`manager:name`)",
        Rule::constraint | Rule::cword => "a version constraint",
        Rule::clauses | Rule::when_clause => "`when`",
        Rule::because_clause => "`because`",
        Rule::warn_flag => "`warn`",
        Rule::days | Rule::day_span | Rule::day => "days (`mon-fri`)",
        Rule::time_range | Rule::time => "a time range (`01:00-05:00`)",
        Rule::time_zone | Rule::local_zone => "a time zone (\"Europe/Berlin\" or `local`)",
        Rule::expr | Rule::binary | Rule::unary | Rule::postfix_expr | Rule::primary => {
            "an expression"
        }
        Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_le
        | Rule::op_ge
        | Rule::op_lt
        | Rule::op_gt
        | Rule::op_in
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_rem => "an operator",
        Rule::call_args => "`(`",
        Rule::member => "`.`",
        Rule::index => "`[`",
        Rule::list => "a list",
        _ => "something else",
    }
}

impl<'a> Cx<'a> {
    fn chunk(file: FileId, text: &'a str, start: usize, end: usize) -> Cx<'a> {
        Cx {
            file,
            text: &text[start..end],
            base: start,
            late: Default::default(),
            min_literals: Default::default(),
        }
    }

    /// A statement nested deeper or with more operators than conditions may have
    /// ([`MAX_NESTING`], [`MAX_OPERATORS`]): `HPL0306` at the place it goes over, found by a
    /// flat scan (outside strings and comments), so nothing recurses on it.
    fn beyond_limits(&self) -> Option<Diagnostic> {
        let bytes = self.text.as_bytes();
        let (mut depth, mut operators) = (0usize, 0usize);
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'(' | b'[' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(
                            Diagnostic::new(
                                Code::ConditionTooComplex,
                                format!(
                                    "expression nested too deeply (more than {MAX_NESTING} levels)"
                                ),
                                self.span_of(i, i + 1),
                                "too deep",
                            )
                            .help("split the condition into simpler rules"),
                        );
                    }
                }
                b')' | b']' => depth = depth.saturating_sub(1),
                b'&' | b'|' | b'+' | b'-' | b'*' | b'/' | b'%' | b'!' | b'<' | b'>' | b'='
                | b'?' | b':' => {
                    // `&&`, `==`, `<=` … count once.
                    let start = i;
                    while i + 1 < bytes.len() && matches!(bytes[i + 1], b'&' | b'|' | b'=') {
                        i += 1;
                    }
                    operators += 1;
                    if operators > MAX_OPERATORS {
                        return Some(
                            Diagnostic::new(
                                Code::ConditionTooComplex,
                                format!(
                                    "expression too long (more than {MAX_OPERATORS} operators)"
                                ),
                                self.span_of(start, i + 1),
                                "too many operators",
                            )
                            .help("split the condition into simpler rules"),
                        );
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }

    /// The diagnostics found while building the tree, including integer literals that turned
    /// out to be out of range.
    fn take_late(&self) -> Vec<Diagnostic> {
        let mut late = self.late.take();
        for span in self.min_literals.take() {
            late.push(int_out_of_range(span));
        }
        late
    }

    /// A span from chunk-relative offsets.
    fn span_of(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, self.base + start, self.base + end)
    }

    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        self.span_of(s.start(), s.end())
    }

    fn parse(&self, rule: Rule) -> Result<Pair<'a, Rule>, Box<Diagnostic>> {
        HplParser::parse(rule, self.text)
            .map_err(|error| Box::new(self.syntax_error(error)))
            .and_then(|mut pairs| {
                pairs.next().ok_or_else(|| {
                    Box::new(Diagnostic::new(
                        Code::Syntax,
                        "empty input",
                        self.span_of(0, 0),
                        "nothing to parse",
                    ))
                })
            })
    }

    /// pest matches keywords as literals, so `requirebrew:git` would read as `require
    /// brew:git`. A chunk is accepted only if its first word is a keyword on its own.
    fn keyword_alone(
        &self,
        keywords: &[&str],
        pair: Pair<'a, Rule>,
    ) -> Result<Pair<'a, Rule>, Box<Diagnostic>> {
        let word = first_word(self.text);
        if keywords.contains(&word) {
            return Ok(pair);
        }
        let keyword = keywords
            .iter()
            .find(|k| word.starts_with(**k))
            .copied()
            .unwrap_or("");
        let span = self.span_of(0, word.len());
        Err(Box::new(
            Diagnostic::new(
                Code::Syntax,
                format!("unknown keyword `{word}`"),
                span,
                "not a keyword",
            )
            .help(format!(
                "separate the keyword from what follows: `{keyword} {}`",
                &word[keyword.len()..]
            ))
            .suggest(
                span,
                format!("{keyword} {}", &word[keyword.len()..]),
                format!("insert a space after `{keyword}`"),
            ),
        ))
    }

    fn syntax_error(&self, error: pest::error::Error<Rule>) -> Diagnostic {
        let (start, end) = (0, self.text.len());
        let at = match error.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((a, _)) => a,
        }
        .clamp(start, end);
        let found_end = self.text[at..end]
            .char_indices()
            .find(|&(i, c)| i > 0 && !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(end, |(i, _)| at + i);
        let found = &self.text[at..found_end.max(at)];
        let found_desc = if at >= end {
            "the end of the statement".to_string()
        } else {
            let shown: String = found.chars().take(24).collect();
            format!("`{shown}`")
        };
        let expected = match &error.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } => {
                let mut names: Vec<&str> = positives.iter().map(describe).collect();
                names.sort_unstable();
                names.dedup();
                names.retain(|n| *n != "something else");
                names
            }
            pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
        };
        let message = match expected.as_slice() {
            [] => format!("unexpected {found_desc}"),
            [one] => format!("expected {one}, found {found_desc}"),
            many => {
                let (last, rest) = many.split_last().unwrap_or((&"", &[]));
                format!("expected {} or {last}, found {found_desc}", rest.join(", "))
            }
        };
        let span = self.span_of(at, found_end.max(at + usize::from(at < end)).min(end));
        let mut d = Diagnostic::new(Code::Syntax, message, span, "unexpected here");
        let word: String = self.text[start..end]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if at == start && !word.is_empty() {
            d = d.did_you_mean(
                self.span_of(start, start + word.len()),
                &word,
                keywords::statements().chain(keywords::items()),
            );
        }
        d
    }

    fn name(&self, pair: Pair<'_, Rule>) -> Name {
        Name {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn item(&self, pair: Pair<'_, Rule>) -> Option<Item> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        Some(match rule {
            Rule::tenant_decl => Item::Tenant(self.name(inner.next()?), span),
            Rule::environment_decl => Item::Environment(self.name(inner.next()?), span),
            Rule::device_group_decl => Item::DeviceGroup(self.name(inner.next()?), span),
            Rule::department_decl => {
                let name = self.name(inner.next()?);
                let teams = inner
                    .filter_map(|t| t.into_inner().next().map(|n| self.name(n)))
                    .collect();
                Item::Department(Department { name, teams, span })
            }
            Rule::set_decl => {
                let name = self.name(inner.next()?);
                let members = inner.filter_map(|m| self.target(m)).collect();
                Item::Set(SetDecl {
                    name,
                    members,
                    span,
                })
            }
            Rule::manager_decl => {
                let name = self.name(inner.next()?);
                let mut m = ManagerDecl {
                    name,
                    title: None,
                    aliases: vec![],
                    scheme: None,
                    capabilities: vec![],
                    phase: None,
                    span,
                };
                for field in inner {
                    let rule = field.as_rule();
                    let mut values = field.into_inner();
                    match rule {
                        Rule::manager_title => m.title = values.next().map(|s| self.string(s).0),
                        Rule::manager_aliases => m.aliases = values.map(|n| self.name(n)).collect(),
                        Rule::manager_scheme => m.scheme = values.next().map(|n| self.name(n)),
                        Rule::manager_caps => {
                            m.capabilities = values.map(|n| self.name(n)).collect()
                        }
                        Rule::manager_phase => m.phase = values.next().map(|n| self.name(n)),
                        _ => {}
                    }
                }
                Item::Manager(m)
            }
            _ => return None,
        })
    }

    fn target(&self, pair: Pair<'_, Rule>) -> Option<Target> {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::package_ref => {
                let mut inner = pair.into_inner();
                let manager = self.name(inner.next()?);
                let package = self.name(inner.next()?);
                Some(Target::Package(PackageRef {
                    manager,
                    package,
                    span,
                }))
            }
            Rule::set_ref => Some(Target::Set(self.name(pair.into_inner().next()?))),
            _ => None,
        }
    }

    /// A string literal's value, with CEL's escapes. An escape CEL does not have, or one that
    /// names no Unicode scalar value, is an error: a string never changes silently.
    fn string(&self, pair: Pair<'_, Rule>) -> (String, Span) {
        let span = self.span(&pair);
        let Some(inner) = pair.into_inner().next() else {
            return (String::new(), span);
        };
        let base = inner.as_span().start();
        let raw = inner.as_str();
        match unescape(raw) {
            Ok(s) => (s, span),
            Err((at, len, message)) => {
                let at = self.span_of(base + at, base + at + len);
                self.late.borrow_mut().push(
                    Diagnostic::new(Code::Syntax, message, at, "not a valid escape")
                        .help("CEL's escapes are \\\\ \\\" \\' \\` \\? \\a \\b \\f \\n \\r \\t \\v, \\xHH, \\uHHHH, \\UHHHHHHHH and octal \\000-\\377; write a backslash as \\\\"),
                );
                (raw.to_string(), span)
            }
        }
    }

    fn stmt(&self, pair: Pair<'_, Rule>) -> Stmt {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().peekable();
        let kind = match rule {
            Rule::scope_stmt => StmtKind::Scope(inner.map(|r| self.scope_ref(r)).collect()),
            Rule::mode_stmt => {
                StmtKind::Mode(self.name(inner.next().expect("grammar: mode has a name")))
            }
            Rule::require_stmt | Rule::allow_stmt | Rule::deny_stmt | Rule::pin_stmt => {
                let mut is_final = false;
                if inner.peek().map(|p| p.as_rule()) == Some(Rule::final_deny) {
                    is_final = true;
                    inner.next();
                }
                let target = self
                    .target(inner.next().expect("grammar: rule has a target"))
                    .expect("grammar: target");
                let mut constraint = None;
                if inner.peek().map(|p| p.as_rule()) == Some(Rule::constraint) {
                    let c = inner.next().expect("peeked");
                    constraint = Some(Constraint {
                        // Whitespace inside a constraint carries no meaning: keep one form.
                        text: c.as_str().split_whitespace().collect::<Vec<_>>().join(" "),
                        span: self.span(&c),
                    });
                }
                let clauses = inner.next().map(|c| self.clauses(c)).unwrap_or_default();
                let kind = match rule {
                    Rule::require_stmt => RuleKind::Require,
                    Rule::allow_stmt => RuleKind::Allow,
                    Rule::deny_stmt => RuleKind::Deny,
                    _ => RuleKind::Pin,
                };
                StmtKind::Rule(Rule_ {
                    kind,
                    is_final,
                    target,
                    constraint,
                    clauses,
                })
            }
            Rule::toolchain_stmt => {
                let name = self.name(inner.next().expect("grammar: toolchain name"));
                let mut sources = Vec::new();
                let mut clauses = Clauses::default();
                for p in inner {
                    if p.as_rule() == Rule::clauses {
                        clauses = self.clauses(p);
                    } else {
                        sources.push(self.name(p));
                    }
                }
                StmtKind::Toolchain(Toolchain {
                    name,
                    sources,
                    clauses,
                })
            }
            Rule::window_stmt => {
                let days_pair = inner.next().expect("grammar: days");
                let days_span = self.span(&days_pair);
                let days = days_pair
                    .into_inner()
                    .map(|span| {
                        let mut d = span.into_inner();
                        let first = self.name(d.next().expect("grammar: day"));
                        DaySpan {
                            first,
                            last: d.next().map(|l| self.name(l)),
                        }
                    })
                    .collect();
                let mut range = inner.next().expect("grammar: time range").into_inner();
                let start = self.name(range.next().expect("grammar: start"));
                let end = self.name(range.next().expect("grammar: end"));
                let zone_pair = inner.next().expect("grammar: zone");
                let zone_span = self.span(&zone_pair);
                let zone = zone_pair
                    .into_inner()
                    .next()
                    .and_then(|z| match z.as_rule() {
                        Rule::string => Some(self.string(z)),
                        _ => None,
                    });
                let clauses = inner.next().map(|c| self.clauses(c)).unwrap_or_default();
                StmtKind::Window(Window {
                    days,
                    days_span,
                    start,
                    end,
                    zone,
                    zone_span,
                    clauses,
                })
            }
            Rule::guard_stmt => {
                let target = self.name(inner.next().expect("grammar: guard target"));
                let level = self.name(inner.next().expect("grammar: guard level"));
                let clauses = inner.next().map(|c| self.clauses(c)).unwrap_or_default();
                StmtKind::Guard(Guard {
                    target,
                    level,
                    clauses,
                })
            }
            other => unreachable!("grammar: not a statement: {other:?}"),
        };
        Stmt { kind, span }
    }

    fn scope_ref(&self, pair: Pair<'_, Rule>) -> ScopeRef {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let level_pair = inner.next().expect("grammar: scope level");
        let level = match level_pair.as_str().trim() {
            "org" => Level::Org,
            "department" => Level::Department,
            "team" => Level::Team,
            "environment" => Level::Environment,
            _ => Level::DeviceGroup,
        };
        ScopeRef {
            level,
            name: inner.next().map(|n| self.name(n)),
            span,
        }
    }

    fn clauses(&self, pair: Pair<'_, Rule>) -> Clauses {
        let mut clauses = Clauses::default();
        for clause in pair.into_inner() {
            let span = self.span(&clause);
            let (name, first) = match clause.as_rule() {
                Rule::when_clause => ("when", clauses.when.as_ref().map(|e| e.span)),
                Rule::because_clause => ("because", clauses.because.as_ref().map(|b| b.1)),
                _ => ("warn", clauses.warn),
            };
            if let Some(first) = first {
                self.late.borrow_mut().push(
                    Diagnostic::new(
                        Code::DuplicateSetting,
                        format!("`{name}` is given twice"),
                        span,
                        format!("second `{name}`"),
                    )
                    .related(first, "first given here")
                    .help(format!(
                        "a statement takes one `{name}` clause; combine conditions with `&&`"
                    )),
                );
                continue;
            }
            match clause.as_rule() {
                Rule::when_clause => {
                    clauses.when = clause.into_inner().next().map(|e| self.expr(e))
                }
                Rule::because_clause => {
                    clauses.because = clause.into_inner().next().map(|s| self.string(s))
                }
                _ => clauses.warn = Some(span),
            }
        }
        clauses
    }

    fn expr(&self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::expr => {
                let mut inner = pair.into_inner();
                let cond = self.expr(inner.next().expect("grammar: expr"));
                match (inner.next(), inner.next()) {
                    (Some(a), Some(b)) => Expr {
                        kind: ExprKind::Cond(
                            Box::new(cond),
                            Box::new(self.expr(a)),
                            Box::new(self.expr(b)),
                        ),
                        span,
                    },
                    _ => cond,
                }
            }
            Rule::binary => {
                let mut operands = Vec::new();
                let mut ops = Vec::new();
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::unary => operands.push(self.expr(p)),
                        op => ops.push(binary_op(op)),
                    }
                }
                climb(operands, ops)
            }
            Rule::unary => {
                let mut prefixes = Vec::new();
                let mut operand = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::op_not => prefixes.push((UnaryOp::Not, self.span(&p))),
                        Rule::op_neg => prefixes.push((UnaryOp::Neg, self.span(&p))),
                        _ => operand = Some(self.expr(p)),
                    }
                }
                let mut e = operand.expect("grammar: unary operand");
                for (op, op_span) in prefixes.into_iter().rev() {
                    // `-5` is a literal, as in CEL; `-9223372036854775808` is int64's minimum.
                    // The negation of the minimum is not folded: it overflows at run time,
                    // which is an error value.
                    if let (UnaryOp::Neg, ExprKind::Int(n)) = (op, &e.kind) {
                        let n = *n;
                        let mut minimum = self.min_literals.borrow_mut();
                        let folded = if n == i64::MIN {
                            let literal = minimum.iter().position(|s| *s == e.span);
                            literal.map(|i| {
                                minimum.remove(i);
                                i64::MIN
                            })
                        } else {
                            Some(-n)
                        };
                        drop(minimum);
                        if let Some(value) = folded {
                            e = Expr {
                                kind: ExprKind::Int(value),
                                span: op_span.to(e.span),
                            };
                            continue;
                        }
                    }
                    let span = op_span.to(e.span);
                    e = Expr {
                        kind: ExprKind::Unary(op, Box::new(e)),
                        span,
                    };
                }
                e
            }
            Rule::postfix_expr => {
                let mut inner = pair.into_inner();
                let mut e = self.expr(inner.next().expect("grammar: primary"));
                for post in inner {
                    let post_span = self.span(&post);
                    let span = e.span.to(post_span);
                    match post.as_rule() {
                        Rule::member => {
                            let mut m = post.into_inner();
                            let name = self.name(m.next().expect("grammar: member name"));
                            e = match m.next() {
                                Some(args) => Expr {
                                    kind: ExprKind::Call {
                                        receiver: Some(Box::new(e)),
                                        function: name,
                                        args: args.into_inner().map(|a| self.expr(a)).collect(),
                                    },
                                    span,
                                },
                                None => Expr {
                                    kind: ExprKind::Member(Box::new(e), name),
                                    span,
                                },
                            };
                        }
                        _ => {
                            let index =
                                self.expr(post.into_inner().next().expect("grammar: index"));
                            e = Expr {
                                kind: ExprKind::Index(Box::new(e), Box::new(index)),
                                span,
                            };
                        }
                    }
                }
                e
            }
            Rule::bool_lit => Expr {
                kind: ExprKind::Bool(pair.as_str() == "true"),
                span,
            },
            Rule::null_lit => Expr {
                kind: ExprKind::Null,
                span,
            },
            Rule::int => {
                // Never saturate: an integer int64 cannot hold is an error (CEL's rule).
                let kind = match pair.as_str().parse::<i64>() {
                    Ok(v) => ExprKind::Int(v),
                    Err(_) if pair.as_str().trim_start_matches('0') == "9223372036854775808" => {
                        self.min_literals.borrow_mut().push(span);
                        ExprKind::Int(i64::MIN)
                    }
                    Err(_) => {
                        self.late.borrow_mut().push(int_out_of_range(span));
                        ExprKind::Int(0)
                    }
                };
                Expr { kind, span }
            }
            Rule::string => {
                let (s, _) = self.string(pair);
                Expr {
                    kind: ExprKind::Str(s),
                    span,
                }
            }
            Rule::list => Expr {
                kind: ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect()),
                span,
            },
            Rule::call => {
                let mut inner = pair.into_inner();
                let function = self.name(inner.next().expect("grammar: call name"));
                let args = inner
                    .next()
                    .map(|a| a.into_inner().map(|p| self.expr(p)).collect())
                    .unwrap_or_default();
                Expr {
                    kind: ExprKind::Call {
                        receiver: None,
                        function,
                        args,
                    },
                    span,
                }
            }
            Rule::variable => Expr {
                kind: ExprKind::Var(pair.as_str().to_string()),
                span,
            },
            other => unreachable!("grammar: not an expression: {other:?}"),
        }
    }
}

type Rule_ = super::ast::Rule;

/// The leading keyword-like word of a chunk (`deny!` included).
fn first_word(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    if text[end..].starts_with('!') {
        &text[..=end]
    } else {
        &text[..end]
    }
}

/// The entry rule for a statement, by its first word (`stmt_entry` when it is no keyword, so
/// the error lists every statement keyword).
fn stmt_entry_for(text: &str) -> Rule {
    let word = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '!'))
        .next()
        .unwrap_or("");
    match word {
        "scope" => Rule::scope_entry,
        "mode" => Rule::mode_entry,
        "require" => Rule::require_entry,
        "allow" => Rule::allow_entry,
        "deny" | "deny!" => Rule::deny_entry,
        "pin" => Rule::pin_entry,
        "toolchain" => Rule::toolchain_entry,
        "window" => Rule::window_entry,
        "guard" => Rule::guard_entry,
        _ => Rule::stmt_entry,
    }
}

fn binary_op(rule: Rule) -> BinaryOp {
    match rule {
        Rule::op_or => BinaryOp::Or,
        Rule::op_and => BinaryOp::And,
        Rule::op_eq => BinaryOp::Eq,
        Rule::op_ne => BinaryOp::Ne,
        Rule::op_le => BinaryOp::Le,
        Rule::op_ge => BinaryOp::Ge,
        Rule::op_lt => BinaryOp::Lt,
        Rule::op_gt => BinaryOp::Gt,
        Rule::op_in => BinaryOp::In,
        Rule::op_add => BinaryOp::Add,
        Rule::op_sub => BinaryOp::Sub,
        Rule::op_mul => BinaryOp::Mul,
        Rule::op_div => BinaryOp::Div,
        _ => BinaryOp::Rem,
    }
}

/// Precedence climbing over `a op b op c …`; all binary operators are left-associative.
fn climb(operands: Vec<Expr>, ops: Vec<BinaryOp>) -> Expr {
    let mut operands = operands.into_iter();
    let mut ops = ops.into_iter().peekable();
    let first = operands.next().expect("grammar: binary has an operand");
    climb_from(first, 0, &mut operands, &mut ops)
}

fn climb_from(
    mut lhs: Expr,
    min: u8,
    operands: &mut std::vec::IntoIter<Expr>,
    ops: &mut std::iter::Peekable<std::vec::IntoIter<BinaryOp>>,
) -> Expr {
    while let Some(&op) = ops.peek() {
        if op.precedence() < min {
            break;
        }
        ops.next();
        let mut rhs = operands
            .next()
            .expect("grammar: operator has a right operand");
        while let Some(&next) = ops.peek() {
            if next.precedence() <= op.precedence() {
                break;
            }
            rhs = climb_from(rhs, op.precedence() + 1, operands, ops);
        }
        let span = lhs.span.to(rhs.span);
        lhs = Expr {
            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
            span,
        };
    }
    lhs
}
