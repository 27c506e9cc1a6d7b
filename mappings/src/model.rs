//! The contract between the mapper and the cost models: an architecture lowered to
//! numbers ([`ArchP`]), a compact group mapping ([`GroupPlan`]), its evaluation
//! ([`GroupEval`]) and the [`CostModel`] trait that `sim` implements.

use crate::problem::Problem;
use cascade_arch::{Architecture, ComputeShape, StorageKind};
use std::fmt;

/// A compute unit with op costs indexed by the problem's op kinds.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitP {
    pub name: String,
    /// Array dimensions: `[rows, cols]` or `[len]`.
    pub dims: Vec<u64>,
    pub pes: u64,
    pub op_cycles: Vec<Option<f64>>,
    pub op_energy_pj: Vec<f64>,
    /// `(producer kind, consumer kind)` pairs issued as one op.
    pub chains: Vec<(usize, usize)>,
}

/// The numbers of an architecture the spatial models need.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchP {
    pub name: String,
    pub clock_hz: f64,
    pub word_bytes: f64,
    pub glb_name: String,
    pub glb_capacity: f64,
    pub dram_bytes_per_cycle: f64,
    pub dram_read_pj_per_byte: f64,
    pub dram_write_pj_per_byte: f64,
    pub glb_read_pj_per_byte: f64,
    pub glb_write_pj_per_byte: f64,
    pub rf_read_pj: f64,
    pub rf_write_pj: f64,
    pub units: Vec<UnitP>,
}

impl ArchP {
    /// Lower an architecture for a problem: levels[0] is DRAM, the first SRAM level is the
    /// global buffer, a regfile level (if any) prices operand accesses.
    pub fn new(arch: &Architecture, p: &Problem) -> Result<ArchP, String> {
        let dram = arch.dram();
        let bw = dram.read_bandwidth.ok_or_else(|| {
            format!(
                "{}: levels[0] ({}).read_bandwidth is required for DRAM",
                arch.name, dram.name
            )
        })?;
        let glb = arch
            .levels
            .iter()
            .find(|l| l.kind == StorageKind::Sram && l.capacity.is_some())
            .ok_or_else(|| {
                format!(
                    "{}: no on-chip SRAM level with a capacity (global buffer)",
                    arch.name
                )
            })?;
        let rf = arch.levels.iter().find(|l| l.kind == StorageKind::Regfile);
        let per_byte = |pj: f64, bits: u32| pj / (f64::from(bits) / 8.0);
        let units = arch
            .compute
            .iter()
            .map(|u| {
                let dims = match u.shape {
                    ComputeShape::Array2d { rows, cols } => vec![u64::from(rows), u64::from(cols)],
                    ComputeShape::Array1d { len } => vec![u64::from(len)],
                };
                let kind_idx = |k: &str| p.op_kinds.iter().position(|o| o == k);
                UnitP {
                    name: u.name.clone(),
                    pes: dims.iter().product(),
                    dims,
                    op_cycles: p
                        .op_kinds
                        .iter()
                        .map(|k| u.op(k).map(|c| f64::from(c.cycles)))
                        .collect(),
                    op_energy_pj: p
                        .op_kinds
                        .iter()
                        .map(|k| u.op(k).map_or(0.0, |c| c.energy.pj()))
                        .collect(),
                    chains: u
                        .chains
                        .iter()
                        .filter_map(|c| c.split_once('>'))
                        .filter_map(|(a, b)| Some((kind_idx(a)?, kind_idx(b)?)))
                        .collect(),
                }
            })
            .collect();
        Ok(ArchP {
            name: arch.name.clone(),
            clock_hz: arch.clock.hz(),
            word_bytes: f64::from(arch.word_bits) / 8.0,
            glb_name: glb.name.clone(),
            glb_capacity: glb.capacity_bytes().unwrap_or(f64::INFINITY),
            dram_bytes_per_cycle: bw.bytes_per_s() / arch.clock.hz(),
            dram_read_pj_per_byte: per_byte(dram.energy.read.pj(), dram.energy.per_bits),
            dram_write_pj_per_byte: per_byte(dram.energy.write.pj(), dram.energy.per_bits),
            glb_read_pj_per_byte: per_byte(glb.energy.read.pj(), glb.energy.per_bits),
            glb_write_pj_per_byte: per_byte(glb.energy.write.pj(), glb.energy.per_bits),
            rf_read_pj: rf.map_or(0.0, |l| l.energy.read.pj()),
            rf_write_pj: rf.map_or(0.0, |l| l.energy.write.pj()),
            units,
        })
    }
    pub fn unit_index(&self, name: &str) -> Option<usize> {
        self.units.iter().position(|u| u.name == name)
    }
}

/// No rank on a spatial dimension.
pub const NONE: usize = usize::MAX;

/// A compact mapping of one fusion group (the mapper's inner-loop form).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupPlan {
    /// Einsum indices, in the problem's (dependency) order.
    pub einsums: Vec<usize>,
    /// Temporal loops above the global buffer: (leaf rank, factor), outermost first.
    pub loops: Vec<(usize, u64)>,
    /// Per unit, per array dimension: (leaf rank or [`NONE`], factor).
    pub spatial: Vec<Vec<(usize, u64)>>,
    /// Unit of each Einsum, parallel to `einsums`.
    pub binding: Vec<usize>,
    /// Intermediates (tensor bitmask) spilled to DRAM instead of buffered on chip.
    pub spill: u64,
    /// Explicit keep levels `(tensor, depth)` (from a saved mapping); empty = derive.
    pub keep: Vec<(usize, usize)>,
}

/// Why a mapping is invalid.
#[derive(Clone, Debug, PartialEq)]
pub enum Invalid {
    Unsupported {
        einsum: usize,
        unit: usize,
        op: usize,
    },
    Capacity {
        need: f64,
        have: f64,
    },
    Factor {
        rank: usize,
        product: u64,
        extent: u64,
    },
    Keep {
        tensor: usize,
        depth: usize,
    },
    /// One rank unrolled over two dimensions of the same unit.
    SpatialTwice {
        unit: usize,
        rank: usize,
    },
}

impl Invalid {
    /// A message naming Einsums, units, ranks and tensors.
    pub fn describe(&self, p: &Problem, a: &ArchP) -> String {
        match self {
            Invalid::Unsupported { einsum, unit, op } => format!(
                "Einsum {} needs `{}`, which unit {} of {} does not support",
                p.einsums[*einsum].name, p.op_kinds[*op], a.units[*unit].name, a.name
            ),
            Invalid::Capacity { need, have } => format!(
                "tiles need {:.0} B of {} but it holds {:.0} B",
                need, a.glb_name, have
            ),
            Invalid::Factor { rank, product, extent } => format!(
                "loop and spatial factors of rank {} multiply to {product}, which does not divide its extent {extent}",
                p.ranks[*rank].name
            ),
            Invalid::SpatialTwice { unit, rank } => {
                format!("rank {} is unrolled over two dimensions of unit {}", p.ranks[*rank].name, a.units[*unit].name)
            }
            Invalid::Keep { tensor, depth } => {
                format!("tensor {} cannot be kept at loop depth {depth}", p.tensors[*tensor].name)
            }
        }
    }
}

/// Energy by component, picojoules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Energy {
    pub dram: f64,
    pub glb: f64,
    pub rf: f64,
    /// Per unit: op energy.
    pub compute: Vec<f64>,
}

impl Energy {
    pub fn total(&self) -> f64 {
        self.dram + self.glb + self.rf + self.compute.iter().sum::<f64>()
    }
}

/// What a cost model says about one group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupEval {
    pub cycles: f64,
    pub compute_cycles: f64,
    pub mem_cycles: f64,
    pub energy: Energy,
    /// DRAM (tensor, bytes read, bytes written).
    pub dram: Vec<(usize, f64, f64)>,
    /// Global-buffer (tensor, bytes read, bytes written).
    pub glb: Vec<(usize, f64, f64)>,
    pub glb_bytes_used: f64,
    /// Per unit: cycles of useful work at full use of its PEs.
    pub unit_busy: Vec<f64>,
    /// Keep depth chosen for each tensor held in the global buffer.
    pub keep: Vec<(usize, usize)>,
}

impl fmt::Display for GroupEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} cycles ({:.0} compute, {:.0} memory), {:.3e} pJ",
            self.cycles,
            self.compute_cycles,
            self.mem_cycles,
            self.energy.total()
        )
    }
}

/// A cost model the mapper can search against.
pub trait CostModel: Sync {
    fn evaluate(&self, p: &Problem, a: &ArchP, g: &GroupPlan) -> Result<GroupEval, Invalid>;
}
