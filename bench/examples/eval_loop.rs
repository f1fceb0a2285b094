//! Evaluates one workload in a loop, for a profiler: `cargo run --release -p hpl-bench --example
//! eval_loop -- medium 2000` (`perf record -g target/release/examples/eval_loop medium 2000`,
//! or `valgrind --tool=callgrind … medium 20`, which counts instructions).

use hpl_bench::peers::{self, NOW};
use hpl_bench::workload::{generate, SIZES};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "medium".into());
    let times: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let size = SIZES
        .into_iter()
        .find(|s| s.name == name)
        .expect("small, medium or large");
    let w = generate(size, 13);
    let bundle = peers::bundle(&w);
    let inventory = peers::inventory(&w);
    let mut violations = 0;
    for _ in 0..times {
        violations += hpl_runtime::eval::evaluate(&bundle, &inventory, NOW)
            .violations
            .len();
    }
    println!("{violations} violations in {times} evaluations");
}
