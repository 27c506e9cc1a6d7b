//! Spatial architectures (FuseMax, FLAT, anything Timeloop or ZigZag describes): the
//! analytical model the mapper searches against, and whole-cascade mapping with fusion.
pub mod analytical;
pub mod cycle;
pub mod fusion;
