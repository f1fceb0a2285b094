//! Writes a generated fleet (the example devices, varied) as JSON lines, for trying
//! `hpl report` and for its benchmarks:
//!
//!     cargo run -p hpl-tests --example fleet -- 10000 200 > /tmp/fleet.jsonl
//!
//! Arguments: the number of devices (default 10,000) and the least number of packages per
//! device (default 0: as the example devices have them, about 235).

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let packages = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let out = std::io::stdout().lock();
    hpl_tests::fleet::write_jsonl(std::io::BufWriter::new(out), n, packages)
}
