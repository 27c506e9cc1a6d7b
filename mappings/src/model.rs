//! The contract between the mapper and the cost models: an architecture lowered to numbers for
//! a problem ([`ArchP`]), a compact group mapping ([`GroupPlan`]), its evaluation
//! ([`GroupEval`]), why a mapping cannot run ([`Invalid`]) and the [`CostModel`] trait that
//! `sim` implements.
//!
//! **Nodes.** Storage levels are nodes `0..L` (the root first); compute unit `u` is node `L + u`.
//! Every node but the root has a fanout (instances per instance of its parent), over which
//! spatial loops unroll.
//!
//! **A group's loop nest.** The Einsums of a fusion group share the temporal loops of the
//! levels above the group's *fusion level* `fuse` (they step through `fuse`-sized tiles
//! together); below, each compute unit has its own loops (`owner`): `fuse`'s temporal loops
//! and, for every node further down its path, the spatial loops over that node's fanout
//! followed by the node's temporal loops. An Einsum sees the shared loops and its unit's
//! loops over the ranks it iterates ([`GroupPlan::view`]). A tensor's tile at a level is
//! everything inside the level's *keep position* (by default where the level's own loops
//! begin, as in Timeloop; a position further out keeps a larger tile, as ZigZag allocates
//! loops per operand), and it is refetched as the loops outside it step.

use crate::problem::{Problem, Role};
use cascade_arch::{Architecture, ROLES};
use std::fmt;

/// `LoopP::dim` of a temporal loop.
pub const TEMPORAL: u8 = u8::MAX;
/// `LoopP::owner` of a loop shared by the whole group.
pub const SHARED: u8 = u8::MAX;

/// A storage level lowered for a problem.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelP {
    pub name: String,
    pub off_chip: bool,
    pub parent: Option<usize>,
    /// Instances per parent instance, per spatial dimension.
    pub fanout: Vec<u64>,
    /// Instances in the whole architecture.
    pub instances: u64,
    /// Bits one instance holds (`INFINITY` = unbounded).
    pub capacity_bits: f64,
    /// Tensors (bitmask) the level may keep.
    pub holds: u64,
    /// Energy per bit read, filled (from the parent) and updated (from a child), pJ.
    pub read_pj_per_bit: f64,
    pub fill_pj_per_bit: f64,
    pub update_pj_per_bit: f64,
    /// Bits per read and write access (the ports' widths).
    pub read_width_bits: f64,
    pub write_width_bits: f64,
    /// Per instance, bits per cycle: separate read and write ports, or one shared port
    /// (`INFINITY` = unbounded).
    pub read_bits_per_cycle: f64,
    pub write_bits_per_cycle: f64,
    pub shared_bits_per_cycle: f64,
    pub multicast: bool,
    pub spatial_reduction: bool,
}

impl LevelP {
    /// Cycles one instance needs to read `r` bits and write `w` bits.
    pub fn port_cycles(&self, r: f64, w: f64) -> f64 {
        let t = |bits: f64, bpc: f64| if bpc.is_finite() { bits / bpc } else { 0.0 };
        t(r + w, self.shared_bits_per_cycle)
            .max(t(r, self.read_bits_per_cycle))
            .max(t(w, self.write_bits_per_cycle))
    }
}

/// A compute unit with op costs indexed by the problem's op kinds.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitP {
    pub name: String,
    /// The level the PEs hang under.
    pub level: usize,
    /// Levels from the root to `level`.
    pub path: Vec<usize>,
    /// PEs per instance of `level`, per spatial dimension.
    pub fanout: Vec<u64>,
    /// PEs in the whole architecture.
    pub pes: u64,
    /// Depth of every node along the unit's path (root = 0, the unit itself last), or
    /// `u8::MAX` for nodes off it.
    pub depth: Vec<u8>,
    pub op_cycles: Vec<Option<f64>>,
    pub op_energy_pj: Vec<f64>,
    /// `(producer kind, consumer kind)` pairs issued as one op.
    pub chains: Vec<(usize, usize)>,
}

/// A tensor's word sizes (bits): as an operand or final value, and while partial.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WordBits {
    pub value: f64,
    pub partial: f64,
}

/// The numbers of an architecture the models need, for one problem.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchP {
    pub name: String,
    pub clock_hz: f64,
    pub levels: Vec<LevelP>,
    pub units: Vec<UnitP>,
    /// Word sizes per problem tensor.
    pub bits: Vec<WordBits>,
}

impl ArchP {
    /// Lower an architecture for a problem. Errors name the field: a level that holds a
    /// tensor name the cascade does not have, or a root level that refuses the cascade's inputs
    /// or outputs.
    pub fn new(arch: &Architecture, p: &Problem) -> Result<ArchP, String> {
        let clock = arch.clock.hz();
        let bpc = |bw: Option<cascade_arch::Bandwidth>| {
            bw.map_or(f64::INFINITY, |b| b.bytes_per_s() * 8.0 / clock)
        };
        let mut levels = Vec::new();
        for (i, l) in arch.levels.iter().enumerate() {
            let holds = match &l.holds {
                None => u64::MAX,
                Some(list) => {
                    let mut m = 0u64;
                    for (k, h) in list.iter().enumerate() {
                        if ROLES.contains(&h.as_str()) {
                            for (t, tp) in p.tensors.iter().enumerate() {
                                let role = match tp.role {
                                    Role::Input => "inputs",
                                    Role::Intermediate => "intermediates",
                                    Role::Output => "outputs",
                                };
                                if role == h {
                                    m |= 1 << t;
                                }
                            }
                        } else {
                            let t = p.tensor_index(h).ok_or_else(|| {
                                format!(
                                    "{}: levels[{i}] ({}).holds[{k}]: cascade `{}` has no tensor `{h}` (tensors: {})",
                                    arch.name,
                                    l.name,
                                    p.cascade,
                                    p.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                                )
                            })?;
                            m |= 1 << t;
                        }
                    }
                    m
                }
            };
            if i == 0 {
                if let Some(t) = (0..p.tensors.len())
                    .find(|&t| p.tensors[t].role != Role::Intermediate && holds & (1 << t) == 0)
                {
                    return Err(format!(
                        "{}: levels[0] ({}).holds: the root level must hold the cascade's inputs and outputs, but not `{}`",
                        arch.name, l.name, p.tensors[t].name
                    ));
                }
            }
            let rw = f64::from(l.width_bits);
            let ww = f64::from(l.write_width());
            let (read_bpc, write_bpc, shared_bpc) = match l.bandwidth {
                Some(shared) => (f64::INFINITY, f64::INFINITY, bpc(Some(shared))),
                None => (bpc(l.read_bandwidth), bpc(l.write_bandwidth), f64::INFINITY),
            };
            levels.push(LevelP {
                name: l.name.clone(),
                off_chip: l.kind.off_chip(),
                parent: arch.parent(i),
                fanout: l.fanout.iter().map(|&f| u64::from(f)).collect(),
                instances: arch.instances(i),
                capacity_bits: l.capacity_bytes().map_or(f64::INFINITY, |c| c * 8.0),
                holds,
                read_pj_per_bit: l.energy.read.pj() / rw,
                fill_pj_per_bit: l.energy.fill().pj() / ww,
                update_pj_per_bit: l.energy.update().pj() / ww,
                read_width_bits: rw,
                write_width_bits: ww,
                read_bits_per_cycle: read_bpc,
                write_bits_per_cycle: write_bpc,
                shared_bits_per_cycle: shared_bpc,
                multicast: l.multicast,
                spatial_reduction: l.spatial_reduction,
            });
        }
        let kind_idx = |k: &str| p.op_kinds.iter().position(|o| o == k);
        let nodes = arch.levels.len() + arch.compute.len();
        let units = arch
            .compute
            .iter()
            .enumerate()
            .map(|(u, c)| UnitP {
                name: c.name.clone(),
                level: arch.unit_level(u),
                depth: {
                    let path = arch.unit_path(u);
                    let mut d = vec![u8::MAX; nodes];
                    for (i, &l) in path.iter().enumerate() {
                        d[l] = i as u8;
                    }
                    d[arch.levels.len() + u] = path.len() as u8;
                    d
                },
                path: arch.unit_path(u),
                fanout: c.fanout.iter().map(|&f| u64::from(f)).collect(),
                pes: arch.unit_pes(u),
                op_cycles: p
                    .op_kinds
                    .iter()
                    .map(|k| c.op(k).map(|o| f64::from(o.cycles)))
                    .collect(),
                op_energy_pj: p
                    .op_kinds
                    .iter()
                    .map(|k| c.op(k).map_or(0.0, |o| o.energy.pj()))
                    .collect(),
                chains: c
                    .chains
                    .iter()
                    .filter_map(|ch| ch.split_once('>'))
                    .filter_map(|(a, b)| Some((kind_idx(a)?, kind_idx(b)?)))
                    .collect(),
            })
            .collect();
        let pr = &arch.precision;
        let dtype_bits = (p.dtype_bytes * 8) as u32;
        let bits = p
            .tensors
            .iter()
            .map(|t| {
                let role = match t.role {
                    Role::Output => pr.outputs,
                    _ => pr.operands,
                };
                let value = pr
                    .tensors
                    .get(&t.name)
                    .copied()
                    .or(role)
                    .or(pr.default)
                    .unwrap_or(dtype_bits);
                WordBits {
                    value: f64::from(value),
                    partial: f64::from(pr.partial_sums.unwrap_or(value)),
                }
            })
            .collect();
        Ok(ArchP {
            name: arch.name.clone(),
            clock_hz: clock,
            levels,
            units,
            bits,
        })
    }

    pub fn unit_index(&self, name: &str) -> Option<usize> {
        self.units.iter().position(|u| u.name == name)
    }
    pub fn level_index(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.name == name)
    }
    /// Number of nodes (levels, then units).
    pub fn nodes(&self) -> usize {
        self.levels.len() + self.units.len()
    }
    /// The node of unit `u`.
    pub fn unit_node(&self, u: usize) -> usize {
        self.levels.len() + u
    }
    /// The fanout of a node (per spatial dimension).
    pub fn fanout(&self, node: usize) -> &[u64] {
        if node < self.levels.len() {
            &self.levels[node].fanout
        } else {
            &self.units[node - self.levels.len()].fanout
        }
    }
    /// A node's name (a level's or a unit's).
    pub fn node_name(&self, node: usize) -> &str {
        if node < self.levels.len() {
            &self.levels[node].name
        } else {
            &self.units[node - self.levels.len()].name
        }
    }
    /// Whether `node` lies on unit `u`'s path (its levels and the unit itself).
    pub fn on_path(&self, u: usize, node: usize) -> bool {
        node == self.unit_node(u) || self.units[u].path.contains(&node)
    }
    /// Depth of a node along a unit's path (root = 0, the unit's own node last).
    #[inline]
    pub fn depth_on_path(&self, u: usize, node: usize) -> Option<usize> {
        match self.units[u].depth.get(node) {
            Some(&d) if d != u8::MAX => Some(usize::from(d)),
            _ => None,
        }
    }
}

/// One loop of a group's nest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LoopP {
    /// Leaf rank.
    pub rank: u8,
    /// The node: a level (temporal loops of that level, or spatial loops over its fanout) or
    /// a unit (spatial loops over its PEs).
    pub node: u16,
    /// Spatial dimension of the node's fanout, or [`TEMPORAL`].
    pub dim: u8,
    /// The unit whose private loop this is, or [`SHARED`].
    pub owner: u8,
    pub factor: u64,
}

impl LoopP {
    pub fn spatial(&self) -> bool {
        self.dim != TEMPORAL
    }
}

/// Where a level keeps a tensor: bypassed, or at a loop index of the group's nest (the tile
/// is what the loops from that index inward touch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Keep {
    Bypass,
    At(u16),
}

/// A compact mapping of one fusion group (the mapper's inner-loop form).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupPlan {
    /// Einsum indices, in the problem's (dependency) order.
    pub einsums: Vec<usize>,
    /// Unit of each Einsum, parallel to `einsums`.
    pub binding: Vec<usize>,
    /// The fusion level: the shared loops step through its tiles; intermediates that must
    /// wait (a later pass, a skipped loop, an iterative rank) are held there.
    pub fuse: usize,
    /// The nest: shared loops (levels above `fuse`, outermost first), then each unit's
    /// private loops (nodes from `fuse` down its path; per node spatial loops first).
    pub loops: Vec<LoopP>,
    /// Keep positions and bypasses `(tensor, level, keep)`; a tensor not listed at a level
    /// is kept there if the level may hold it, at the level's default position.
    pub keep: Vec<(u8, u16, Keep)>,
    /// Let the model keep group inputs and outputs at the fusion level above their default
    /// position (larger tiles, fewer refetches) while capacity allows, best saving per byte
    /// first. Explicit `keep` entries take precedence.
    pub derive_keep: bool,
    /// Intermediates (tensor bitmask) spilled to the root level instead of held at `fuse`.
    pub spill: u64,
}

impl GroupPlan {
    /// Indices (into `loops`) of the loops Einsum `e` (bound to `unit`) iterates, outermost
    /// first: shared loops and the unit's own, over ranks of `e`, with factors above 1.
    pub fn view(&self, p: &Problem, e: usize, unit: usize) -> impl Iterator<Item = usize> + '_ {
        let vars = p.einsums[e].vars;
        self.loops.iter().enumerate().filter_map(move |(i, l)| {
            ((l.owner == SHARED || usize::from(l.owner) == unit)
                && vars & (1 << l.rank) != 0
                && l.factor > 1)
                .then_some(i)
        })
    }
}

/// Why a mapping cannot run.
#[derive(Clone, Debug, PartialEq)]
pub enum Invalid {
    Unsupported {
        einsum: usize,
        unit: usize,
        op: usize,
    },
    /// The tiles kept at a level need more than one instance holds.
    Capacity {
        level: usize,
        need_bits: f64,
        have_bits: f64,
    },
    /// The factors of a rank on an Einsum's loops cover less than its extent.
    Factor {
        einsum: usize,
        rank: usize,
        product: u64,
        extent: u64,
    },
    /// Spatial factors over a fanout dimension exceed it.
    Fanout {
        node: usize,
        dim: usize,
        product: u64,
        size: u64,
    },
    /// A malformed plan (loops at nodes off their unit's path, keep positions out of range,
    /// a fusion level some unit does not reach, …).
    Structure(String),
}

impl Invalid {
    /// A message naming Einsums, units, levels, ranks and tensors.
    pub fn describe(&self, p: &Problem, a: &ArchP) -> String {
        match self {
            Invalid::Unsupported { einsum, unit, op } => format!(
                "Einsum {} needs `{}`, which unit {} of {} does not support",
                p.einsums[*einsum].name, p.op_kinds[*op], a.units[*unit].name, a.name
            ),
            Invalid::Capacity {
                level,
                need_bits,
                have_bits,
            } => format!(
                "tiles kept at level {} need {:.0} B per instance but it holds {:.0} B",
                a.levels[*level].name,
                need_bits / 8.0,
                have_bits / 8.0
            ),
            Invalid::Factor {
                einsum,
                rank,
                product,
                extent,
            } => format!(
                "the loops of Einsum {} over rank {} multiply to {product}, less than its extent {extent}",
                p.einsums[*einsum].name, p.ranks[*rank].name
            ),
            Invalid::Fanout {
                node,
                dim,
                product,
                size,
            } => format!(
                "spatial factors over dimension {dim} of {} multiply to {product}, but it has {size} instances there",
                a.node_name(*node)
            ),
            Invalid::Structure(s) => s.clone(),
        }
    }
}

/// Scalar accesses (words) of one tensor at one level, summed over instances, and the bits
/// they move (words times their size in the state they are in: partial or final).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Actions {
    /// Words read out (to a child level or a compute unit, or back up to the parent).
    pub reads: f64,
    /// Words written in from the parent.
    pub fills: f64,
    /// Words written in from a child or a compute unit (results, partial sums).
    pub updates: f64,
    pub read_bits: f64,
    pub fill_bits: f64,
    pub update_bits: f64,
    /// Port accesses (of the level's read or write width) the actions take.
    pub read_accesses: f64,
    pub fill_accesses: f64,
    pub update_accesses: f64,
}

impl Actions {
    pub fn add(&mut self, o: &Actions) {
        self.reads += o.reads;
        self.fills += o.fills;
        self.updates += o.updates;
        self.read_bits += o.read_bits;
        self.fill_bits += o.fill_bits;
        self.update_bits += o.update_bits;
        self.read_accesses += o.read_accesses;
        self.fill_accesses += o.fill_accesses;
        self.update_accesses += o.update_accesses;
    }
    /// Whether nothing moved.
    pub fn is_empty(&self) -> bool {
        self.reads == 0.0 && self.fills == 0.0 && self.updates == 0.0
    }
}

/// What a cost model says about one group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupEval {
    pub cycles: f64,
    pub compute_cycles: f64,
    /// Per level: cycles its busiest ports need.
    pub level_cycles: Vec<f64>,
    /// Per `level × tensor` (row-major, `level * tensors + tensor`).
    pub actions: Vec<Actions>,
    /// Energy per level: (read, fill, update) pJ.
    pub level_energy_pj: Vec<[f64; 3]>,
    /// Op energy per unit, pJ.
    pub unit_energy_pj: Vec<f64>,
    /// Ops per unit.
    pub unit_ops: Vec<f64>,
    /// Per unit: cycles of useful work at full use of its PEs.
    pub unit_busy: Vec<f64>,
    /// Per level: bits one instance holds at its fullest.
    pub used_bits: Vec<f64>,
    /// Keep positions used (`(tensor, level, keep)`), so a saved mapping replays them.
    pub keep: Vec<(u8, u16, Keep)>,
}

impl GroupEval {
    pub fn energy_pj(&self) -> f64 {
        self.level_energy_pj
            .iter()
            .flat_map(|e| e.iter())
            .sum::<f64>()
            + self.unit_energy_pj.iter().sum::<f64>()
    }
    /// The level whose ports bound the latency, if any does.
    pub fn bound(&self) -> Option<usize> {
        let (i, c) = self
            .level_cycles
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))?;
        (*c > self.compute_cycles).then_some(i)
    }
}

impl fmt::Display for GroupEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} cycles ({:.0} compute), {:.3e} pJ",
            self.cycles,
            self.compute_cycles,
            self.energy_pj()
        )
    }
}

/// What the search scores: latency and energy of a group.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    pub cycles: f64,
    pub energy_pj: f64,
}

/// A cost model the mapper can search against.
pub trait CostModel: Sync {
    /// The full evaluation (traffic per level and tensor, energy by action, …).
    fn evaluate(&self, p: &Problem, a: &ArchP, g: &GroupPlan) -> Result<GroupEval, Invalid>;
    /// Latency and energy only: the mapper's inner loop. Must equal `evaluate`'s totals.
    fn score(&self, p: &Problem, a: &ArchP, g: &GroupPlan) -> Result<Score, Invalid> {
        self.evaluate(p, a, g).map(|e| Score {
            cycles: e.cycles,
            energy_pj: e.energy_pj(),
        })
    }
}
