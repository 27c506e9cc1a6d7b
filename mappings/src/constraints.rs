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
//! file serves every cascade of a workload ([`Constraints::for_cascade`] keeps the entries that
//! apply). Levels, units and fanout dimensions must exist in the architecture
//! ([`Constraints::check_arch`]); every name must belong to some cascade mapped and every entry
//! must apply to one ([`Constraints::check_names`]).

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
    /// The file and text the constraints came from, to locate errors found later (against an
    /// architecture and the cascades mapped).
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// Where constraints came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origin {
    pub file: String,
    pub text: String,
}

/// The names one cascade instance offers constraints (its leaf ranks, tensors and Einsums).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Names {
    pub cascade: String,
    pub ranks: Vec<String>,
    /// Extent of each rank (parallel to `ranks`).
    pub extents: Vec<u64>,
    pub tensors: Vec<String>,
    pub einsums: Vec<String>,
}

impl Names {
    /// The names of a lowered problem.
    pub fn of(p: &crate::problem::Problem) -> Names {
        Names {
            cascade: p.cascade.clone(),
            ranks: p.ranks.iter().map(|r| r.name.clone()).collect(),
            extents: p.ranks.iter().map(|r| r.extent).collect(),
            tensors: p.tensors.iter().map(|t| t.name.clone()).collect(),
            einsums: p.einsums.iter().map(|e| e.name.clone()).collect(),
        }
    }
}

/// What kind of cascade name a constraint field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rank,
    Tensor,
    Einsum,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Rank => "rank",
            Kind::Tensor => "tensor",
            Kind::Einsum => "Einsum",
        }
    }
    fn list(self, n: &Names) -> &[String] {
        match self {
            Kind::Rank => &n.ranks,
            Kind::Tensor => &n.tensors,
            Kind::Einsum => &n.einsums,
        }
    }
}

/// One entry of a constraints file, by section and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Temporal(usize),
    Spatial(usize),
    Bypass(usize),
    Utilization(usize),
    Bind(usize),
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
    /// A field found wrong where no source text is known (constraints built in code).
    #[error("constraints: {path}: {message}")]
    Field { path: String, message: String },
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
        let mut c = c;
        c.origin = Some(Origin {
            file: file.into(),
            text: text.into(),
        });
        c.check()
            .map_err(|(path, message)| c.error(&path, &message))?;
        Ok(c)
    }

    /// An error at a field path, located in the source when the constraints came from one.
    pub fn error(&self, path: &str, message: &str) -> ConstraintError {
        match &self.origin {
            Some(o) => {
                let off = cascade_arch::locate::locate(&o.text, path).unwrap_or(0);
                let (line, col, _) = cascade_arch::locate::line_col(&o.text, off);
                ConstraintError::Located {
                    file: o.file.clone(),
                    line,
                    col,
                    message: format!("{path}: {message}"),
                }
            }
            None => ConstraintError::Field {
                path: path.into(),
                message: message.into(),
            },
        }
    }

    /// Whether there are no constraints at all.
    pub fn is_empty(&self) -> bool {
        self.temporal.is_empty()
            && self.spatial.is_empty()
            && self.bypass.is_empty()
            && self.utilization.is_empty()
            && self.bind.is_empty()
    }

    /// Checks the levels, units, fanout dimensions and spatial factors the constraints name
    /// against an architecture.
    pub fn check_arch(&self, arch: &cascade_arch::Architecture) -> Result<(), ConstraintError> {
        self.arch_fields(arch)
            .map_err(|(path, message)| self.error(&path, &message))
    }

    fn arch_fields(&self, arch: &cascade_arch::Architecture) -> Result<(), (String, String)> {
        let levels = || {
            arch.levels
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let units = || {
            arch.compute
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let level =
            |path: String, n: &str| -> Result<&cascade_arch::StorageLevel, (String, String)> {
                arch.level(n).ok_or_else(|| {
                    (
                        path,
                        format!("{} has no level `{n}` (levels: {})", arch.name, levels()),
                    )
                })
            };
        let unit =
            |path: String, n: &str| -> Result<&cascade_arch::ComputeUnit, (String, String)> {
                arch.compute_unit(n).ok_or_else(|| {
                    (
                        path,
                        format!(
                            "{} has no compute unit `{n}` (units: {})",
                            arch.name,
                            units()
                        ),
                    )
                })
            };
        for (i, t) in self.temporal.iter().enumerate() {
            level(format!("temporal[{i}].level"), &t.level)?;
            if let Some(u) = &t.unit {
                unit(format!("temporal[{i}].unit"), u)?;
            }
        }
        for (i, sc) in self.spatial.iter().enumerate() {
            let (name, fanout) = match (&sc.level, &sc.unit) {
                (Some(l), _) => (l, &level(format!("spatial[{i}].level"), l)?.fanout),
                (_, Some(u)) => (u, &unit(format!("spatial[{i}].unit"), u)?.fanout),
                _ => continue,
            };
            if let Some(d) = sc.dim {
                if d >= fanout.len() {
                    return Err((
                        format!("spatial[{i}].dim"),
                        format!(
                            "{name} has {} fanout dimension(s) ({fanout:?}): dim {d} does not exist (dims count from 0)",
                            fanout.len()
                        ),
                    ));
                }
            }
            let room = match sc.dim {
                Some(d) => u64::from(fanout[d]),
                None => fanout.iter().map(|&f| u64::from(f)).max().unwrap_or(1),
            };
            for (r, &f) in &sc.factors {
                if f > room {
                    return Err((
                        format!("spatial[{i}].factors.{r}"),
                        format!(
                            "factor {f} is above the {room} instances of {name} on {}",
                            sc.dim
                                .map_or("any fanout dimension".into(), |d| format!("dim {d}"))
                        ),
                    ));
                }
            }
        }
        for (i, b) in self.bypass.iter().enumerate() {
            level(format!("bypass[{i}].level"), &b.level)?;
            if arch.level_index(&b.level) == Some(0) && !b.bypass.is_empty() {
                return Err((
                    format!("bypass[{i}].bypass"),
                    format!(
                        "{} is the root level: it holds every input and output and cannot bypass them",
                        b.level
                    ),
                ));
            }
        }
        for (i, u) in self.utilization.iter().enumerate() {
            match (&u.level, &u.unit) {
                (Some(l), _) => drop(level(format!("utilization[{i}].level"), l)?),
                (_, Some(x)) => drop(unit(format!("utilization[{i}].unit"), x)?),
                _ => {}
            }
        }
        for (i, b) in self.bind.iter().enumerate() {
            unit(format!("bind[{i}].unit"), &b.unit)?;
        }
        Ok(())
    }

    /// Every entry with the cascade names it uses (field path, kind, name); `"*"` is no name.
    fn entries(&self) -> Vec<(Entry, Vec<Used<'_>>)> {
        let mut out = Vec::new();
        for (i, t) in self.temporal.iter().enumerate() {
            let mut n: Vec<(String, Kind, &str)> = t
                .factors
                .keys()
                .filter(|r| *r != "*")
                .map(|r| (format!("temporal[{i}].factors.{r}"), Kind::Rank, r.as_str()))
                .collect();
            n.extend(t.permutation.iter().enumerate().map(|(k, r)| {
                (
                    format!("temporal[{i}].permutation[{k}]"),
                    Kind::Rank,
                    r.as_str(),
                )
            }));
            out.push((Entry::Temporal(i), n));
        }
        for (i, sc) in self.spatial.iter().enumerate() {
            let mut n: Vec<(String, Kind, &str)> = sc
                .factors
                .keys()
                .map(|r| (format!("spatial[{i}].factors.{r}"), Kind::Rank, r.as_str()))
                .collect();
            n.extend(
                sc.ranks
                    .iter()
                    .enumerate()
                    .map(|(k, r)| (format!("spatial[{i}].ranks[{k}]"), Kind::Rank, r.as_str())),
            );
            out.push((Entry::Spatial(i), n));
        }
        for (i, b) in self.bypass.iter().enumerate() {
            let mut n = Vec::new();
            for (field, list) in [("bypass", &b.bypass), ("keep", &b.keep)] {
                n.extend(
                    list.iter()
                        .enumerate()
                        .filter(|(_, t)| *t != "*")
                        .map(|(k, t)| {
                            (
                                format!("bypass[{i}].{field}[{k}]"),
                                Kind::Tensor,
                                t.as_str(),
                            )
                        }),
                );
            }
            out.push((Entry::Bypass(i), n));
        }
        for i in 0..self.utilization.len() {
            out.push((Entry::Utilization(i), Vec::new()));
        }
        for (i, b) in self.bind.iter().enumerate() {
            out.push((
                Entry::Bind(i),
                vec![(format!("bind[{i}].einsum"), Kind::Einsum, b.einsum.as_str())],
            ));
        }
        out
    }

    /// Checks the cascade names the constraints use against the cascades being mapped: every
    /// name must be a rank, tensor or Einsum (as its field says) of one of them, and every
    /// entry must apply to at least one (an entry applies to a cascade that has every name it
    /// uses).
    pub fn check_names(&self, cascades: &[Names]) -> Result<(), ConstraintError> {
        self.name_fields(cascades)
            .map_err(|(path, message)| self.error(&path, &message))
    }

    fn name_fields(&self, cascades: &[Names]) -> Result<(), (String, String)> {
        let which = || {
            let mut v: Vec<&str> = Vec::new();
            for c in cascades {
                if !v.contains(&c.cascade.as_str()) {
                    v.push(&c.cascade);
                }
            }
            v.join(", ")
        };
        for (entry, names) in self.entries() {
            for (path, kind, n) in &names {
                if !cascades.iter().any(|c| kind.list(c).iter().any(|x| x == n)) {
                    let mut known: Vec<&str> = cascades
                        .iter()
                        .flat_map(|c| kind.list(c).iter().map(String::as_str))
                        .collect();
                    known.sort_unstable();
                    known.dedup();
                    return Err((
                        path.clone(),
                        format!(
                            "no cascade mapped ({}) has {} {} `{n}` ({}s: {})",
                            which(),
                            if *kind == Kind::Einsum { "an" } else { "a" },
                            kind.word(),
                            kind.word(),
                            known.join(", ")
                        ),
                    ));
                }
            }
            // A fixed factor of 2× a rank's extent or more only pads: a mapping made with it
            // would be refused when replayed.
            let factors: Vec<(String, &str, u64)> = match entry {
                Entry::Temporal(i) => self.temporal[i]
                    .factors
                    .iter()
                    .map(|(r, &f)| (format!("temporal[{i}].factors.{r}"), r.as_str(), f))
                    .collect(),
                Entry::Spatial(i) => self.spatial[i]
                    .factors
                    .iter()
                    .map(|(r, &f)| (format!("spatial[{i}].factors.{r}"), r.as_str(), f))
                    .collect(),
                _ => Vec::new(),
            };
            for c in cascades.iter().filter(|c| applies(&names, c)) {
                for (path, r, f) in &factors {
                    let Some(x) = c.ranks.iter().position(|n| n == r) else {
                        continue;
                    };
                    let extent = c.extents.get(x).copied().unwrap_or(u64::MAX);
                    if f / 2 >= extent {
                        return Err((
                            path.clone(),
                            format!(
                                "factor {f} is at least twice the extent {extent} of rank {r} in cascade {}: half its iterations or more would be padding",
                                c.cascade
                            ),
                        ));
                    }
                }
            }
            if !cascades.iter().any(|c| applies(&names, c)) {
                let list: Vec<&str> = names.iter().map(|x| x.2).collect();
                return Err((
                    entry_path(entry),
                    format!(
                        "no single cascade mapped ({}) has all of {}: the entry applies to none (an entry applies to the cascades that have every name it uses)",
                        which(),
                        list.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The entries that apply to a cascade with these names (those whose every rank, tensor
    /// and Einsum name is the cascade's).
    pub fn for_cascade(&self, n: &Names) -> Constraints {
        let mut c = Constraints {
            origin: self.origin.clone(),
            ..Constraints::default()
        };
        for (entry, names) in self.entries() {
            if !applies(&names, n) {
                continue;
            }
            match entry {
                Entry::Temporal(i) => c.temporal.push(self.temporal[i].clone()),
                Entry::Spatial(i) => c.spatial.push(self.spatial[i].clone()),
                Entry::Bypass(i) => c.bypass.push(self.bypass[i].clone()),
                Entry::Utilization(i) => c.utilization.push(self.utilization[i].clone()),
                Entry::Bind(i) => c.bind.push(self.bind[i].clone()),
            }
        }
        c
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

/// A cascade name an entry uses: its field path, its kind and the name.
type Used<'a> = (String, Kind, &'a str);

fn applies(names: &[Used], c: &Names) -> bool {
    names
        .iter()
        .all(|(_, kind, n)| kind.list(c).iter().any(|x| x == n))
}

fn entry_path(e: Entry) -> String {
    match e {
        Entry::Temporal(i) => format!("temporal[{i}]"),
        Entry::Spatial(i) => format!("spatial[{i}]"),
        Entry::Bypass(i) => format!("bypass[{i}]"),
        Entry::Utilization(i) => format!("utilization[{i}]"),
        Entry::Bind(i) => format!("bind[{i}]"),
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
