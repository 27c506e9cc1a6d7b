//! cascade: cost models, mappers' back ends, hardware models and reports for Einsum
//! cascades on accelerators.

pub mod gpu;
pub mod plot;
#[cfg(feature = "cuda")]
pub mod cuda;
