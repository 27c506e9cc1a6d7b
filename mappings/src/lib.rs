//! cascade-mappings: mappings of Einsum cascades onto architectures, the mapspace, and
//! its search. The search runs against the [`model::CostModel`] trait, which the `sim`
//! crate implements (analytical model); this crate never depends on `sim`.

pub mod mapping;
pub mod model;
pub mod problem;
pub mod search;

pub use mapping::{GroupMapping, Loop, Mapping, MappingError, Spatial};
pub use model::{ArchP, CostModel, GroupEval, GroupPlan, Invalid, UnitP};
pub use problem::Problem;
pub use search::{search_group, Constraints, Found, Objective, Search, SearchError, StopReason};
