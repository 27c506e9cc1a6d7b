//! Validation against outside truths: peer tools' golden outputs (Timeloop, ZigZag). Compares;
//! never models.
pub mod parity;
