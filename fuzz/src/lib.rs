//! Shared code of ferrolite's fuzz targets: the run harness, an owned model description that
//! can be decoded, edited and re-encoded, and the structure-aware mutator.

pub mod desc;
pub mod harness;
pub mod mutate;
