//! cascade: cost models, hardware models, reports and the CLI for Einsum cascades
//! on accelerators. See docs/ARCHITECTURE.md for the code map.

pub mod analyze;
pub mod cli;
pub mod commands;
pub mod dram;
pub mod engine;
pub mod flash;
pub mod gpu;
pub mod infer;
pub mod models;
pub mod pim;
pub mod plot;
pub mod progress;
pub mod reproduce;
pub mod reproduce_duplex;
pub mod validate;
pub mod workload;
