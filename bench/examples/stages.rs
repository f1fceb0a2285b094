//! Times each stage once on the benchmark workload (a quick look; criterion has the figures).
use hpl_compiler::check::{check, CheckOptions};
use hpl_compiler::resolve::{resolve, ParsedFile};
use hpl_compiler::source::{FileId, Span};
use std::time::Instant;

fn main() {
    let text = hpl_bench::generated_policy_set(200, 10_000);
    for _ in 0..3 {
        let t = Instant::now();
        let stdlib: Vec<_> = hpl_compiler::driver::STDLIB
            .iter()
            .enumerate()
            .map(|(i, (_, s))| hpl_compiler::syntax::parse_file(FileId(i as u32), s).0)
            .collect();
        let (tree, _) = hpl_compiler::syntax::parse_file(FileId(2), &text);
        let t_parse = t.elapsed();
        let mut files: Vec<ParsedFile<'_>> = stdlib
            .iter()
            .enumerate()
            .map(|(i, f)| ParsedFile {
                file: f,
                is_stdlib: true,
                start: Span::new(FileId(i as u32), 0, 0),
            })
            .collect();
        files.push(ParsedFile {
            file: &tree,
            is_stdlib: false,
            start: Span::new(FileId(2), 0, 0),
        });
        let t = Instant::now();
        let (program, _) = resolve(&files);
        let t_resolve = t.elapsed();
        let t = Instant::now();
        let (checked, _) = check(&program, CheckOptions::default());
        let t_check = t.elapsed();
        let t = Instant::now();
        let d = hpl_compiler::analyze::analyze(&program, &checked);
        let t_analyze = t.elapsed();
        let t = Instant::now();
        drop((d, checked, program, tree));
        println!("parse {t_parse:?} resolve {t_resolve:?} check {t_check:?} analyze {t_analyze:?} drop {:?}", t.elapsed());
    }
}
