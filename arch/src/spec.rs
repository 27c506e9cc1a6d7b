//! The architecture specification: storage levels, compute units, links and (for GPUs) a
//! [`GpuSpec`]. Loaded from TOML with every unknown field rejected, then [`Architecture::validate`]d.

use crate::units::{Bandwidth, Bytes, Duration, Energy, Frequency};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Errors from loading or validating an architecture.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file name.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax error, unknown field, wrong type or bad unit string.
    #[error("{file}:{line}:{col}: {message}{}", snippet_suffix(snippet))]
    Parse {
        /// The file name given to the loader.
        file: String,
        /// 1-based line of the offending text (0 if unknown).
        line: usize,
        /// 1-based column (in characters) of the offending text (0 if unknown).
        col: usize,
        /// The parser's message, e.g. ``unknown field `bandwith`, expected ...``.
        message: String,
        /// The offending source line, which names the field.
        snippet: String,
    },
    /// A semantic check failed; `path` names the field, e.g. `levels[1] (global_buffer).read_bandwidth`.
    #[error("{}{path}: {message}", file_prefix(file))]
    Invalid {
        /// The file, when the architecture came from one.
        file: Option<String>,
        /// Field path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `preset(name)` with an unknown name.
    #[error("unknown preset \"{name}\"; known presets: {known}")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// Comma-separated known names.
        known: String,
    },
    /// Serializing to TOML failed.
    #[error("cannot serialize architecture to TOML: {0}")]
    Serialize(String),
}

fn snippet_suffix(snippet: &str) -> String {
    if snippet.is_empty() {
        String::new()
    } else {
        format!("\n    | {snippet}")
    }
}

fn file_prefix(file: &Option<String>) -> String {
    file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default()
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ArchError {
    ArchError::Invalid {
        file: None,
        path: path.into(),
        message: message.into(),
    }
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// What technology a storage level is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Off-chip DRAM (generic).
    Dram,
    /// High-bandwidth memory stacks.
    Hbm,
    /// On-chip SRAM (buffers, caches, shared memory).
    Sram,
    /// Register file.
    Regfile,
    /// NAND flash / SSD.
    Flash,
    /// DDR DIMMs.
    Ddr,
}

/// Energy per access of `per_bits` bits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEnergy {
    /// Energy of one read access.
    pub read: Energy,
    /// Energy of one write access.
    pub write: Energy,
    /// Bits moved by one access.
    pub per_bits: u32,
}

impl AccessEnergy {
    /// Read energy per bit, in joules.
    pub fn read_per_bit(&self) -> f64 {
        self.read.joules() / f64::from(self.per_bits)
    }

    /// Write energy per bit, in joules.
    pub fn write_per_bit(&self) -> f64 {
        self.write.joules() / f64::from(self.per_bits)
    }

    /// Read energy per byte, in joules.
    pub fn read_per_byte(&self) -> f64 {
        8.0 * self.read_per_bit()
    }

    /// Write energy per byte, in joules.
    pub fn write_per_byte(&self) -> f64 {
        8.0 * self.write_per_bit()
    }
}

/// One level of the memory hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageLevel {
    /// Unique level name, e.g. `"global_buffer"`.
    pub name: String,
    /// Technology.
    pub kind: StorageKind,
    /// Capacity of *one instance*; `None` = unbounded (e.g. DRAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Bytes>,
    /// Number of identical instances (e.g. one register file per PE). Default 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub instances: u32,
    /// Access width in bits.
    pub width_bits: u32,
    /// Banks per instance. Default 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub banks: u32,
    /// Aggregate read bandwidth of the level; `None` = not modelled as a bottleneck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_bandwidth: Option<Bandwidth>,
    /// Aggregate write bandwidth of the level; `None` = not modelled as a bottleneck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_bandwidth: Option<Bandwidth>,
    /// When true, reads and writes share one budget: transfer time is
    /// `(read_bytes + write_bytes) / read_bandwidth` (the FuseMax artifact's DRAM model).
    /// When false (default), reads and writes are bounded independently.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bandwidth_shared: bool,
    /// Access energies.
    pub energy: AccessEnergy,
}

impl StorageLevel {
    /// Total capacity over all instances in bytes; `None` if unbounded.
    pub fn total_capacity_bytes(&self) -> Option<f64> {
        self.capacity.map(|c| c.bytes() * f64::from(self.instances))
    }

    /// Seconds to move `read_bytes` and `write_bytes` through this level's bandwidth limits
    /// (0 where a bandwidth is unset). Honors [`StorageLevel::bandwidth_shared`].
    pub fn transfer_seconds(&self, read_bytes: f64, write_bytes: f64) -> f64 {
        let t = |bw: Option<Bandwidth>, bytes: f64| bw.map_or(0.0, |b| bytes / b.bytes_per_s());
        if self.bandwidth_shared {
            t(
                self.read_bandwidth.or(self.write_bandwidth),
                read_bytes + write_bytes,
            )
        } else {
            t(self.read_bandwidth, read_bytes).max(t(self.write_bandwidth, write_bytes))
        }
    }

    /// Per-instance capacity in bytes; `None` if unbounded.
    pub fn capacity_bytes(&self) -> Option<f64> {
        self.capacity.map(Bytes::bytes)
    }
}

/// Spatial shape of a compute unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ComputeShape {
    /// `rows × cols` processing elements.
    Array2d {
        /// Rows.
        rows: u32,
        /// Columns.
        cols: u32,
    },
    /// `len` processing elements in a line.
    Array1d {
        /// Length.
        len: u32,
    },
}

impl ComputeShape {
    /// Number of processing elements.
    pub fn pes(&self) -> u64 {
        match *self {
            ComputeShape::Array2d { rows, cols } => u64::from(rows) * u64::from(cols),
            ComputeShape::Array1d { len } => u64::from(len),
        }
    }
}

/// Cost of one operation on one PE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpCost {
    /// Cycles one PE is busy per operation (≥ 1; a PE issues one op per `cycles`).
    pub cycles: u32,
    /// Energy per operation.
    pub energy: Energy,
}

/// An array of processing elements and the operations it supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeUnit {
    /// Unique unit name, e.g. `"pe2d"`.
    pub name: String,
    /// Spatial shape.
    pub shape: ComputeShape,
    /// Supported ops (keys such as `mac`, `add`, `sub`, `mul`, `max`, `exp`, `div`) and their cost.
    pub ops: BTreeMap<String, OpCost>,
    /// Op chains that issue as one pipelined operation, written `"producer>consumer"`:
    /// `"sub>exp"` means an `exp(a - b)` costs the exp's cycles only (the subtraction
    /// rides in the function unit's pipeline; its energy is still spent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<String>,
}

impl ComputeUnit {
    /// Number of processing elements.
    pub fn pes(&self) -> u64 {
        self.shape.pes()
    }

    /// Whether this unit can execute `op`.
    pub fn supports(&self, op: &str) -> bool {
        self.ops.contains_key(op)
    }

    /// The cost of `op`, if supported.
    pub fn op(&self, op: &str) -> Option<&OpCost> {
        self.ops.get(op)
    }
}

/// A transfer path between two storage levels (optional detail beyond level bandwidths).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Link name.
    pub name: String,
    /// Source level name.
    pub from: String,
    /// Destination level name.
    pub to: String,
    /// Bandwidth.
    pub bandwidth: Bandwidth,
    /// Fixed latency per transfer, if modelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Duration>,
}

/// DRAM timing parameters in memory-clock cycles (tCK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HbmTiming {
    /// CAS latency.
    pub cl: u32,
    /// Row-to-column delay.
    pub rcd: u32,
    /// Row precharge.
    pub rp: u32,
    /// Row active time.
    pub ras: u32,
    /// Row cycle time.
    pub rc: u32,
    /// Write recovery.
    pub wr: u32,
}

/// GPU-specific figures (SMs, tensor-core throughput, caches, latencies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Tensor cores per SM.
    pub tensor_cores_per_sm: u32,
    /// Maximum boost clock.
    pub clock_boost: Frequency,
    /// Clock sustained under tensor-core load.
    pub clock_sustained: Frequency,
    /// Dense FLOP per clock per SM by datatype (`bf16`, `fp16`, `fp8`, `tf32`, `fp32_fma`).
    pub tensor_flops_per_clk_per_sm: BTreeMap<String, f64>,
    /// Register file per SM.
    pub registers_per_sm: Bytes,
    /// Shared memory per SM.
    pub smem_per_sm: Bytes,
    /// Largest shared-memory allocation per thread block.
    pub smem_per_block_max: Bytes,
    /// L2 cache size.
    pub l2: Bytes,
    /// L2 bandwidth.
    pub l2_bandwidth: Bandwidth,
    /// HBM capacity.
    pub hbm: Bytes,
    /// HBM bandwidth.
    pub hbm_bandwidth: Bandwidth,
    /// HBM stacks.
    pub hbm_stacks: u32,
    /// HBM memory controllers / channels.
    pub hbm_channels: u32,
    /// HBM timing, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hbm_timing: Option<HbmTiming>,
    /// L2 hit latency in core cycles.
    pub l2_latency_cycles: u32,
    /// DRAM latency in core cycles, on top of the L2 latency.
    pub dram_latency_cycles: u32,
    /// Shared-memory latency in core cycles.
    pub smem_latency_cycles: u32,
    /// Kernel launch overhead.
    pub launch_overhead: Duration,
    /// Maximum resident thread blocks per SM.
    pub max_ctas_per_sm: u32,
    /// Maximum resident threads per SM.
    pub max_threads_per_sm: u32,
}

impl GpuSpec {
    /// Peak dense FLOP/s for `dtype` at the sustained clock, if known.
    pub fn peak_flops(&self, dtype: &str) -> Option<f64> {
        self.tensor_flops_per_clk_per_sm
            .get(dtype)
            .map(|f| f * f64::from(self.sms) * self.clock_sustained.hz())
    }
}

/// A complete accelerator or GPU description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Short name, e.g. `"fusemax"`.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Citation for the figures.
    pub source: String,
    /// Core clock.
    pub clock: Frequency,
    /// Default datatype width in bits.
    pub word_bits: u32,
    /// Storage levels, outermost (DRAM/HBM) first, innermost (register file) last.
    pub levels: Vec<StorageLevel>,
    /// Compute units.
    pub compute: Vec<ComputeUnit>,
    /// Optional explicit links between levels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// GPU-specific figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSpec>,
}

/// Converts a byte offset into 1-based (line, column-in-chars) and returns the line's text.
fn line_col(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("").trim_end();
    (line, col, line_text.to_string())
}

impl Architecture {
    /// Parses TOML text and validates it. `file_name` is used in error messages only.
    pub fn from_toml_str(text: &str, file_name: &str) -> Result<Self, ArchError> {
        let arch: Architecture = toml::from_str(text).map_err(|e| {
            let (line, col, snippet) = match e.span() {
                Some(span) => line_col(text, span.start),
                None => (0, 0, String::new()),
            };
            ArchError::Parse {
                file: file_name.to_string(),
                line,
                col,
                message: e.message().trim().to_string(),
                snippet,
            }
        })?;
        arch.validate().map_err(|e| match e {
            ArchError::Invalid { path, message, .. } => ArchError::Invalid {
                file: Some(file_name.to_string()),
                path,
                message,
            },
            other => other,
        })?;
        Ok(arch)
    }

    /// Reads, parses and validates a TOML file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ArchError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ArchError::Io {
            file: file.clone(),
            source,
        })?;
        Self::from_toml_str(&text, &file)
    }

    /// Serializes to TOML; the output re-loads to an equal `Architecture`.
    pub fn to_toml_string(&self) -> Result<String, ArchError> {
        toml::to_string(self).map_err(|e| ArchError::Serialize(e.to_string()))
    }

    /// Checks the semantic rules; errors name the field path.
    pub fn validate(&self) -> Result<(), ArchError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if !positive(self.clock.hz()) {
            return Err(invalid("clock", "must be > 0"));
        }
        if self.word_bits == 0 {
            return Err(invalid("word_bits", "must be > 0"));
        }
        if self.levels.is_empty() {
            return Err(invalid("levels", "at least one storage level is required"));
        }
        let mut names = BTreeSet::new();
        for (i, level) in self.levels.iter().enumerate() {
            let p = format!("levels[{i}] ({})", level.name);
            if level.name.trim().is_empty() {
                return Err(invalid(format!("levels[{i}].name"), "must not be empty"));
            }
            if !names.insert(level.name.as_str()) {
                return Err(invalid(
                    format!("{p}.name"),
                    format!("duplicate level name \"{}\"", level.name),
                ));
            }
            if let Some(c) = level.capacity {
                if !positive(c.bytes()) {
                    return Err(invalid(format!("{p}.capacity"), "must be > 0"));
                }
            }
            for (field, v) in [
                ("instances", level.instances),
                ("width_bits", level.width_bits),
                ("banks", level.banks),
                ("energy.per_bits", level.energy.per_bits),
            ] {
                if v == 0 {
                    return Err(invalid(format!("{p}.{field}"), "must be > 0"));
                }
            }
            if level.bandwidth_shared && level.read_bandwidth.is_none() {
                return Err(invalid(
                    format!("{p}.bandwidth_shared"),
                    "requires read_bandwidth (the shared budget)",
                ));
            }
            for (field, bw) in [
                ("read_bandwidth", level.read_bandwidth),
                ("write_bandwidth", level.write_bandwidth),
            ] {
                if let Some(bw) = bw {
                    if !positive(bw.bytes_per_s()) {
                        return Err(invalid(format!("{p}.{field}"), "must be > 0"));
                    }
                }
            }
        }
        if self.compute.is_empty() {
            return Err(invalid("compute", "at least one compute unit is required"));
        }
        let mut unit_names = BTreeSet::new();
        for (i, unit) in self.compute.iter().enumerate() {
            let p = format!("compute[{i}] ({})", unit.name);
            if !unit_names.insert(unit.name.as_str()) {
                return Err(invalid(
                    format!("{p}.name"),
                    format!("duplicate compute unit name \"{}\"", unit.name),
                ));
            }
            match unit.shape {
                ComputeShape::Array2d { rows, cols } => {
                    if rows == 0 {
                        return Err(invalid(format!("{p}.shape.rows"), "must be > 0"));
                    }
                    if cols == 0 {
                        return Err(invalid(format!("{p}.shape.cols"), "must be > 0"));
                    }
                }
                ComputeShape::Array1d { len } => {
                    if len == 0 {
                        return Err(invalid(format!("{p}.shape.len"), "must be > 0"));
                    }
                }
            }
            if unit.ops.is_empty() {
                return Err(invalid(format!("{p}.ops"), "at least one op is required"));
            }
            for (op, cost) in &unit.ops {
                if cost.cycles == 0 {
                    return Err(invalid(format!("{p}.ops.{op}.cycles"), "must be >= 1"));
                }
            }
            for (k, chain) in unit.chains.iter().enumerate() {
                let ok = chain
                    .split_once('>')
                    .is_some_and(|(a, b)| unit.ops.contains_key(a) && unit.ops.contains_key(b));
                if !ok {
                    return Err(invalid(
                        format!("{p}.chains[{k}]"),
                        format!("\"{chain}\" must be \"op>op\" over ops this unit supports"),
                    ));
                }
            }
        }
        for (i, link) in self.links.iter().enumerate() {
            let p = format!("links[{i}] ({})", link.name);
            for (field, level) in [("from", &link.from), ("to", &link.to)] {
                if self.level(level).is_none() {
                    return Err(invalid(
                        format!("{p}.{field}"),
                        format!("no storage level named \"{level}\""),
                    ));
                }
            }
            if !positive(link.bandwidth.bytes_per_s()) {
                return Err(invalid(format!("{p}.bandwidth"), "must be > 0"));
            }
        }
        if let Some(gpu) = &self.gpu {
            for (field, v) in [
                ("sms", gpu.sms),
                ("tensor_cores_per_sm", gpu.tensor_cores_per_sm),
                ("hbm_stacks", gpu.hbm_stacks),
                ("hbm_channels", gpu.hbm_channels),
                ("max_ctas_per_sm", gpu.max_ctas_per_sm),
                ("max_threads_per_sm", gpu.max_threads_per_sm),
            ] {
                if v == 0 {
                    return Err(invalid(format!("gpu.{field}"), "must be > 0"));
                }
            }
            for (dtype, f) in &gpu.tensor_flops_per_clk_per_sm {
                if !positive(*f) {
                    return Err(invalid(
                        format!("gpu.tensor_flops_per_clk_per_sm.{dtype}"),
                        "must be finite and > 0",
                    ));
                }
            }
            if gpu.smem_per_block_max.bytes() > gpu.smem_per_sm.bytes() {
                return Err(invalid(
                    "gpu.smem_per_block_max",
                    "must not exceed gpu.smem_per_sm",
                ));
            }
        }
        Ok(())
    }

    /// The storage level named `name`.
    pub fn level(&self, name: &str) -> Option<&StorageLevel> {
        self.levels.iter().find(|l| l.name == name)
    }

    /// Index of the level named `name` (0 = outermost).
    pub fn level_index(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.name == name)
    }

    /// The outermost level (DRAM/HBM). Panics if `levels` is empty, which `validate` rejects.
    pub fn dram(&self) -> &StorageLevel {
        self.levels
            .first()
            .expect("architecture has no storage levels")
    }

    /// The innermost level (register file). Panics if `levels` is empty.
    pub fn innermost(&self) -> &StorageLevel {
        self.levels
            .last()
            .expect("architecture has no storage levels")
    }

    /// The compute unit named `name`.
    pub fn compute_unit(&self, name: &str) -> Option<&ComputeUnit> {
        self.compute.iter().find(|u| u.name == name)
    }

    /// Peak throughput of `op` on `unit` in ops/s: `pes × clock / cycles`. `None` if the unit does
    /// not exist or does not support the op.
    pub fn peak_ops_per_s(&self, unit: &str, op: &str) -> Option<f64> {
        let unit = self.compute_unit(unit)?;
        let cost = unit.op(op)?;
        Some(unit.pes() as f64 * self.clock.hz() / f64::from(cost.cycles))
    }

    /// Seconds for `cycles` core cycles at [`Architecture::clock`].
    pub fn cycles_to_seconds(&self, cycles: f64) -> f64 {
        self.clock.cycles_to_seconds(cycles)
    }
}
