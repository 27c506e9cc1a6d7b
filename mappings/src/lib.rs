//! cascade-mappings: mappings of Einsum cascades onto architectures, the mapspace and its
//! search. The search runs against the [`model::CostModel`] trait, which the `sim` crate
//! implements (the analytical model); this crate never depends on `sim`.
//!
//! One file per concept: [`problem`] (a cascade lowered for the mapper), [`model`] (the
//! contract: lowered architecture, group plans, evaluations), [`mapping`] (the TOML form of a
//! mapping), [`report`] (the one report every model returns), [`space`] (the mapspace),
//! [`starts`] (heuristic starting points), [`search`] (the egg-style runner),
//! [`constraints`] (Timeloop-style constraints).

pub mod constraints;
pub mod mapping;
pub mod model;
pub mod problem;
pub mod report;
pub mod search;
pub mod space;
pub mod starts;

pub use constraints::{BindPin, Constraints};
pub use mapping::{GroupMapping, LoopMapping, Mapping, MappingError};
pub use model::{ArchP, CostModel, GroupEval, GroupPlan, Invalid, UnitP};
pub use problem::Problem;
pub use report::Report;
pub use search::{search_group, Found, Objective, Search, SearchError, StopReason};
