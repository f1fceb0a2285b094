//! `hpl report` on a generated fleet: 10,000 inventories of 200–1,000 packages, streamed from
//! a JSON-lines file and evaluated on every core (BENCHMARKS.md reports devices per second).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::PathBuf;

const DEVICES: usize = 10_000;

fn fleet() -> PathBuf {
    let path = std::env::temp_dir().join("hpl-bench-fleet-10k-200-1000.jsonl");
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        let file = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("temp file"));
        hpl_tests::fleet::write_jsonl_sized(file, DEVICES, 200, 1_000).expect("fleet");
        std::fs::rename(&tmp, &path).expect("rename");
    }
    path
}

fn report(c: &mut Criterion) {
    let path = fleet();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/acme");
    let file = path.to_string_lossy().to_string();
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.throughput(Throughput::Elements(DEVICES as u64));
    group.bench_function("10k_devices_200_1000_packages", |b| {
        b.iter(|| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = hpl_cli::run(
                [
                    "hpl",
                    "report",
                    "--policy",
                    policy,
                    "--inventories",
                    &file,
                    "--at",
                    "2026-11-29T02:00:00Z",
                    "--format",
                    "json",
                ],
                &mut out,
                &mut err,
            );
            assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
