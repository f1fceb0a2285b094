//! The VM against the `cel` crate: generated conditions over the supported subset, bound to
//! the same device, must give the same value (or both an error).
//!
//! The generator also writes expressions hpl might not support (null, bool ordering, string
//! ordering, `string()`, `int()`, `x.size()`, list `+`, nested lists, what `filter` and `map`
//! return, int64's limits, escapes and Unicode). An expression hpl's checker rejects is not
//! compared, so rejections are counted: above [`MAX_REJECTED_SHARE`] the test fails, so the
//! subset cannot quietly shrink.

use cel::objects::Value as CelValue;
use cel::{Context, Program};
use hpl_compiler::source::FileId;
use hpl_runtime::facts::DEVICE_FIELDS;
use hpl_runtime::vm::{self, DeviceEnv, Value};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

fn int() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        (-5i64..40).prop_map(|i| i.to_string()),
        Just("device.facts[\"n\"]".to_string()),
        Just("size(device.groups)".to_string()),
        Just("size(device.arch)".to_string()),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", "/", "%"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            (boolean_leaf(), inner.clone(), inner)
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
    .boxed()
}

fn string() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "\"\"",
            "\"arm64\"",
            "\"g1\"",
            "\"pilot\"",
            "\"a\"",
            "\"ab\""
        ])
        .prop_map(str::to_string),
        Just("device.arch".to_string()),
        Just("device.ring".to_string()),
        Just("device.groups[0]".to_string()),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        (inner.clone(), inner).prop_map(|(a, b)| format!("({a} + {b})"))
    })
    .boxed()
}

/// At most this share of generated expressions may be rejected by hpl's checker.
const MAX_REJECTED_SHARE: f64 = 0.01;

/// Expressions over the corners of CEL: each must be accepted and agree.
fn corner() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(vec![
            // null
            "(null == null)",
            "(device.facts[\"n\"] == null)",
            "(null != 1)",
            // bool ordering
            "(false < true)",
            "(true <= false)",
            "((device.arch == \"arm64\") > false)",
            // strings: ordering, Unicode, escapes
            "(\"a\" < \"b\")",
            "(\"ab\" >= \"a\")",
            "(\"é\" > \"z\")",
            "(\"\\u270c\" == \"✌\")",
            "(\"\\U0001F600\" == \"😀\")",
            "(\"\\x41\" == \"A\")",
            "(\"\\101\" == \"A\")",
            "(\"a\\tb\".contains(\"\\t\"))",
            "(\"\\\"q\\\"\".size() == 3)",
            "(\"\\\\\".size() == 1)",
            "(\"\\r\\n\" != \"\\n\")",
            "(\"\\a\\b\\f\\v\".size() == 4)",
            "(\"\\?\\'\\`\" == \"?'`\")",
            "(\"日本\".size() == 2)",
            "(\"日本語\".startsWith(\"日本\"))",
            "(\"ü\".size() == 1)",
            // string() and int()
            "(string(12) == \"12\")",
            "(string(-3) + \"x\" == \"-3x\")",
            "(int(\"42\") == 42)",
            "(int(\"-7\") < 0)",
            "(int(\"x\") == 0)",
            "(int(string(9)) == 9)",
            "(string(device.arch) == device.arch)",
            // x.size()
            "(device.arch.size() == 5)",
            "([1, 2, 3].size() == 3)",
            "(device.groups.size() >= 0)",
            "(\"\".size() == 0)",
            // lists: +, nesting, filter and map results
            "([1] + [2, 3] == [1, 2, 3])",
            "(([] + [1]).size() == 1)",
            "([[1], [2, 3]][1] == [2, 3])",
            "([[1]] + [[2]] == [[1], [2]])",
            "([[1, 2], [3]].map(l, l.size()) == [2, 1])",
            "([1, 2, 3].filter(x, x > 1) == [2, 3])",
            "([1, 2, 3].filter(x, x > 5) == [])",
            "([1, 2, 3].map(x, x * 2) == [2, 4, 6])",
            "(device.groups.filter(g, g.startsWith(\"g\")) == device.groups.filter(g, g.size() == 2))",
            "([\"a\", \"b\"] + device.groups == [\"a\", \"b\"] + device.groups)",
            "(2 in [1, 2] + [3])",
            // int64 limits
            "(9223372036854775807 > 0)",
            "(-9223372036854775808 < 0)",
            "(9223372036854775807 + 1 > 0)",
            "(-9223372036854775808 - 1 < 0)",
            "(-9223372036854775808 / -1 < 0)",
            "(-9223372036854775808 % -1 == 0)",
            "(9223372036854775807 * 2 == 0)",
            "(-(-9223372036854775808) > 0)",
            "(1 / 0 == 0)",
            "(5 % 0 == 0)",
            "(-7 / 2 == -3)",
            "(-7 % 2 == -1)",
        ])
        .prop_map(str::to_string),
        (int(), int()).prop_map(|(a, b)| format!("([{a}, {b}].filter(x, x > 3) == [{a}].filter(x, x > 3) + [{b}].filter(x, x > 3))")),
        int().prop_map(|i| format!("(string({i}) == string({i}))")),
        int().prop_map(|i| format!("(int(string({i})) == {i})")),
        (boolean_leaf(), boolean_leaf(), prop::sample::select(vec!["<", "<=", ">", ">="]))
            .prop_map(|(a, b, op)| format!("({a} {op} {b})")),
        (string(), string(), prop::sample::select(vec!["<", "<=", ">", ">="]))
            .prop_map(|(a, b, op)| format!("({a} {op} {b})")),
        string().prop_map(|s| format!("({s}.size() == size({s}))")),
    ]
    .boxed()
}

fn boolean_leaf() -> BoxedStrategy<String> {
    prop_oneof![
        Just("true".to_string()),
        Just("false".to_string()),
        Just("(device.arch == \"arm64\")".to_string())
    ]
    .boxed()
}

fn boolean() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        boolean_leaf(),
        (
            int(),
            prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]),
            int()
        )
            .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        (
            string(),
            prop::sample::select(vec!["==", "!=", "<", ">="]),
            string()
        )
            .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        (
            string(),
            prop::sample::select(vec!["startsWith", "endsWith", "contains"]),
            string()
        )
            .prop_map(|(a, f, b)| format!("{a}.{f}({b})")),
        (int(), int(), int()).prop_map(|(a, b, c)| format!("({a} in [{b}, {c}])")),
        string().prop_map(|s| format!("({s} in device.groups)")),
        (
            prop::sample::select(vec!["all", "exists", "exists_one"]),
            int()
        )
            .prop_map(|(m, i)| format!("[1, 2, 3, {i}].{m}(x, x > 2)")),
        prop::sample::select(vec!["all", "exists", "exists_one"])
            .prop_map(|m| format!("device.groups.{m}(g, g.startsWith(\"g\"))")),
        int().prop_map(|i| format!("(size([1, 2, 3].filter(x, x < {i})) == 2)")),
        int().prop_map(|i| format!("([1, 2].map(x, x * {i}) == [{i}, 2 * {i}])")),
        Just("(\"n\" in device.facts)".to_string()),
        Just("has(device.facts.n)".to_string()),
        corner(),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["&&", "||", "==", "!="]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
    .boxed()
}

#[derive(Debug, Clone)]
struct Device {
    arch: &'static str,
    ring: &'static str,
    groups: Vec<&'static str>,
    n: Option<i64>,
}

fn device() -> impl Strategy<Value = Device> {
    (
        prop::sample::select(vec!["arm64", "x86_64"]),
        prop::sample::select(vec!["pilot", "broad"]),
        prop::collection::vec(prop::sample::select(vec!["g1", "g2", "pilot-x"]), 0..3),
        prop::option::of(-3i64..10),
    )
        .prop_map(|(arch, ring, groups, n)| Device {
            arch,
            ring,
            groups,
            n,
        })
}

fn env(d: &Device) -> DeviceEnv {
    let mut facts = std::collections::BTreeMap::new();
    if let Some(n) = d.n {
        facts.insert("n".to_string(), Value::Int(n));
    }
    let fields = DEVICE_FIELDS
        .iter()
        .map(|f| match f.path {
            "arch" => Value::str(d.arch),
            "ring" => Value::str(d.ring),
            "groups" => Value::List(Arc::new(d.groups.iter().map(|g| Value::str(g)).collect())),
            "facts" => Value::Map(Arc::new(facts.clone())),
            _ => Value::str(""),
        })
        .collect();
    DeviceEnv { fields }
}

fn cel_device(d: &Device) -> CelValue {
    let mut facts: HashMap<String, CelValue> = HashMap::new();
    if let Some(n) = d.n {
        facts.insert("n".into(), CelValue::Int(n));
    }
    let mut m: HashMap<String, CelValue> = HashMap::new();
    m.insert("arch".into(), d.arch.into());
    m.insert("ring".into(), d.ring.into());
    m.insert(
        "groups".into(),
        d.groups
            .iter()
            .map(|g| CelValue::from(*g))
            .collect::<Vec<_>>()
            .into(),
    );
    m.insert("facts".into(), facts.into());
    m.into()
}

/// `Some(Ok(b))`, `Some(Err(()))` for an error, `None` when hpl's checker rejects the text.
fn hpl_eval(text: &str, d: &Device) -> Option<Result<bool, ()>> {
    let expr = hpl_compiler::syntax::parse_expr(FileId(0), text).ok()?;
    let mut diagnostics = Vec::new();
    hpl_compiler::check::type_of(&expr, &mut diagnostics)?;
    if !diagnostics.is_empty() {
        return None;
    }
    let (code, strings) = hpl_compiler::lower::compile_condition(&expr);
    let program =
        vm::verify(&code, strings.len()).unwrap_or_else(|e| panic!("{text}: verifier: {e:?}"));
    Some(match vm::run(&program, &strings, &env(d)) {
        Value::Bool(b) => Ok(b),
        _ => Err(()),
    })
}

fn cel_eval(text: &str, d: &Device) -> Result<bool, ()> {
    let program =
        Program::compile(text).unwrap_or_else(|e| panic!("cel cannot parse {text}: {e:?}"));
    let mut ctx = Context::default();
    ctx.add_variable_from_value("device", cel_device(d));
    match program.execute(&ctx) {
        Ok(CelValue::Bool(b)) => Ok(b),
        _ => Err(()),
    }
}

/// Every generated expression is either compared, or counted as rejected by hpl.
#[test]
fn the_vm_agrees_with_the_cel_crate() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = (prop_oneof![3 => boolean(), 1 => corner()], device());
    let total = 2_000;
    let mut rejected = Vec::new();
    let mut compared = 0;
    for _ in 0..total {
        let (text, d) = strategy.new_tree(&mut runner).expect("a value").current();
        let Some(ours) = hpl_eval(&text, &d) else {
            rejected.push(text);
            continue;
        };
        let theirs = cel_eval(&text, &d);
        assert_eq!(ours, theirs, "{text} on {d:?}");
        compared += 1;
    }
    let share = rejected.len() as f64 / f64::from(total);
    assert!(
        share <= MAX_REJECTED_SHARE,
        "hpl rejected {} of {total} expressions ({:.1} %), more than {:.1} %; e.g. {:?}",
        rejected.len(),
        share * 100.0,
        MAX_REJECTED_SHARE * 100.0,
        &rejected[..rejected.len().min(10)]
    );
    assert!(compared >= total * 99 / 100);
}

/// Each corner case on its own: accepted by hpl, and the same answer as the `cel` crate.
#[test]
fn every_corner_expression_is_supported_and_agrees() {
    let device = Device {
        arch: "arm64",
        ring: "pilot",
        groups: vec!["g1", "pilot-x"],
        n: Some(4),
    };
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    for _ in 0..500 {
        let text = corner().new_tree(&mut runner).expect("a value").current();
        let ours = hpl_eval(&text, &device).unwrap_or_else(|| panic!("hpl rejects {text}"));
        assert_eq!(ours, cel_eval(&text, &device), "{text}");
    }
}

/// Known answers, so agreement cannot mean "both always err".
#[test]
fn known_answers_at_the_corners() {
    let device = Device {
        arch: "arm64",
        ring: "pilot",
        groups: vec!["g1"],
        n: Some(4),
    };
    for (text, expected) in [
        ("(false < true)", Ok(true)),
        ("(true <= false)", Ok(false)),
        ("(\"\\u270c\" == \"✌\")", Ok(true)),
        ("(\"\\101\" == \"A\")", Ok(true)),
        ("(\"日本\".size() == 2)", Ok(true)),
        ("(-9223372036854775808 < 0)", Ok(true)),
        (
            "(-9223372036854775808 == -9223372036854775807 - 1)",
            Ok(true),
        ),
        ("(9223372036854775807 + 1 > 0)", Err(())),
        ("(-(-9223372036854775808) > 0)", Err(())),
        ("(-9223372036854775808 / -1 < 0)", Err(())),
        ("([1, 2, 3].filter(x, x > 1) == [2, 3])", Ok(true)),
        ("([[1], [2, 3]][1] == [2, 3])", Ok(true)),
        ("(int(\"x\") == 0)", Err(())),
        ("(string(12) == \"12\")", Ok(true)),
        ("(null == null)", Ok(true)),
    ] {
        assert_eq!(hpl_eval(text, &device), Some(expected), "{text}");
        assert_eq!(cel_eval(text, &device), expected, "cel: {text}");
    }
    // Out of range and unknown escapes are compile errors, never a changed value.
    assert_eq!(
        hpl_eval("(9223372036854775808 == 9223372036854775807)", &device),
        None
    );
    assert_eq!(hpl_eval("(\"\\q\" == \"q\")", &device), None);
}
