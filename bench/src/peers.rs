//! The same job done by hpl, by regorus (interpreter and RVM) and by "the limit", with the
//! equivalence checks the benchmarks run before timing anything.

use crate::workload::{Workload, MANAGERS};
use hpl_compiler::build::{build_bundle, compile_verified};
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_compiler::source::SourceFile;
use hpl_runtime::inventory::Inventory;
use hpl_runtime::load::VerifiedBundle;
use hpl_runtime::record::Category;
use std::collections::{BTreeSet, HashMap};

/// 2026-11-29T01:00:00Z (the inventory's date) plus an hour: the inventory is fresh.
pub const NOW: i64 = 1_795_917_600;

/// A violation as both engines can state it: (category, manager id, package, policy id).
pub type Finding = (String, String, String, String);

pub fn build_options() -> BuildOptions {
    BuildOptions {
        bundle_version: 1,
        issued_at: NOW - 3_600,
        expires_at: None,
        root: None,
    }
}

pub fn analysis(w: &Workload) -> hpl_compiler::Analysis {
    let files = w
        .files
        .iter()
        .map(|(n, t)| SourceFile::new(n.clone(), t.clone()))
        .collect();
    let analysis = hpl_compiler::analyze_sources(files, CheckOptions::default());
    if analysis.has_errors() {
        let first: Vec<String> = analysis
            .diagnostics
            .iter()
            .filter(|d| d.severity == hpl_compiler::diagnostics::Severity::Error)
            .take(5)
            .map(|d| format!("{:?} {} at {:?}", d.code, d.message, d.primary))
            .collect();
        panic!("the {} workload must compile: {first:#?}", w.size.name);
    }
    analysis
}

pub fn bundle(w: &Workload) -> VerifiedBundle {
    compile_verified(&analysis(w), &build_options()).expect("bundle")
}

/// The signed bundle's bytes and the key that verifies them.
pub fn signed_bundle(w: &Workload) -> (Vec<u8>, hpl_runtime::load::TrustedKeys) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let bytes = build_bundle(&analysis(w), &build_options(), &[&key]).expect("bytes");
    let mut keys = hpl_runtime::load::TrustedKeys::new();
    keys.add(key.verifying_key().as_bytes()).expect("key");
    (bytes, keys)
}

pub fn inventory(w: &Workload) -> Inventory {
    Inventory::from_json_str(&w.inventory).expect("inventory")
}

pub fn hpl_findings(bundle: &VerifiedBundle, inventory: &Inventory) -> BTreeSet<Finding> {
    let record = hpl_runtime::eval::evaluate(bundle, inventory, NOW);
    assert!(
        record.unknown_reasons.is_empty(),
        "the workload must be decidable: {:?}",
        record.unknown_reasons
    );
    record
        .violations
        .iter()
        .map(|v| {
            (
                v.category.as_str().to_string(),
                v.manager.to_string(),
                v.package.clone(),
                v.rule.policy.to_string(),
            )
        })
        .collect()
}

/// regorus's tree-walking interpreter with the policy and data loaded.
pub fn rego_engine(w: &Workload) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(false);
    engine
        .add_policy("bench.rego".into(), w.rego.clone())
        .expect("the Rego policy parses");
    engine
        .add_data(regorus::Value::from_json_str(&w.rego_data).expect("data"))
        .expect("data");
    engine
}

pub fn rego_input(w: &Workload) -> regorus::Value {
    regorus::Value::from_json_str(&w.inventory).expect("input")
}

pub fn rego_findings_of(value: &regorus::Value) -> BTreeSet<Finding> {
    let json = value.to_json_str().expect("json");
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("json");
    let list = parsed.as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("category"), s("manager"), s("package"), s("policy"))
        })
        .collect()
}

pub fn rego_findings(engine: &mut regorus::Engine, input: &regorus::Value) -> BTreeSet<Finding> {
    engine.set_input(input.clone());
    let value = engine
        .eval_rule("data.hpl.violations".into())
        .expect("the Rego policy evaluates");
    rego_findings_of(&value)
}

/// The RVM program for the policy, and a VM with the data loaded.
pub fn rego_vm(w: &Workload) -> regorus::rvm::vm::RegoVM {
    use regorus::languages::rego::compiler::Compiler;
    let mut engine = rego_engine(w);
    let entry: regorus::Rc<str> = "data.hpl.violations".into();
    let compiled = engine
        .compile_with_entrypoint(&entry)
        .expect("the policy compiles");
    let program = Compiler::compile_from_policy(&compiled, &["data.hpl.violations"])
        .expect("the RVM compiles the policy");
    let mut vm = regorus::rvm::vm::RegoVM::new();
    vm.load_program(program);
    // No limits (the RVM's default stops at 25,000 instructions): as the interpreter runs.
    vm.set_execution_timer_config(None);
    vm.set_max_instructions(usize::MAX);
    vm.set_data(regorus::Value::from_json_str(&w.rego_data).expect("data"))
        .expect("data");
    vm
}

pub fn rvm_findings(
    vm: &mut regorus::rvm::vm::RegoVM,
    input: &regorus::Value,
) -> BTreeSet<Finding> {
    vm.set_input(input.clone());
    let value = vm.execute().expect("the RVM evaluates");
    rego_findings_of(&value)
}

/// Panics with the differences unless hpl, the interpreter and the RVM agree; returns the
/// findings (so a benchmark can say how many).
pub fn check_equivalent(w: &Workload) -> BTreeSet<Finding> {
    let bundle = bundle(w);
    let inventory = inventory(w);
    let hpl = hpl_findings(&bundle, &inventory);
    let input = rego_input(w);
    let interpreted = rego_findings(&mut rego_engine(w), &input);
    let diff = |a: &BTreeSet<Finding>, b: &BTreeSet<Finding>| -> Vec<Finding> {
        a.symmetric_difference(b).take(10).cloned().collect()
    };
    assert_eq!(
        hpl,
        interpreted,
        "{}: hpl and regorus differ (first differences: {:#?})",
        w.size.name,
        diff(&hpl, &interpreted)
    );
    let rvm = rvm_findings(&mut rego_vm(w), &input);
    assert_eq!(
        hpl,
        rvm,
        "{}: hpl and regorus's RVM differ (first differences: {:#?})",
        w.size.name,
        diff(&hpl, &rvm)
    );
    assert!(
        !hpl.is_empty(),
        "{}: a workload without violations proves nothing",
        w.size.name
    );
    hpl
}

/// "The limit" (issue 13): the irreducible work of answering one device — one hash lookup per
/// installed package in a table precomputed for the device's scopes, plus writing the
/// violations. It knows the answer for each installed package in advance (no version is
/// compared, no rule is ranked), so no evaluator can beat it; hpl's and regorus's figures are
/// stated as multiples of it.
pub struct Limit {
    /// Per inventory manager position: package name → (its violations, its required slot).
    tables: Vec<HashMap<String, Entry>>,
    /// The required packages' own violations when absent, by slot.
    missing: Vec<(Category, usize, String, String)>,
}

struct Entry {
    violations: Vec<(Category, String)>,
    required: Option<usize>,
}

/// What [`Limit::run`] writes: (category, manager position, package, policy), borrowed.
pub type LimitFinding<'a> = (Category, usize, &'a str, &'a str);

impl Limit {
    /// Precomputes the table from hpl's own answer for this device (the table is what a perfect
    /// compiler would have shipped for the device's scope combination).
    pub fn new(bundle: &VerifiedBundle, inventory: &Inventory) -> Limit {
        let record = hpl_runtime::eval::evaluate(bundle, inventory, NOW);
        let position = |id: &str| {
            inventory
                .managers
                .iter()
                .position(|m| *m.id == *id)
                .expect("every manager is inventoried")
        };
        let mut tables: Vec<HashMap<String, Entry>> =
            inventory.managers.iter().map(|_| HashMap::new()).collect();
        let mut missing = Vec::new();
        for v in &record.violations {
            let m = position(&v.manager);
            if v.category == Category::MissingRequired {
                let slot = missing.len();
                missing.push((v.category, m, v.package.clone(), v.rule.policy.to_string()));
                tables[m]
                    .entry(v.package.clone())
                    .or_insert(Entry {
                        violations: Vec::new(),
                        required: None,
                    })
                    .required = Some(slot);
            } else {
                tables[m]
                    .entry(v.package.clone())
                    .or_insert(Entry {
                        violations: Vec::new(),
                        required: None,
                    })
                    .violations
                    .push((v.category, v.rule.policy.to_string()));
            }
        }
        Limit { tables, missing }
    }

    /// One evaluation into reused buffers.
    pub fn run<'a>(
        &'a self,
        inventory: &'a Inventory,
        seen: &mut Vec<bool>,
        out: &mut Vec<LimitFinding<'a>>,
    ) {
        out.clear();
        seen.clear();
        seen.resize(self.missing.len(), false);
        for (m, manager) in inventory.managers.iter().enumerate() {
            let table = &self.tables[m];
            for p in &manager.packages {
                if let Some(e) = table.get(p.name.as_str()) {
                    for (c, policy) in &e.violations {
                        out.push((*c, m, p.name.as_str(), policy.as_str()));
                    }
                    if let Some(slot) = e.required {
                        seen[slot] = true;
                    }
                }
            }
        }
        for (slot, (c, m, name, policy)) in self.missing.iter().enumerate() {
            if !seen[slot] {
                out.push((*c, *m, name.as_str(), policy.as_str()));
            }
        }
    }
}

/// The manager ids in inventory order (for tests that read [`LimitFinding`]s).
pub fn manager_ids() -> Vec<&'static str> {
    MANAGERS.iter().map(|(_, id)| *id).collect()
}

/// The inventory as a plain typed struct, parsed by serde_json with no checks: the reference
/// for `Inventory::from_json_str`.
#[derive(serde::Deserialize)]
pub struct TypedInventory {
    pub schema: String,
    pub tenant_id: String,
    pub device_id: String,
    pub collected_at: String,
    pub scopes: TypedScopes,
    pub ring: Option<String>,
    pub device: serde_json::Value,
    pub managers: Vec<TypedManager>,
}

#[derive(serde::Deserialize)]
pub struct TypedScopes {
    pub department: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    #[serde(default)]
    pub device_groups: Vec<String>,
}

#[derive(serde::Deserialize)]
pub struct TypedManager {
    pub id: String,
    pub packages: Vec<TypedPackage>,
}

#[derive(serde::Deserialize)]
pub struct TypedPackage {
    pub name: String,
    pub versions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{generate, MEDIUM, SMALL};

    #[test]
    fn hpl_and_regorus_agree_on_the_small_and_medium_workloads() {
        for size in [SMALL, MEDIUM] {
            let w = generate(size, 13);
            let findings = check_equivalent(&w);
            // Every kind of decision is exercised, so agreement means something.
            for category in [
                "missing_required",
                "present_denied",
                "version_out_of_range",
                "pin_mismatch",
            ] {
                let n = findings.iter().filter(|f| f.0 == category).count();
                eprintln!("{}: {category} {n}", size.name);
                if size == MEDIUM {
                    assert!(n >= 3, "{}: only {n} {category}", size.name);
                }
            }
        }
    }

    #[test]
    fn the_limit_writes_what_hpl_finds() {
        let w = generate(MEDIUM, 13);
        let bundle = bundle(&w);
        let inventory = inventory(&w);
        let limit = Limit::new(&bundle, &inventory);
        let (mut seen, mut out) = (Vec::new(), Vec::new());
        limit.run(&inventory, &mut seen, &mut out);
        let ids: Vec<&str> = inventory.managers.iter().map(|m| m.id.as_str()).collect();
        let found: BTreeSet<Finding> = out
            .iter()
            .map(|(c, m, n, p)| {
                (
                    c.as_str().to_string(),
                    ids[*m].to_string(),
                    n.to_string(),
                    p.to_string(),
                )
            })
            .collect();
        assert_eq!(found, hpl_findings(&bundle, &inventory));
    }
}
