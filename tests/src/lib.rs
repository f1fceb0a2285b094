//! Test support for the end-to-end suite: a reference interpreter (see [`reference`]) and the
//! generators of the property tests (see [`gen`]), and the bodies of the fuzz targets (see
//! [`fuzzing`]).

pub mod fleet;
pub mod fuzzing;
pub mod gen;
pub mod reference;
