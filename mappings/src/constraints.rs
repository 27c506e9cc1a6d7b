//! Timeloop-style mapspace constraints, from TOML: fixed factors and loop orders per level,
//! spatial unrolling, bypass, minimum utilisation of a fanout, and Einsum bindings.
//!
//! ```toml
//! [[temporal]]                 # loops of a level (its temporal block)
//! level = "dram"
//! factors = { E = 1, F = 1 }   # fixed factors; ranks not listed stay free ("*" = every
//!                              # rank not listed)
//! permutation = ["B", "H", "P"]  # these ranks outermost, in this order
//! [[spatial]]                  # unrolling over a level's (or a unit's) fanout
//! level = "rf2d"               # or: unit = "pe2d"
//! dim = 0                      # optional: only this fanout dimension
//! factors = { M0 = 256 }
//! ranks = ["M0"]               # optional: only these ranks may unroll here
//! max_ranks = 1                # optional: at most this many ranks per fanout dimension
//! [[bypass]]
//! level = "rf2d"
//! bypass = ["K"]
//! keep = ["Q"]                 # "*" = every tensor not named in the entry
//! [[utilization]]
//! level = "rf2d"               # or: unit = "pe2d"
//! min = 0.9                    # fraction of the fanout's instances in use
//! [[bind]]
//! einsum = "AV"
//! unit = "pe1d"
//! ```
//!
//! A constraint applies to the cascades whose names it uses (ranks, tensors, Einsums), so one
//! file serves every cascade of a workload; [`Constraints::applies`] says whether it does.
//! Levels and units must exist in the architecture.

use cascade_einsum::SourceFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Fixed factors and loop order of a level's temporal block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalC {
    pub level: String,
    /// Whose private loops (default: every unit's, and the shared ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub factors: BTreeMap<String, u64>,
    /// Ranks outermost first; ranks not listed come inside them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permutation: Vec<String>,
}

/// Spatial unrolling over a node's fanout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialC {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub factors: BTreeMap<String, u64>,
    /// Only these ranks may unroll here (empty = any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<String>,
    /// At most this many ranks unroll over each fanout dimension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ranks: Option<usize>,
}

/// Tensors a level must keep or bypass.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BypassC {
    pub level: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
}

/// Minimum fraction of a node's fanout in use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtilizationC {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub min: f64,
}

/// Pin an Einsum to a unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindPin {
    pub einsum: String,
    pub unit: String,
}

/// User constraints on the mapspace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temporal: Vec<TemporalC>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spatial: Vec<SpatialC>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<BypassC>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub utilization: Vec<UtilizationC>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind: Vec<BindPin>,
}

/// A constraint file's error: located in the file, or naming the field.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConstraintError {
    #[error("{file}:{line}:{col}: {message}")]
    Located {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{file}: cannot read: {message}")]
    Io { file: String, message: String },
}

impl Constraints {
    /// Parse constraints; `file` names them in errors (TOML errors and bad values located).
    pub fn from_toml_str(text: &str, file: &str) -> Result<Constraints, ConstraintError> {
        let c: Constraints = toml::from_str(text).map_err(|e| {
            let (line, col) = SourceFile::new(file, text).line_col(e.span().map_or(0, |s| s.start));
            ConstraintError::Located {
                file: file.into(),
                line,
                col,
                message: e.message().trim().to_string(),
            }
        })?;
        c.check().map_err(|(path, message)| {
            let off = cascade_arch::locate::locate(text, &path).unwrap_or(0);
            let (line, col, _) = cascade_arch::locate::line_col(text, off);
            ConstraintError::Located {
                file: file.into(),
                line,
                col,
                message: format!("{path}: {message}"),
            }
        })?;
        Ok(c)
    }

    /// Read a constraints file.
    pub fn load(path: &std::path::Path) -> Result<Constraints, ConstraintError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConstraintError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Constraints::from_toml_str(&text, &file)
    }

    /// Checks that need no cascade or architecture: factors ≥ 1, one of `level`/`unit`, a
    /// utilisation in (0, 1], no rank twice in a permutation.
    fn check(&self) -> Result<(), (String, String)> {
        for (i, t) in self.temporal.iter().enumerate() {
            for (r, &f) in &t.factors {
                if f == 0 {
                    return Err((
                        format!("temporal[{i}].factors.{r}"),
                        "factors are ≥ 1".into(),
                    ));
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            for (k, r) in t.permutation.iter().enumerate() {
                if !seen.insert(r) {
                    return Err((
                        format!("temporal[{i}].permutation[{k}]"),
                        format!("rank {r} is listed twice"),
                    ));
                }
            }
        }
        for (i, s) in self.spatial.iter().enumerate() {
            if s.level.is_some() == s.unit.is_some() {
                return Err((
                    format!("spatial[{i}]"),
                    "name either `level` or `unit` (whose fanout the loops unroll over)".into(),
                ));
            }
            for (r, &f) in &s.factors {
                if f == 0 {
                    return Err((
                        format!("spatial[{i}].factors.{r}"),
                        "factors are ≥ 1".into(),
                    ));
                }
            }
            if s.max_ranks == Some(0) {
                return Err((format!("spatial[{i}].max_ranks"), "must be ≥ 1".into()));
            }
        }
        for (i, u) in self.utilization.iter().enumerate() {
            if u.level.is_some() == u.unit.is_some() {
                return Err((
                    format!("utilization[{i}]"),
                    "name either `level` or `unit`".into(),
                ));
            }
            if !(u.min > 0.0 && u.min <= 1.0) {
                return Err((
                    format!("utilization[{i}].min"),
                    format!("must be in (0, 1], got {}", u.min),
                ));
            }
        }
        for (i, b) in self.bypass.iter().enumerate() {
            if let Some(t) = b.bypass.iter().find(|t| b.keep.contains(t)) {
                return Err((
                    format!("bypass[{i}]"),
                    format!("tensor {t} is both kept and bypassed"),
                ));
            }
        }
        Ok(())
    }

    /// Whether a constraint that uses these names applies to a cascade with `ranks`, `tensors`
    /// and `einsums` (every name it uses must be the cascade's).
    pub fn names_apply(names: &[&str], ranks: &[&str], tensors: &[&str], einsums: &[&str]) -> bool {
        names
            .iter()
            .all(|n| ranks.contains(n) || tensors.contains(n) || einsums.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error for `text`, which must be refused at `line:col` with a message holding `want`.
    fn refused(text: &str, at: &str, want: &str) {
        let e = Constraints::from_toml_str(text, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("c.toml:{at}: ")), "{e}");
        assert!(e.contains(want), "{e}\nwanted: {want}");
    }

    #[test]
    fn every_field_is_read_or_refused_with_its_place() {
        let ok = "[[temporal]]\nlevel = \"dram\"\nfactors = { M = 4, \"*\" = 1 }\npermutation = [\"M\", \"N\"]\n\
                  [[spatial]]\nunit = \"pe2d\"\ndim = 0\nranks = [\"N\"]\nmax_ranks = 1\n\
                  [[bypass]]\nlevel = \"rf2d\"\nkeep = [\"W\"]\nbypass = [\"O\"]\n\
                  [[utilization]]\nunit = \"pe2d\"\nmin = 0.5\n\
                  [[bind]]\neinsum = \"AV\"\nunit = \"pe1d\"\n";
        let c = Constraints::from_toml_str(ok, "c.toml").unwrap();
        assert_eq!(c.temporal[0].factors["M"], 4);
        assert_eq!(c.spatial[0].max_ranks, Some(1));
        assert_eq!(c.bypass[0].bypass, vec!["O".to_string()]);
        assert_eq!(c.utilization[0].min, 0.5);
        assert_eq!(c.bind[0].unit, "pe1d");
        // Unknown fields, by name and place.
        refused(
            "[[temporal]]\nlevel = \"dram\"\nfactor = { M = 4 }\n",
            "3:1",
            "unknown field `factor`",
        );
        refused(
            "[[tiling]]\nlevel = \"dram\"\n",
            "1:3",
            "unknown field `tiling`",
        );
        // Bad values, by field path and place.
        refused(
            "[[temporal]]\nlevel = \"dram\"\nfactors = { M = 0 }\n",
            "3:13",
            "temporal[0].factors.M: factors are ≥ 1",
        );
        refused(
            "[[temporal]]\nlevel = \"dram\"\npermutation = [\"M\", \"M\"]\n",
            "3:21",
            "rank M is listed twice",
        );
        refused(
            "[[spatial]]\nlevel = \"rf2d\"\nunit = \"pe2d\"\ndim = 0\n",
            "1:1",
            "spatial[0]: name either `level` or `unit`",
        );
        refused(
            "[[spatial]]\nunit = \"pe2d\"\ndim = 0\nmax_ranks = 0\n",
            "4:1",
            "spatial[0].max_ranks: must be ≥ 1",
        );
        refused(
            "[[utilization]]\nunit = \"pe2d\"\nmin = 1.5\n",
            "3:1",
            "utilization[0].min: must be in (0, 1]",
        );
        refused(
            "[[bypass]]\nlevel = \"rf2d\"\nkeep = [\"W\"]\nbypass = [\"W\"]\n",
            "1:1",
            "tensor W is both kept and bypassed",
        );
    }
}
