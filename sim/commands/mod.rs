//! The CLI's verbs that map, replay and regress (one file per concern). Only commands and
//! reports write files; models never do.
pub mod check;
#[cfg(feature = "cuda")]
pub mod crosscheck;
pub mod eval;
pub mod gpu_map;
pub mod infer;
pub mod map;
pub mod regress;
pub mod sweep;
