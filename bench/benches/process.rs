//! Whole processes, as a user or the agent starts them (issue 13): `hpl eval` of a device
//! against a signed bundle (start-up, key, bundle load and verification, inventory parse,
//! evaluation, the JSON record), `hpl check` and `hpl build` of each workload's directory —
//! next to the cost of starting a process that does nothing (`/bin/true`), the floor of any
//! command. Peak RSS of each command is printed from `/usr/bin/time` (not timed).
//!
//! Needs the release binary: `cargo build --release -p hpl-cli` first.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hpl_bench::workload::{generate, SIZES};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn hpl() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/hpl");
    assert!(
        path.exists(),
        "{} is missing: `cargo build --release -p hpl-cli` first",
        path.display()
    );
    path
}

fn run(program: &Path, args: &[&str]) -> i32 {
    let status = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run");
    status.code().unwrap_or(-1)
}

/// Peak resident set of one run, in kB (`/usr/bin/time -f %M`), when that tool is here.
fn peak_rss(program: &Path, args: &[&str]) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

fn process(c: &mut Criterion) {
    let hpl = hpl();
    let mut group = c.benchmark_group("process");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("true", |b| b.iter(|| run(Path::new("/bin/true"), &[])));
    for size in SIZES {
        let w = generate(size, 13);
        let dir = std::env::temp_dir().join(format!(
            "hpl-bench-process-{}-{}",
            std::process::id(),
            size.name
        ));
        let policy = dir.join("policy");
        std::fs::create_dir_all(&policy).expect("dir");
        for (name, text) in &w.files {
            std::fs::write(policy.join(name), text).expect("write");
        }
        let inventory = dir.join("inventory.json");
        std::fs::write(&inventory, &w.inventory).expect("write");
        let key = dir.join("key");
        let bundle = dir.join("bundle.hplb");
        let s = |p: &Path| p.to_string_lossy().into_owned();
        assert_eq!(run(&hpl, &["keygen", "--out", &s(&key)]), 0);
        let build = [
            "build".to_string(),
            s(&policy),
            "-o".into(),
            s(&bundle),
            "--sign-key".into(),
            s(&key),
            "--issued-at".into(),
            "2026-11-29T00:00:00Z".into(),
        ];
        let build: Vec<&str> = build.iter().map(String::as_str).collect();
        assert_eq!(run(&hpl, &build), 0, "hpl build");
        let eval = [
            "eval".to_string(),
            "--bundle".into(),
            s(&bundle),
            "--key".into(),
            format!("{}.pub", s(&key)),
            "--inventory".into(),
            s(&inventory),
            "--at".into(),
            "2026-11-29T02:00:00Z".into(),
            "--format".into(),
            "json".into(),
        ];
        let eval: Vec<&str> = eval.iter().map(String::as_str).collect();
        // Non-compliant (the workloads have error violations): exit 3.
        assert_eq!(run(&hpl, &eval), 3, "hpl eval");
        let check = ["check".to_string(), s(&policy)];
        let check: Vec<&str> = check.iter().map(String::as_str).collect();
        assert!(run(&hpl, &check) <= 1, "hpl check");
        eprintln!(
            "{}: peak RSS (kB): hpl eval {:?}, hpl check {:?}, hpl build {:?}",
            size.name,
            peak_rss(&hpl, &eval),
            peak_rss(&hpl, &check),
            peak_rss(&hpl, &build)
        );
        group.bench_function(BenchmarkId::new("hpl_eval", size.name), |b| {
            b.iter(|| run(&hpl, &eval))
        });
        group.bench_function(BenchmarkId::new("hpl_check", size.name), |b| {
            b.iter(|| run(&hpl, &check))
        });
        group.bench_function(BenchmarkId::new("hpl_build", size.name), |b| {
            b.iter(|| run(&hpl, &build))
        });
        std::fs::remove_dir_all(&dir).ok();
    }
    group.finish();
}

criterion_group!(benches, process);
criterion_main!(benches);
