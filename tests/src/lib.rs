//! Test support for the end-to-end suite: a reference interpreter (see [`reference`]) and the
//! generators of the property tests (see [`gen`]).

pub mod gen;
pub mod reference;
