//! The VM against the `cel` crate: generated conditions over the supported subset, bound to
//! the same device, must give the same value (or both an error).

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn the_vm_agrees_with_the_cel_crate(text in boolean(), d in device()) {
        let Some(ours) = hpl_eval(&text, &d) else { return Ok(()) };
        let theirs = cel_eval(&text, &d);
        prop_assert_eq!(ours, theirs, "{}", text);
    }
}
