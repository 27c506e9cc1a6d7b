//! The Mapping type — what a saved mapping holds: the cascade instance (rank extents, the
//! workload's bytes per element, MoE routing) and per fusion group the Einsums, their units,
//! the fusion level, the loop nest, keep positions and bypasses, spills. Serialises to TOML and
//! back; a reloaded mapping evaluates to the same report. Conversion to the compact
//! [`GroupPlan`] checks every name and refuses what cannot run, naming the field.
//!
//! ```toml
//! cascade = "gemm"
//! arch = "fusemax"
//! dtype_bytes = 2
//! [extents]
//! T = 64
//! [[groups]]
//! einsums = ["C"]
//! fuse = "global_buffer"
//! bindings = { C = "pe2d" }
//! [[groups.loops]]              # outermost first
//! level = "dram"                # temporal loop of the root (shared: above the fusion level)
//! rank = "T"
//! factor = 4
//! [[groups.loops]]
//! level = "rf2d"                # spatial over rf2d's fanout dimension 0, pe2d's own loop
//! dim = 0
//! owner = "pe2d"
//! rank = "K"
//! factor = 256
//! [[groups.keep]]
//! tensor = "W"
//! level = "rf2d"
//! bypass = true
//! ```

use crate::model::{ArchP, GroupPlan, Keep, LoopP, SHARED, TEMPORAL};
use crate::problem::{Problem, Role};
use cascade_einsum::{Routing, SourceFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One loop: `factor` iterations over leaf rank `rank` at a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopMapping {
    /// The level whose temporal block (or, with `dim`, whose fanout) the loop belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// A compute unit whose PEs the loop unrolls over (needs `dim`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Spatial dimension of the node's fanout; absent for a temporal loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<u8>,
    /// The unit whose own loop this is (loops at and below the fusion level); absent for the
    /// shared loops above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub rank: String,
    pub factor: u64,
}

/// Where a level keeps a tensor (`at`: the loop index its tile starts from) or that it bypasses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepMapping {
    pub tensor: String,
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u16>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bypass: bool,
}

/// Einsums that share the loops above a fusion level and exchange tiles on chip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    pub einsums: Vec<String>,
    /// The fusion level.
    pub fuse: String,
    /// Einsum → compute unit.
    pub bindings: BTreeMap<String, String>,
    /// The nest, outermost first: shared loops, then each unit's own.
    #[serde(default)]
    pub loops: Vec<LoopMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<KeepMapping>,
    /// Let the model choose larger fusion-level tiles for tensors without a `keep` entry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub derive_keep: bool,
    /// Intermediates sent to the root level instead of held at the fusion level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spill: Vec<String>,
}

/// MoE routing of the instance: tokens per expert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingMapping {
    pub expert_rank: String,
    pub tokens: u64,
    pub tokens_per_expert: Vec<u64>,
}

impl From<&Routing> for RoutingMapping {
    fn from(r: &Routing) -> Self {
        RoutingMapping {
            expert_rank: r.expert_rank.clone(),
            tokens: r.tokens,
            tokens_per_expert: r.tokens_per_expert.clone(),
        }
    }
}

impl From<&RoutingMapping> for Routing {
    fn from(r: &RoutingMapping) -> Self {
        Routing {
            expert_rank: r.expert_rank.clone(),
            tokens: r.tokens,
            tokens_per_expert: r.tokens_per_expert.clone(),
        }
    }
}

/// A mapping of a whole cascade instance onto an architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// A built-in cascade name or a `.ein` file.
    pub cascade: String,
    /// A preset name or an architecture TOML file.
    pub arch: String,
    /// Bytes per element of the workload (the architecture's `precision` may override).
    pub dtype_bytes: u64,
    /// Rank extents the mapping was made for.
    pub extents: BTreeMap<String, u64>,
    /// MoE routing (tokens per expert), for cascades that route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingMapping>,
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

/// A problem with a mapping's field: the field's path (`groups[0].loops[2].rank`) and why.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn fe(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}

impl Mapping {
    pub fn to_toml(&self) -> Result<String, MappingError> {
        toml::to_string_pretty(self).map_err(|e| MappingError::Serialize(e.to_string()))
    }
    pub fn from_toml_str(text: &str, file: &str) -> Result<Mapping, MappingError> {
        let m: Mapping = toml::from_str(text).map_err(|e| {
            let (line, col) = SourceFile::new(file, text).line_col(e.span().map_or(0, |s| s.start));
            MappingError::Parse {
                file: file.into(),
                line,
                col,
                message: e.message().trim().to_string(),
            }
        })?;
        if m.dtype_bytes == 0 || m.dtype_bytes > u64::from(cascade_arch::MAX_WORD_BITS / 8) {
            return Err(locate(
                text,
                file,
                fe(
                    "dtype_bytes",
                    format!(
                        "must be ≥ 1 and ≤ {} (bytes per element), got {}",
                        cascade_arch::MAX_WORD_BITS / 8,
                        m.dtype_bytes
                    ),
                ),
            ));
        }
        for (r, &n) in &m.extents {
            if n == 0 {
                return Err(locate(
                    text,
                    file,
                    fe(format!("extents.{r}"), "extents are ≥ 1"),
                ));
            }
        }
        Ok(m)
    }
    /// Reads a mapping file; returns it with its text (to locate later errors).
    pub fn load(path: &std::path::Path) -> Result<(Mapping, String), MappingError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Io {
            file: file.clone(),
            source,
        })?;
        Ok((Mapping::from_toml_str(&text, &file)?, text))
    }
    /// The routing as the analyses take it.
    pub fn routing(&self) -> Option<Routing> {
        self.routing.as_ref().map(Routing::from)
    }
    /// Every group as a compact plan, checking that the groups cover each Einsum once.
    pub fn plans(&self, p: &Problem, a: &ArchP) -> Result<Vec<GroupPlan>, FieldError> {
        if let Some(r) = &self.routing {
            let Some(x) = p.rank_index(&r.expert_rank) else {
                return Err(fe(
                    "routing.expert_rank",
                    format!(
                        "cascade {} has no rank `{}` (ranks: {})",
                        p.cascade,
                        r.expert_rank,
                        names(p.ranks.iter().map(|r| r.name.as_str()))
                    ),
                ));
            };
            let experts = p.ranks[x].extent;
            if r.tokens_per_expert.len() as u64 != experts {
                return Err(fe(
                    "routing.tokens_per_expert",
                    format!(
                        "gives {} experts, but rank {} has extent {experts}",
                        r.tokens_per_expert.len(),
                        r.expert_rank
                    ),
                ));
            }
            if let Some(i) = r.tokens_per_expert.iter().position(|&n| n > r.tokens) {
                return Err(fe(
                    format!("routing.tokens_per_expert[{i}]"),
                    format!(
                        "expert {i} receives {} tokens, more than the {} routed",
                        r.tokens_per_expert[i], r.tokens
                    ),
                ));
            }
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut plans = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            for (k, e) in g.einsums.iter().enumerate() {
                if let Some(j) = seen.insert(e, i) {
                    return Err(fe(
                        format!("groups[{i}].einsums[{k}]"),
                        format!("Einsum {e} is already mapped by groups[{j}]: each Einsum is mapped once"),
                    ));
                }
            }
            plans.push(g.to_plan(p, a).map_err(|mut e| {
                e.path = format!("groups[{i}].{}", e.path);
                e
            })?);
        }
        if let Some(e) = p
            .einsums
            .iter()
            .find(|e| !seen.contains_key(e.name.as_str()))
        {
            return Err(fe(
                "groups",
                format!("Einsum {} is not mapped by any group", e.name),
            ));
        }
        Ok(plans)
    }
}

/// A field error located in the mapping's text.
pub fn locate(text: &str, file: &str, e: FieldError) -> MappingError {
    let off = cascade_arch::locate::locate(text, &e.path).unwrap_or(0);
    let (line, col, _) = cascade_arch::locate::line_col(text, off);
    MappingError::Parse {
        file: file.to_string(),
        line,
        col,
        message: e.to_string(),
    }
}

/// The loop nest of a group can run and means what it says: no rank unrolled twice over the
/// same fanout dimension, spatial factors within every fanout dimension (the shared loops' and
/// each unit's own together), and per Einsum and rank factors that cover the extent, padding
/// less than a factor of 2 (the mapper's imperfect factors round an extent up by less).
fn check_loops(
    p: &Problem,
    a: &ArchP,
    einsums: &[usize],
    binding: &[usize],
    loops: &[LoopP],
) -> Result<(), FieldError> {
    let node_dim = |l: &LoopP| {
        format!(
            "dimension {} of {}",
            l.dim,
            a.node_name(usize::from(l.node))
        )
    };
    for (j, l) in loops.iter().enumerate() {
        if !l.spatial() {
            continue;
        }
        if let Some(i) = loops[..j].iter().position(|x| {
            x.spatial() && (x.node, x.dim, x.owner, x.rank) == (l.node, l.dim, l.owner, l.rank)
        }) {
            return Err(fe(
                format!("loops[{j}].rank"),
                format!(
                    "rank {} is unrolled over {} by loops[{i}] already: give one loop with the product of the factors",
                    p.ranks[usize::from(l.rank)].name,
                    node_dim(l)
                ),
            ));
        }
    }
    // Spatial factors per fanout dimension, as each unit's Einsums see them.
    let mut owners: Vec<u8> = binding.iter().map(|&u| u as u8).collect();
    owners.push(SHARED);
    for &o in &owners {
        let mine = |l: &LoopP| l.owner == SHARED || l.owner == o;
        for (j, l) in loops.iter().enumerate() {
            if !l.spatial() || !mine(l) {
                continue;
            }
            let size = a
                .fanout(usize::from(l.node))
                .get(usize::from(l.dim))
                .copied()
                .unwrap_or(1);
            let product = loops[..=j]
                .iter()
                .filter(|x| x.spatial() && mine(x) && (x.node, x.dim) == (l.node, l.dim))
                .fold(1u64, |m, x| m.saturating_mul(x.factor));
            if product > size {
                return Err(fe(
                    format!("loops[{j}].factor"),
                    format!(
                        "spatial factors over {} multiply to {product}, above its {size} instances",
                        node_dim(l)
                    ),
                ));
            }
        }
    }
    for (k, &e) in einsums.iter().enumerate() {
        let ep = &p.einsums[e];
        let u = binding[k] as u8;
        for (r, rk) in p.ranks.iter().enumerate() {
            if ep.vars & (1 << r) == 0 {
                continue;
            }
            let mine = |l: &&LoopP| usize::from(l.rank) == r && (l.owner == SHARED || l.owner == u);
            let product = loops
                .iter()
                .filter(mine)
                .fold(1u64, |m, x| m.saturating_mul(x.factor));
            let last = loops.iter().rposition(|l| mine(&l));
            let at = last.map_or("loops".to_string(), |j| format!("loops[{j}].factor"));
            if product < rk.extent {
                return Err(fe(
                    at,
                    format!(
                        "the loops of Einsum {} over rank {} multiply to {product}, less than its extent {}",
                        ep.name, rk.name, rk.extent
                    ),
                ));
            }
            if product / 2 >= rk.extent {
                return Err(fe(
                    at,
                    format!(
                        "the loops of Einsum {} over rank {} multiply to {product}, at least twice its extent {}: half the iterations or more would be padding (factors multiply to the extent, or round it up by less than a factor of 2)",
                        ep.name, rk.name, rk.extent
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

impl GroupMapping {
    /// The compact plan; errors name the field (relative to the group).
    pub fn to_plan(&self, p: &Problem, a: &ArchP) -> Result<GroupPlan, FieldError> {
        let rank = |path: String, n: &str| {
            p.rank_index(n).ok_or_else(|| {
                fe(
                    path,
                    format!(
                        "unknown rank `{n}` (ranks: {})",
                        names(p.ranks.iter().map(|r| r.name.as_str()))
                    ),
                )
            })
        };
        let unit = |path: String, n: &str| {
            a.unit_index(n).ok_or_else(|| {
                fe(
                    path,
                    format!(
                        "unknown compute unit `{n}` (units of {}: {})",
                        a.name,
                        names(a.units.iter().map(|u| u.name.as_str()))
                    ),
                )
            })
        };
        let level = |path: String, n: &str| {
            a.level_index(n).ok_or_else(|| {
                fe(
                    path,
                    format!(
                        "unknown level `{n}` (levels of {}: {})",
                        a.name,
                        names(a.levels.iter().map(|l| l.name.as_str()))
                    ),
                )
            })
        };
        let tensor = |path: String, n: &str| {
            p.tensor_index(n).ok_or_else(|| {
                fe(
                    path,
                    format!(
                        "unknown tensor `{n}` (tensors: {})",
                        names(p.tensors.iter().map(|t| t.name.as_str()))
                    ),
                )
            })
        };
        if self.einsums.is_empty() {
            return Err(fe("einsums", "a group maps at least one Einsum"));
        }
        let mut einsums = Vec::new();
        for (k, n) in self.einsums.iter().enumerate() {
            let e = p.einsum_index(n).ok_or_else(|| {
                fe(
                    format!("einsums[{k}]"),
                    format!(
                        "unknown Einsum `{n}` (Einsums: {})",
                        names(p.einsums.iter().map(|e| e.name.as_str()))
                    ),
                )
            })?;
            if einsums.contains(&e) {
                return Err(fe(
                    format!("einsums[{k}]"),
                    format!("Einsum {n} is listed twice"),
                ));
            }
            einsums.push(e);
        }
        einsums.sort_unstable(); // dependency order
        for n in self.bindings.keys() {
            if !self.einsums.contains(n) {
                return Err(fe(
                    format!("bindings.{n}"),
                    format!("binds `{n}`, which is not an Einsum of this group"),
                ));
            }
        }
        let mut binding = Vec::new();
        for &e in &einsums {
            let n = &p.einsums[e].name;
            let u = self
                .bindings
                .get(n)
                .ok_or_else(|| fe("bindings", format!("Einsum {n} has no binding")))?;
            binding.push(unit(format!("bindings.{n}"), u)?);
        }
        let fuse = level("fuse".into(), &self.fuse)?;
        let mut loops = Vec::new();
        for (i, l) in self.loops.iter().enumerate() {
            let at = |f: &str| format!("loops[{i}].{f}");
            if l.factor == 0 {
                return Err(fe(at("factor"), "factors are ≥ 1"));
            }
            let node = match (&l.level, &l.unit) {
                (Some(lv), None) => level(at("level"), lv)?,
                (None, Some(u)) => a.unit_node(unit(at("unit"), u)?),
                _ => {
                    return Err(fe(
                        format!("loops[{i}]"),
                        "name either `level` or `unit` (a unit's loops unroll over its PEs)",
                    ))
                }
            };
            let owner = match (&l.owner, &l.unit) {
                (Some(o), _) => {
                    let u = unit(at("owner"), o)?;
                    if !binding.contains(&u) {
                        return Err(fe(
                            at("owner"),
                            format!("no Einsum of this group runs on `{o}`"),
                        ));
                    }
                    u as u8
                }
                (None, Some(u)) => unit(at("unit"), u)? as u8,
                (None, None) => SHARED,
            };
            if l.unit.is_some() && l.dim.is_none() {
                return Err(fe(
                    at("dim"),
                    "a unit's loop unrolls over a dimension of its PEs: give `dim`",
                ));
            }
            if let Some(d) = l.dim {
                let fan = a.fanout(node);
                if usize::from(d) >= fan.len() {
                    return Err(fe(
                        at("dim"),
                        format!(
                            "{} has {} fanout dimension(s); dim {d} does not exist",
                            a.node_name(node),
                            fan.len()
                        ),
                    ));
                }
                if l.factor > fan[usize::from(d)] {
                    return Err(fe(
                        at("factor"),
                        format!(
                            "spatial factor {} is above the {} instances of {} on dim {d}",
                            l.factor,
                            fan[usize::from(d)],
                            a.node_name(node)
                        ),
                    ));
                }
            }
            loops.push(LoopP {
                rank: rank(at("rank"), &l.rank)? as u8,
                node: node as u16,
                dim: l.dim.unwrap_or(TEMPORAL),
                owner,
                factor: l.factor,
            });
        }
        let mut keep = Vec::new();
        for (i, k) in self.keep.iter().enumerate() {
            let at = |f: &str| format!("keep[{i}].{f}");
            let t = tensor(at("tensor"), &k.tensor)?;
            let l = level(at("level"), &k.level)?;
            let how = match (k.bypass, k.at) {
                (true, None) => Keep::Bypass,
                (false, Some(pos)) => {
                    if usize::from(pos) > loops.len() {
                        return Err(fe(
                            at("at"),
                            format!("loop index {pos} is past the group's {} loops", loops.len()),
                        ));
                    }
                    Keep::At(pos)
                }
                _ => {
                    return Err(fe(
                        format!("keep[{i}]"),
                        "give either `at` (the loop index the tile starts from) or `bypass = true`",
                    ))
                }
            };
            keep.push((t as u8, l as u16, how));
        }
        for (i, k) in keep.iter().enumerate() {
            if let Some(j) = keep[..i].iter().position(|x| (x.0, x.1) == (k.0, k.1)) {
                return Err(fe(
                    format!("keep[{i}]"),
                    format!(
                        "tensor {} at level {} is already placed by keep[{j}]",
                        self.keep[i].tensor, self.keep[i].level
                    ),
                ));
            }
        }
        let mut spill = 0u64;
        for (i, t) in self.spill.iter().enumerate() {
            let at = format!("spill[{i}]");
            let ti = tensor(at.clone(), t)?;
            let tp = &p.tensors[ti];
            if tp.role != Role::Intermediate || !tp.producer.is_some_and(|e| einsums.contains(&e)) {
                return Err(fe(
                    at,
                    format!("{t} is not an intermediate produced in this group: only those can be spilled"),
                ));
            }
            if spill & (1 << ti) != 0 {
                return Err(fe(at, format!("{t} is listed twice")));
            }
            spill |= 1 << ti;
        }
        check_loops(p, a, &einsums, &binding, &loops)?;
        Ok(GroupPlan {
            einsums,
            binding,
            fuse,
            loops,
            keep,
            derive_keep: self.derive_keep,
            spill,
        })
    }

    /// A plan as a saved group mapping; `keep` holds the positions the evaluation used (the
    /// derived ones included), so a replay needs no derivation.
    pub fn from_plan(
        p: &Problem,
        a: &ArchP,
        g: &GroupPlan,
        keep: &[(u8, u16, Keep)],
    ) -> GroupMapping {
        let nl = a.levels.len();
        GroupMapping {
            einsums: g
                .einsums
                .iter()
                .map(|&e| p.einsums[e].name.clone())
                .collect(),
            fuse: a.levels[g.fuse].name.clone(),
            bindings: g
                .einsums
                .iter()
                .zip(&g.binding)
                .map(|(&e, &u)| (p.einsums[e].name.clone(), a.units[u].name.clone()))
                .collect(),
            loops: g
                .loops
                .iter()
                .map(|l| {
                    let node = usize::from(l.node);
                    let (level, unit) = if node < nl {
                        (Some(a.levels[node].name.clone()), None)
                    } else {
                        (None, Some(a.units[node - nl].name.clone()))
                    };
                    LoopMapping {
                        owner: (l.owner != SHARED && unit.is_none())
                            .then(|| a.units[usize::from(l.owner)].name.clone()),
                        level,
                        unit,
                        dim: l.spatial().then_some(l.dim),
                        rank: p.ranks[usize::from(l.rank)].name.clone(),
                        factor: l.factor,
                    }
                })
                .collect(),
            keep: keep
                .iter()
                .map(|&(t, l, k)| KeepMapping {
                    tensor: p.tensors[usize::from(t)].name.clone(),
                    level: a.levels[usize::from(l)].name.clone(),
                    at: match k {
                        Keep::At(pos) => Some(pos),
                        Keep::Bypass => None,
                    },
                    bypass: k == Keep::Bypass,
                })
                .collect(),
            derive_keep: false,
            spill: (0..p.tensors.len())
                .filter(|t| g.spill & (1 << t) != 0)
                .map(|t| p.tensors[t].name.clone())
                .collect(),
        }
    }
}
