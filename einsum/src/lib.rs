//! cascade-einsum: the Einsum-cascade language.
//!
//! Text (`.ein`) → [`syntax`] (nom parser, AST, pretty-printer) → [`check`] (located
//! diagnostics) → [`ir::Cascade`] (a petgraph DAG of Einsums) → [`shapes::bind`]
//! (rank extents) → [`analysis`] (op counts, footprints, passes) and [`interp`]
//! (f64 reference evaluator). [`library`] holds the built-in cascades.

pub mod analysis;
pub mod check;
pub mod diag;
pub mod interp;
pub mod ir;
pub mod library;
pub mod shapes;
pub mod syntax;

pub use analysis::{analyze, pass_counts, Analysis, AnalysisOptions, Routing};
pub use check::{check_source, Checked};
pub use diag::{CheckError, Diagnostic, Severity, SourceFile};
pub use interp::{evaluate, random_inputs, Tensor};
pub use ir::Cascade;
pub use shapes::{bind, Shapes};
