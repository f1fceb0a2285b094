//! Prints the generated benchmark workload: `gen-policy [SCOPES] [RULES] > bench.hpl`.

fn main() {
    let mut args = std::env::args().skip(1);
    let scopes = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let rules = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    print!("{}", hpl_bench::generated_policy_set(scopes, rules));
}
