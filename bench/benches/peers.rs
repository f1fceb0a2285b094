//! Issue 13: the same job side by side, at three sizes — hpl's runtime, regorus's interpreter,
//! regorus's RVM and the limit (one hash lookup per installed package plus writing the
//! violations) — and the paths around it: inventory parse against serde_json into a typed
//! struct, bundle load and verification. Every engine's answer is checked against hpl's
//! before anything is timed. Allocations per evaluation are counted by this binary's
//! allocator and printed (not timed).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hpl_bench::peers::{self, Limit, TypedInventory, NOW};
use hpl_bench::workload::{generate, SIZES};
use hpl_runtime::inventory::Inventory;
use hpl_runtime::load::load;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts allocations and their bytes (all threads; the measurements run on one).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, bytes) made by `f`.
fn counted<T>(f: impl FnOnce() -> T) -> (u64, u64, T) {
    let (a, b) = (
        ALLOCATIONS.load(Ordering::SeqCst),
        BYTES.load(Ordering::SeqCst),
    );
    let out = f();
    (
        ALLOCATIONS.load(Ordering::SeqCst) - a,
        BYTES.load(Ordering::SeqCst) - b,
        out,
    )
}

fn side_by_side(c: &mut Criterion) {
    for size in SIZES {
        let w = generate(size, 13);
        // The equivalence check: hpl, the interpreter and the RVM report the same violations.
        let findings = peers::check_equivalent(&w);
        let bundle = peers::bundle(&w);
        let inventory = peers::inventory(&w);
        let record = hpl_runtime::eval::evaluate(&bundle, &inventory, NOW);
        let limit = Limit::new(&bundle, &inventory);
        let lines: usize = w.files.iter().map(|(_, t)| t.lines().count()).sum();
        let source_bytes: usize = w.files.iter().map(|(_, t)| t.len()).sum();
        let (bytes, keys) = peers::signed_bundle(&w);

        let (allocs, alloc_bytes, _) =
            counted(|| hpl_runtime::eval::evaluate(&bundle, &inventory, NOW));
        let (limit_allocs, _, _) = counted(|| {
            let (mut seen, mut out) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
            limit.run(&inventory, &mut seen, &mut out);
            out.len()
        });
        let (parse_allocs, parse_bytes, _) =
            counted(|| Inventory::from_json_str(&w.inventory).map(|i| i.managers.len()));
        eprintln!(
            "{}: {} rules ({} lines, {} source bytes) over {} scopes, {} packages installed; \
             {} rules bound to the device, {} violations (all three engines agree); \
             bundle {} bytes ({:.2}× the source); evaluate allocates {allocs} times, \
             {alloc_bytes} bytes (the record: {} violations, {} rule results); the limit \
             {limit_allocs}; inventory parse {parse_allocs} allocations, {parse_bytes} bytes \
             for {} bytes of JSON",
            size.name,
            w.rules,
            lines,
            source_bytes,
            size.scopes,
            size.packages,
            record.rules.len(),
            findings.len(),
            bytes.len(),
            bytes.len() as f64 / source_bytes as f64,
            record.violations.len(),
            record.rules.len(),
            w.inventory.len(),
        );

        let mut group = c.benchmark_group(format!("eval/{}", size.name));
        if size.name == "large" {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(10));
        }
        group.bench_function("hpl", |b| {
            b.iter(|| {
                black_box(
                    hpl_runtime::eval::evaluate(&bundle, &inventory, NOW)
                        .violations
                        .len(),
                )
            })
        });
        group.bench_function("limit", |b| {
            let (mut seen, mut out) = (Vec::new(), Vec::new());
            b.iter(|| {
                limit.run(&inventory, &mut seen, &mut out);
                black_box(out.len())
            })
        });
        let input = peers::rego_input(&w);
        let mut vm = peers::rego_vm(&w);
        group.bench_function("regorus_rvm", |b| {
            b.iter(|| {
                vm.set_input(input.clone());
                black_box(vm.execute().expect("rvm"))
            })
        });
        let mut engine = peers::rego_engine(&w);
        group.bench_function("regorus_interpreter", |b| {
            b.iter(|| {
                engine.set_input(input.clone());
                black_box(
                    engine
                        .eval_rule("data.hpl.violations".into())
                        .expect("interpreter"),
                )
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("inventory/{}", size.name));
        group.bench_function(BenchmarkId::new("hpl", w.inventory.len()), |b| {
            b.iter(|| black_box(Inventory::from_json_str(&w.inventory).map(|i| i.managers.len())))
        });
        group.bench_function(BenchmarkId::new("serde_typed", w.inventory.len()), |b| {
            b.iter(|| {
                black_box(
                    serde_json::from_str::<TypedInventory>(&w.inventory).map(|i| i.managers.len()),
                )
            })
        });
        group.bench_function(BenchmarkId::new("regorus_value", w.inventory.len()), |b| {
            b.iter(|| black_box(regorus::Value::from_json_str(&w.inventory).is_ok()))
        });
        group.finish();

        let mut group = c.benchmark_group(format!("bundle/{}", size.name));
        group.bench_function(BenchmarkId::new("load_and_verify", bytes.len()), |b| {
            b.iter(|| black_box(load(&bytes, &keys).map(|v| v.content().rules.len())))
        });
        group.bench_function("regorus_add_policy_and_data", |b| {
            b.iter(|| black_box(peers::rego_engine(&w)))
        });
        group.finish();
    }
}

criterion_group!(benches, side_by_side);
criterion_main!(benches);
