//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

/// Runs the real `hpl` CLI in-process (the binary is a thin wrapper over this function).
/// The working directory is the `tests/` crate, so paths in outputs are stable.
pub fn hpl(args: &[&str]) -> (i32, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("hpl").chain(args.iter().copied());
    let code = hpl_cli::run(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("utf-8 stdout"),
        String::from_utf8(err).expect("utf-8 stderr"),
    )
}

/// Every example policy file, with its text.
pub fn example_files() -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir("../examples/acme")
        .expect("examples/acme exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hpl"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).expect("readable"),
            )
        })
        .collect()
}

/// A Debug rendering of a syntax tree with every span removed, to compare trees
/// "up to spans".
pub fn without_spans(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find("Span {") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let close = after.find('}').map_or(after.len(), |c| c + 1);
        out.push('_');
        rest = &after[close..];
    }
    out.push_str(rest);
    out
}
