//! `hpl-compiler`: the hpl language front end, its analyses, lowering and the formatter. The
//! `hpl` command is the `hpl-cli` crate.
//!
//! Data flows one way through the stages, each a module:
//! [`syntax`] (chunk, parse) → [`resolve`] (names, scopes, sets, managers) →
//! [`check`] (versions, conditions, windows, guards) → [`analyze`] (conflicts across scopes).
//! [`fmt`] prints a syntax tree back in canonical layout. The CLI and the language server call
//! [`analyze_sources`] and show the same diagnostics.
//!
//! No stage panics on any input: bad input becomes a [`diagnostics::Diagnostic`].

pub mod analyze;
pub mod build;
pub mod check;
pub mod diagnostics;
pub mod driver;
pub mod fmt;
pub mod lower;
pub mod program;
pub mod resolve;
pub mod source;
pub mod suggest;
pub mod syntax;

pub use driver::{
    analyze_sources, analyze_sources_cached, analyze_sources_until, Analysis, Cancelled, ParseCache,
};
