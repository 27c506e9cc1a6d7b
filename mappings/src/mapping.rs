//! The Mapping type: per fusion group, the temporal loops above the global buffer
//! (tiling and order), the spatial unrolling on each compute unit, the binding of
//! Einsums to units, and the loop depth at which each tensor's tile is kept.
//! Serialises to TOML and back; a reloaded mapping evaluates to the same numbers.

use cascade_einsum::SourceFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One temporal loop: `factor` iterations over leaf rank `rank`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loop {
    pub rank: String,
    pub factor: u64,
}

/// A rank unrolled over one dimension of a compute unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spatial {
    pub unit: String,
    /// 0 = rows (or the 1D array's length), 1 = columns.
    pub dim: usize,
    pub rank: String,
    pub factor: u64,
}

/// Einsums that share outer loops and exchange tiles on chip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    pub einsums: Vec<String>,
    /// Loops above the global buffer, outermost first.
    pub loops: Vec<Loop>,
    pub spatial: Vec<Spatial>,
    /// Einsum → compute unit.
    pub bindings: BTreeMap<String, String>,
    /// Tensor → loop depth (0 = above every loop) whose tile the global buffer keeps.
    /// Derived by the model when empty.
    #[serde(default)]
    pub keep: BTreeMap<String, usize>,
    /// Intermediates sent to DRAM instead of buffered on chip.
    #[serde(default)]
    pub spill: Vec<String>,
}

/// A mapping of a whole cascade instance onto an architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub cascade: String,
    pub arch: String,
    /// Rank extents the mapping was made for.
    pub extents: BTreeMap<String, u64>,
    pub groups: Vec<GroupMapping>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{file}:{line}:{col}: {message}")]
    Parse {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("cannot serialise mapping: {0}")]
    Serialize(String),
}

impl Mapping {
    pub fn to_toml(&self) -> Result<String, MappingError> {
        toml::to_string_pretty(self).map_err(|e| MappingError::Serialize(e.to_string()))
    }
    pub fn from_toml_str(text: &str, file: &str) -> Result<Mapping, MappingError> {
        toml::from_str(text).map_err(|e| {
            let (line, col) = SourceFile::new(file, text).line_col(e.span().map_or(0, |s| s.start));
            MappingError::Parse {
                file: file.into(),
                line,
                col,
                message: e.message().to_string(),
            }
        })
    }
    pub fn load(path: &std::path::Path) -> Result<Mapping, MappingError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Io {
            file: file.clone(),
            source,
        })?;
        Mapping::from_toml_str(&text, &file)
    }
}
