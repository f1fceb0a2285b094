//! Issue 13: conditions in hpl's VM against the `cel` crate — the same expressions, each
//! compiled once and evaluated many times against the same device, with identical results
//! checked before anything is timed.

use cel::objects::Value as CelValue;
use cel::{Context, Program};
use criterion::{criterion_group, criterion_main, Criterion};
use hpl_compiler::source::FileId;
use hpl_runtime::facts::DEVICE_FIELDS;
use hpl_runtime::vm::{self, DeviceEnv, Value};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

/// The workloads' conditions and a few heavier ones.
const EXPRESSIONS: &[(&str, &str)] = &[
    (
        "arch_and_ring",
        "device.arch == \"arm64\" && device.ring != \"canary\"",
    ),
    ("group_in", "\"g2\" in device.groups"),
    (
        "or_false",
        "device.ring == \"canary\" || device.arch == \"x86_64\"",
    ),
    ("size", "size(device.groups) > 2"),
    (
        "fact_and_arithmetic",
        "device.facts[\"n\"] * 2 + 1 > 7 && device.facts[\"n\"] % 3 == 1",
    ),
    (
        "exists_in_list",
        "device.groups.exists(g, g == \"g1\") && !(\"lab\" in device.groups)",
    ),
    (
        "ternary_concat",
        "(device.arch == \"arm64\" ? device.ring + \"-arm\" : device.ring) == \"pilot-arm\"",
    ),
];

fn hpl_env() -> DeviceEnv {
    let mut facts = std::collections::BTreeMap::new();
    facts.insert("n".to_string(), Value::Int(4));
    let fields = DEVICE_FIELDS
        .iter()
        .map(|f| match f.path {
            "arch" => Value::str("arm64"),
            "ring" => Value::str("pilot"),
            "groups" => Value::List(Arc::new(vec![
                Value::str("g0"),
                Value::str("g1"),
                Value::str("g2"),
            ])),
            "facts" => Value::Map(Arc::new(facts.clone())),
            _ => Value::str(""),
        })
        .collect();
    DeviceEnv { fields }
}

fn cel_context() -> Context<'static, 'static> {
    let mut facts: HashMap<String, CelValue> = HashMap::new();
    facts.insert("n".into(), CelValue::Int(4));
    let mut m: HashMap<String, CelValue> = HashMap::new();
    m.insert("arch".into(), "arm64".into());
    m.insert("ring".into(), "pilot".into());
    m.insert(
        "groups".into(),
        vec![
            CelValue::from("g0"),
            CelValue::from("g1"),
            CelValue::from("g2"),
        ]
        .into(),
    );
    m.insert("facts".into(), facts.into());
    let mut ctx = Context::default();
    ctx.add_variable_from_value("device", m);
    ctx
}

fn conditions(c: &mut Criterion) {
    let env = hpl_env();
    let ctx = cel_context();
    let mut group = c.benchmark_group("condition");
    for (name, text) in EXPRESSIONS {
        let expr = hpl_compiler::syntax::parse_expr(FileId(0), text)
            .unwrap_or_else(|_| panic!("hpl parses {text}"));
        let mut diagnostics = Vec::new();
        hpl_compiler::check::type_of(&expr, &mut diagnostics);
        assert!(diagnostics.is_empty(), "{text}: {diagnostics:?}");
        let (code, strings) = hpl_compiler::lower::compile_condition(&expr);
        let program = vm::verify(&code, strings.len()).expect("verified");
        // As a loaded bundle hands them to the VM: shared, made once.
        let strings: Vec<Arc<str>> = strings.iter().map(|s| Arc::from(s.as_str())).collect();
        let cel = Program::compile(text).unwrap_or_else(|e| panic!("cel parses {text}: {e:?}"));
        let ours = match vm::run(&program, &strings, &env) {
            Value::Bool(b) => b,
            other => panic!("{text}: hpl gave {other:?}"),
        };
        let theirs = match cel.execute(&ctx) {
            Ok(CelValue::Bool(b)) => b,
            other => panic!("{text}: cel gave {other:?}"),
        };
        assert_eq!(ours, theirs, "{text}: hpl and cel disagree");
        eprintln!("{name}: {text} = {ours}");
        group.bench_function(format!("{name}/hpl"), |b| {
            b.iter(|| black_box(vm::run(&program, &strings, &env)))
        });
        group.bench_function(format!("{name}/cel"), |b| {
            b.iter(|| black_box(cel.execute(&ctx).is_ok()))
        });
    }
    group.finish();
}

criterion_group!(benches, conditions);
criterion_main!(benches);
