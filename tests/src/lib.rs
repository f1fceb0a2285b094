//! Test support for the end-to-end suite: a reference interpreter (see [`reference`]).

pub mod reference;
