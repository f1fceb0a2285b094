//! Property tests: the front end never panics, and the formatter is faithful.
//!
//! - any text, and any mutation of the example files, goes through every stage without a panic;
//! - `fmt` is idempotent; parse(fmt(x)) equals parse(x) up to spans; no comment is lost;
//! - printed expressions parse back to the same tree (the printer's parentheses are right).

mod common;
use common::{example_files, without_spans};
use hpl_compiler::check::CheckOptions;
use hpl_compiler::fmt::{expr as print_expr, format_source};
use hpl_compiler::source::{FileId, SourceFile};
use hpl_compiler::syntax::ast::{BinaryOp, Expr, ExprKind, Name, UnaryOp};
use hpl_compiler::syntax::{parse_expr, parse_file};
use proptest::prelude::*;

fn analyze(text: &str) {
    let _ = hpl_compiler::analyze_sources(
        vec![SourceFile::new("input.hpl", text)],
        CheckOptions::default(),
    );
}

/// Checks the formatter's promises on a text that parses cleanly.
fn formatter_is_faithful(text: &str) -> Result<(), TestCaseError> {
    let (tree, errors) = parse_file(FileId(0), text);
    if !errors.is_empty() {
        return Ok(());
    }
    let once =
        format_source(text).map_err(|e| TestCaseError::fail(format!("fmt failed: {e:?}")))?;
    let twice = format_source(&once)
        .map_err(|e| TestCaseError::fail(format!("fmt of fmt failed: {e:?}\n{once}")))?;
    prop_assert_eq!(&once, &twice, "fmt is not idempotent");
    let (formatted_tree, _) = parse_file(FileId(0), &once);
    prop_assert_eq!(
        without_spans(&format!("{:?}", tree.items)),
        without_spans(&format!("{:?}", formatted_tree.items)),
        "parse(fmt(x)) != parse(x)\n--- formatted ---\n{}",
        once
    );
    let texts = |f: &hpl_compiler::syntax::ast::File| {
        f.comments
            .iter()
            .map(|c| c.text.clone())
            .collect::<Vec<_>>()
    };
    prop_assert_eq!(
        texts(&tree),
        texts(&formatted_tree),
        "comments changed\n--- formatted ---\n{}",
        once
    );
    Ok(())
}

const TOKENS: &[&str] = &[
    "tenant",
    "department",
    "team",
    "environment",
    "device_group",
    "set",
    "policy",
    "version",
    "scope",
    "org",
    "mode",
    "assist",
    "require",
    "allow",
    "deny",
    "deny!",
    "pin",
    "toolchain",
    "from",
    "window",
    "guard",
    "when",
    "because",
    "warn",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    "=",
    ":",
    "brew:git",
    "npm:*",
    "pip:Django",
    ">=",
    "^22",
    "3.12.*",
    "1.9.8",
    "||",
    "&&",
    "!",
    "==",
    "device.arch",
    "device.facts[\"x\"]",
    "\"arm64\"",
    "\"Europe/Berlin\"",
    "mon-fri",
    "01:00-05:00",
    "# comment",
    "\n",
    "\n",
    " ",
    "  ",
    "\t",
    "x",
    "12",
    "\"",
    "é",
    "\u{0}",
    "\\",
    ".",
    "?",
    "-",
    "*",
    "in",
    "has(",
    "size(",
    ".all(",
    "version(",
    "manager",
    "@",
    "/",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|tokens| {
        let mut s = String::new();
        for t in tokens {
            s.push_str(t);
            s.push(' ');
        }
        s
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), prop::sample::select(TOKENS))
            .prop_map(|(at, t)| Mutation::Insert(at, t.to_string())),
        (any::<usize>(), 1usize..200).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut text = text.to_string();
    for m in mutations {
        match m {
            Mutation::Delete(at, len) => {
                let a = boundary(&text, *at);
                let b = boundary(&text, (a + len).min(text.len()));
                text.replace_range(a..b.max(a), "");
            }
            Mutation::Insert(at, t) => {
                let a = boundary(&text, *at);
                text.insert_str(a, t);
            }
            Mutation::Duplicate(at, len) => {
                let a = boundary(&text, *at);
                let b = boundary(&text, (a + len).min(text.len())).max(a);
                let copy = text[a..b].to_string();
                text.insert_str(b, &copy);
            }
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        analyze(&text);
        let _ = format_source(&text);
    }

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        analyze(&text);
        if let Ok(formatted) = format_source(&text) {
            formatter_is_faithful(&text)?;
            let _ = formatted;
        }
    }

    #[test]
    fn mutated_examples_never_panic_and_format_faithfully(
        file in 0usize..64,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = example_files();
        let (_, text) = &files[file % files.len()];
        let mutated = apply(text, &mutations);
        analyze(&mutated);
        formatter_is_faithful(&mutated)?;
    }
}

#[test]
fn the_examples_format_faithfully() {
    for (name, text) in example_files() {
        formatter_is_faithful(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn name(text: &str) -> Name {
    let file = FileId(0);
    Name {
        text: text.into(),
        span: hpl_compiler::source::Span::new(file, 0, 0),
    }
}

fn leaf() -> impl Strategy<Value = Expr> {
    let span = hpl_compiler::source::Span::new(FileId(0), 0, 0);
    prop_oneof![
        any::<bool>().prop_map(ExprKind::Bool),
        (-1000i64..1000).prop_map(ExprKind::Int),
        "[a-z\"\\\\ ]{0,6}".prop_map(ExprKind::Str),
        Just(ExprKind::Null),
        prop::sample::select(vec!["device", "x", "g"]).prop_map(|v| ExprKind::Var(v.into())),
    ]
    .prop_map(move |kind| Expr { kind, span })
}

fn expr() -> impl Strategy<Value = Expr> {
    let span = hpl_compiler::source::Span::new(FileId(0), 0, 0);
    leaf().prop_recursive(4, 32, 4, move |inner| {
        let ops = vec![
            BinaryOp::Or,
            BinaryOp::And,
            BinaryOp::Eq,
            BinaryOp::Ne,
            BinaryOp::Lt,
            BinaryOp::Le,
            BinaryOp::Gt,
            BinaryOp::Ge,
            BinaryOp::In,
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Rem,
        ];
        prop_oneof![
            (prop::sample::select(ops), inner.clone(), inner.clone()).prop_map(
                move |(op, l, r)| Expr {
                    kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
                    span
                }
            ),
            (
                prop::sample::select(vec![UnaryOp::Not, UnaryOp::Neg]),
                inner.clone()
            )
                .prop_filter_map("-<int> is a literal", move |(op, e)| {
                    if op == UnaryOp::Neg && matches!(e.kind, ExprKind::Int(_)) {
                        return None;
                    }
                    Some(Expr {
                        kind: ExprKind::Unary(op, Box::new(e)),
                        span,
                    })
                }),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(move |(c, a, b)| Expr {
                kind: ExprKind::Cond(Box::new(c), Box::new(a), Box::new(b)),
                span
            }),
            (
                inner.clone(),
                prop::sample::select(vec!["arch", "os", "facts"])
            )
                .prop_map(move |(e, f)| Expr {
                    kind: ExprKind::Member(Box::new(e), name(f)),
                    span
                }),
            (inner.clone(), inner.clone()).prop_map(move |(e, i)| Expr {
                kind: ExprKind::Index(Box::new(e), Box::new(i)),
                span
            }),
            prop::collection::vec(inner.clone(), 0..3).prop_map(move |items| Expr {
                kind: ExprKind::List(items),
                span
            }),
            (
                prop::option::of(inner.clone()),
                prop::sample::select(vec!["size", "exists", "startsWith"]),
                prop::collection::vec(inner, 0..3)
            )
                .prop_map(move |(receiver, f, args)| Expr {
                    kind: ExprKind::Call {
                        receiver: receiver.map(Box::new),
                        function: name(f),
                        args
                    },
                    span
                }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printed_expressions_parse_back_to_the_same_tree(e in expr()) {
        let printed = print_expr(&e);
        let parsed = parse_expr(FileId(0), &printed).map_err(|d| TestCaseError::fail(format!("{printed}: {}", d.message)))?;
        prop_assert_eq!(without_spans(&format!("{e:?}")), without_spans(&format!("{parsed:?}")), "{}", printed);
    }
}
