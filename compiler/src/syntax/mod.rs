//! Stage 1: text to syntax tree, with error recovery.
//!
//! [`keywords`] is the one table of keywords; [`chunk`] cuts a file at declaration and
//! statement boundaries; `parse` runs the pest
//! grammar (`grammar.pest`) on each chunk and builds the [`ast`]. Syntax errors become
//! diagnostics; whatever parses is kept.

pub mod ast;
pub mod chunk;
pub mod keywords;
mod parse;

pub use parse::{parse_expr, parse_file};
