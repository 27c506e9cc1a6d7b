//! The architecture specification: a tree of storage levels (outermost first), compute units
//! hanging under levels, per-tensor word sizes and, for GPUs, a [`GpuSpec`]. Loaded from TOML
//! with every unknown field rejected, then [`Architecture::validate`]d; every error names the
//! file and the line:column of the offending field.
//!
//! The general core's vocabulary (Timeloop's, with FuseMax's compute units):
//! * a **level** stores tiles of tensors; it has `fanout` instances per instance of its
//!   `parent` (up to three dimensions, which spatial loops of a mapping unroll over), a
//!   capacity per instance, the tensors it may `hold`, ports (access width, read/write
//!   bandwidth, shared or separate) and an energy per action (read, fill, update);
//! * a **compute unit** hangs under a level, with `fanout` processing elements per instance
//!   of it, and the operations it supports with their cycles and energy.
//!
//! Nothing here names "DRAM", "global buffer" or "register file": they are levels.

use crate::locate::{line_col, locate};
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
    /// A TOML syntax error, unknown field, wrong type or bad unit string, or a semantic error
    /// located in the file.
    #[error("{file}:{line}:{col}: {message}{}", snippet_suffix(snippet))]
    Parse {
        /// The file name given to the loader.
        file: String,
        /// 1-based line of the offending text (0 if unknown).
        line: usize,
        /// 1-based column (in characters) of the offending text (0 if unknown).
        col: usize,
        /// The message, e.g. ``unknown field `bandwith`, expected ...``.
        message: String,
        /// The offending source line.
        snippet: String,
    },
    /// A semantic check failed; `path` names the field, e.g. `levels[1] (glb).fanout`.
    #[error("{}{path}: {message}", file_prefix(file))]
    Invalid {
        /// The file, when the architecture came from one and the field could not be located.
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

/// A semantic error at a field path. `locator` is the machine path (`levels[1].fanout`) used to
/// find the field in the source; `shown` the path shown to the user.
fn invalid(shown: impl Into<String>, message: impl Into<String>) -> ArchError {
    ArchError::Invalid {
        file: None,
        path: shown.into(),
        message: message.into(),
    }
}

fn yes() -> bool {
    true
}

fn is_true(v: &bool) -> bool {
    *v
}

fn unit_fanout() -> Vec<u32> {
    vec![1]
}

fn is_unit_fanout(v: &[u32]) -> bool {
    v.iter().all(|&x| x == 1)
}

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// The technology a storage level is built from. Off-chip technologies (DRAM, HBM, DDR, flash)
/// are what reports total as off-chip traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Off-chip DRAM (generic).
    Dram,
    /// High-bandwidth memory stacks.
    Hbm,
    /// DDR DIMMs.
    Ddr,
    /// NAND flash / SSD.
    Flash,
    /// On-chip SRAM (buffers, caches, scratchpads).
    Sram,
    /// Register file.
    Regfile,
}

impl StorageKind {
    /// Whether the level is off chip (its traffic is reported as off-chip traffic).
    pub fn off_chip(self) -> bool {
        matches!(
            self,
            StorageKind::Dram | StorageKind::Hbm | StorageKind::Ddr | StorageKind::Flash
        )
    }
}

/// Energy per action of a storage level, each for one access of the level's port width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelEnergy {
    /// One read access (`width_bits` bits) — data sent to a child level or a compute unit.
    pub read: Energy,
    /// One write access (`write_width_bits` bits): the energy of fills and updates unless
    /// they are given separately.
    pub write: Energy,
    /// One fill (data arriving from the parent level); default `write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<Energy>,
    /// One update (a partial or final result arriving from a child or a compute unit);
    /// default `write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Energy>,
}

impl LevelEnergy {
    /// Energy of one fill.
    pub fn fill(&self) -> Energy {
        self.fill.unwrap_or(self.write)
    }
    /// Energy of one update.
    pub fn update(&self) -> Energy {
        self.update.unwrap_or(self.write)
    }
}

/// One storage level of the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageLevel {
    /// Unique level name, e.g. `"glb"`.
    pub name: String,
    /// Technology.
    pub kind: StorageKind,
    /// The level above this one; default: the previous level in the list (a chain). The first
    /// level is the root: it has no parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Instances of this level per instance of its parent, as up to three spatial dimensions
    /// (e.g. `[16, 16]` register files under one buffer). Default `[1]`.
    #[serde(default = "unit_fanout", skip_serializing_if = "is_unit_fanout")]
    pub fanout: Vec<u32>,
    /// Capacity of one instance; unset = unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Bytes>,
    /// Tensors this level may keep: tensor names (upper case, as in the cascade) and/or the
    /// roles `inputs`, `intermediates`, `outputs`. Unset = any tensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds: Option<Vec<String>>,
    /// Bits per read access (the read port's width); energies are per access.
    pub width_bits: u32,
    /// Bits per write access; default `width_bits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_width_bits: Option<u32>,
    /// Read bandwidth of one instance (a separate read port); unset = unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_bandwidth: Option<Bandwidth>,
    /// Write bandwidth of one instance (a separate write port); unset = unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_bandwidth: Option<Bandwidth>,
    /// Bandwidth of one instance's shared read-write port (reads and writes share it);
    /// excludes `read_bandwidth` and `write_bandwidth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// The memory technology and timing preset of an off-chip DRAM, HBM or DDR level
    /// (`arch/memory/<name>.toml`, see [`crate::memory`]): the cycle-level DRAM model reads
    /// its timing, and a level that gives no bandwidth takes the preset's peak (a bandwidth
    /// above the peak is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Whether the network below this level multicasts: one read serves every child instance
    /// that needs the same data at the same time. Default true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub multicast: bool,
    /// Whether the network below this level reduces partial sums of child instances before
    /// they update this level (spatial reduction). Default true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub spatial_reduction: bool,
    /// Energy per action.
    pub energy: LevelEnergy,
}

impl StorageLevel {
    /// Per-instance capacity in bytes; `None` if unbounded.
    pub fn capacity_bytes(&self) -> Option<f64> {
        self.capacity.map(Bytes::bytes)
    }
    /// Bits per write access.
    pub fn write_width(&self) -> u32 {
        self.write_width_bits.unwrap_or(self.width_bits)
    }
    /// Seconds one instance needs to read `read_bytes` and write `write_bytes` through its
    /// ports (0 where no bandwidth is set).
    pub fn transfer_seconds(&self, read_bytes: f64, write_bytes: f64) -> f64 {
        let t = |bw: Option<Bandwidth>, bytes: f64| bw.map_or(0.0, |b| bytes / b.bytes_per_s());
        match self.bandwidth {
            Some(shared) => (read_bytes + write_bytes) / shared.bytes_per_s(),
            None => t(self.read_bandwidth, read_bytes).max(t(self.write_bandwidth, write_bytes)),
        }
    }
}

/// Cost of one operation on one processing element.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpCost {
    /// Cycles one PE is busy per operation (≥ 1; a PE issues one op per `cycles`).
    pub cycles: u32,
    /// Energy per operation.
    pub energy: Energy,
}

/// Processing elements under a storage level and the operations they support.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeUnit {
    /// Unique unit name, e.g. `"pe2d"`.
    pub name: String,
    /// The storage level the PEs hang under; default: the last level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// PEs per instance of that level, as up to three spatial dimensions. Default `[1]`.
    #[serde(default = "unit_fanout", skip_serializing_if = "is_unit_fanout")]
    pub fanout: Vec<u32>,
    /// Supported ops (keys such as `mac`, `add`, `sub`, `mul`, `max`, `exp`, `div`, `cmp`) and
    /// their cost.
    pub ops: BTreeMap<String, OpCost>,
    /// Op chains that issue as one pipelined operation, written `"producer>consumer"`:
    /// `"sub>exp"` means an `exp(a - b)` costs the exp's cycles only (the subtraction
    /// rides in the function unit's pipeline; its energy is still spent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<String>,
}

impl ComputeUnit {
    /// Whether this unit can execute `op`.
    pub fn supports(&self, op: &str) -> bool {
        self.ops.contains_key(op)
    }
    /// The cost of `op`, if supported.
    pub fn op(&self, op: &str) -> Option<&OpCost> {
        self.ops.get(op)
    }
}

/// Word sizes in bits by tensor role (and by tensor name). Unset sizes come from the workload's
/// precision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precision {
    /// Every tensor, unless a role or name below says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<u32>,
    /// Tensors that Einsums read (inputs and intermediates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operands: Option<u32>,
    /// A result wherever its reduction is not yet complete (partial sums).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_sums: Option<u32>,
    /// A cascade output once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<u32>,
    /// By tensor name (upper case, as in the cascade); overrides the roles except partial sums.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tensors: BTreeMap<String, u32>,
}

impl Precision {
    fn is_default(&self) -> bool {
        *self == Precision::default()
    }
}

/// Ceilings measured on a GPU ([`GpuSpec::measured_ceilings`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredCeilings {
    /// bf16 GEMM 8192×8192×8192 through cuBLAS on random data, TFLOP/s.
    pub gemm_bf16_8192_tflops: f64,
    /// Device-to-device copy, counting bytes read and written.
    pub copy: Bandwidth,
    /// bf16 GEMM 8191×8191×8191 through cuBLAS, TFLOP/s: no leading dimension is 16-byte
    /// aligned, so cuBLAS runs its `align1` kernel with 2-byte loads. Sets the rate at which L2
    /// serves warp-wide requests (the models' bound on narrow loads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemm_bf16_align1_8191_tflops: Option<f64>,
}

/// GPU-specific figures (SMs, tensor-core throughput, caches, latencies), read by the GPU
/// models (`sim/gpu`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Streaming multiprocessors.
    pub sms: u32,
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
    /// HBM capacity: an operation whose tensors do not fit is refused.
    pub hbm: Bytes,
    /// HBM bandwidth.
    pub hbm_bandwidth: Bandwidth,
    /// HBM memory controllers / channels.
    pub hbm_channels: u32,
    /// L2 hit latency in core cycles.
    pub l2_latency_cycles: u32,
    /// DRAM latency in core cycles, on top of the L2 latency.
    pub dram_latency_cycles: u32,
    /// Kernel launch overhead: what each kernel of an op adds (for eager PyTorch, the gap the
    /// host's dispatch leaves between consecutive kernels).
    pub launch_overhead: Duration,
    /// Once per op, on top of its kernels: the start of a lone op timed by events around it
    /// (event to first kernel, last kernel to event). Absent: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_start: Option<Duration>,
    /// What each kernel adds when a CUDA graph replays a chain of kernels (`cascade infer`'s
    /// decode steps, which serving frameworks capture in graphs). Absent: `launch_overhead`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_launch: Option<Duration>,
    /// Host time eager PyTorch spends per kernel it launches (Python, dispatch, the view ops
    /// between kernels): `cascade infer`'s eager (prefill) steps issue kernels no faster. Absent:
    /// the host is never the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eager_dispatch: Option<Duration>,
    /// What a kernel of `wgmma` main loops (cuBLAS's and cuDNN's Hopper kernels: TMA
    /// descriptors, cluster launch, barrier set-up, warp-specialized roles) takes to start
    /// beyond a plain kernel's `launch_overhead`. Absent: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wgmma_kernel_start: Option<Duration>,
    /// Dirty bytes in L2 when an op starts: the lines a preceding kernel wrote and L2 has not
    /// yet written back. The op's HBM reads evict them, so their write-back shares HBM with the
    /// op's own traffic. The measurement protocol's 512 MiB overwrite leaves L2 in this state.
    /// Absent: 0 (an L2 that holds no dirty lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_dirty_at_op_start: Option<Bytes>,
    /// Ceilings measured on this GPU (a large cuBLAS GEMM and a device-to-device copy, in the
    /// run whose truths the model is compared with): the models' achievable rates are
    /// calibrated to reproduce them. Absent: the recorded H100 calibration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_ceilings: Option<MeasuredCeilings>,
    /// Maximum resident thread blocks per SM.
    pub max_ctas_per_sm: u32,
    /// Maximum resident threads per SM.
    pub max_threads_per_sm: u32,
    /// The DRAM timing preset of the root (HBM) level, `levels[0].memory`: the GPU models
    /// take their achievable HBM rates from the cycle-level DRAM model on it. Not a field of
    /// `[gpu]`: filled in from the level when the architecture is read.
    #[serde(skip)]
    pub memory: Option<String>,
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
    /// Word sizes by tensor role; unset ones come from the workload.
    #[serde(default, skip_serializing_if = "Precision::is_default")]
    pub precision: Precision,
    /// Storage levels, outermost (the root) first; each level's parent comes before it.
    pub levels: Vec<StorageLevel>,
    /// Compute units.
    pub compute: Vec<ComputeUnit>,
    /// GPU-specific figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSpec>,
    /// The link that joins several of these devices (a preset of `arch/links/`, see
    /// [`crate::link`]): `cascade infer --devices N` sends its collectives over it. Absent: the
    /// device runs alone unless a link is given on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interconnect: Option<String>,
    /// Processing in memory beside the xPU (Duplex): the PIM units on the device's memory and how
    /// the work is shared between them and the xPU. Needs a `[gpu]` section (the xPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pim: Option<PimSpec>,
}

/// The PIM side of a device (Duplex, MICRO'24): processing units on (or in) the device's memory
/// stacks, themselves an architecture (levels and compute units, read by the spatial mapper)
/// whose root level names the DRAM path they read (`arch/memory/`), co-processing with the
/// xPU described by `[gpu]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PimSpec {
    /// The PIM units: a PIM preset (`logic_pim`, `bankgroup_pim`, `bank_pim`).
    pub arch: String,
    /// Run the xPU and the PIM units at the same time where Duplex does (the experts of an MoE
    /// layer split between them; decode attention on PIM beside prefill attention on the xPU),
    /// sharing the memory's bandwidth; `false`: each op on whichever is faster, one at a time.
    #[serde(default = "default_true")]
    pub coprocess: bool,
}

fn default_true() -> bool {
    true
}

/// The PIM presets a `[pim]` section may name.
pub const PIM_PRESETS: [&str; 3] = ["logic_pim", "bankgroup_pim", "bank_pim"];

/// The tensor roles a level's `holds` may name.
pub const ROLES: [&str; 3] = ["inputs", "intermediates", "outputs"];

/// Largest word size accepted (bits).
pub const MAX_WORD_BITS: u32 = 1024;

/// Most instances of a level, or PEs of a unit, in a whole architecture (2^40).
pub const MAX_INSTANCES: u64 = 1 << 40;

impl Architecture {
    /// Parses TOML text and validates it. `file_name` is used in error messages only; semantic
    /// errors are located at the field they name.
    pub fn from_toml_str(text: &str, file_name: &str) -> Result<Self, ArchError> {
        let arch: Architecture =
            toml::from_str(text).map_err(|e| parse_error(&e, text, file_name))?;
        arch.check()
            .map_err(|(locator, e)| locate_error(e, &locator, text, file_name))?;
        let mut arch = arch;
        arch.resolve_memory();
        Ok(arch)
    }

    /// Levels that name a memory preset and give no bandwidth take the preset's peak; a GPU
    /// takes its root level's preset as `gpu.memory`.
    fn resolve_memory(&mut self) {
        if let Some(gpu) = &mut self.gpu {
            gpu.memory = self.levels.first().and_then(|l| l.memory.clone());
        }
        for level in &mut self.levels {
            if let Some(name) = &level.memory {
                let none = level.bandwidth.is_none()
                    && level.read_bandwidth.is_none()
                    && level.write_bandwidth.is_none();
                if none {
                    level.bandwidth = crate::memory::peak_bandwidth(name)
                        .ok()
                        .and_then(|p| Bandwidth::new(p).ok());
                }
            }
        }
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
        self.check().map_err(|(_, e)| e)
    }

    /// The checks, each error with the machine path of its field (to locate it in a file).
    fn check(&self) -> Result<(), (String, ArchError)> {
        let fail =
            |locator: String, shown: String, msg: String| Err((locator, invalid(shown, msg)));
        if self.name.trim().is_empty() {
            return fail("name".into(), "name".into(), "must not be empty".into());
        }
        if !positive(self.clock.hz()) {
            return fail("clock".into(), "clock".into(), "must be > 0".into());
        }
        let p = &self.precision;
        for (field, v) in [
            ("default", p.default),
            ("operands", p.operands),
            ("partial_sums", p.partial_sums),
            ("outputs", p.outputs),
        ] {
            if let Some(v) = v {
                if v == 0 || v > MAX_WORD_BITS {
                    let f = format!("precision.{field}");
                    return fail(
                        f.clone(),
                        f,
                        format!("must be 1..={MAX_WORD_BITS} bits, got {v}"),
                    );
                }
            }
        }
        for (t, &v) in &p.tensors {
            if v == 0 || v > MAX_WORD_BITS {
                let f = format!("precision.tensors.{t}");
                return fail(
                    f.clone(),
                    f,
                    format!("must be 1..={MAX_WORD_BITS} bits, got {v}"),
                );
            }
        }
        if let Some(name) = &self.interconnect {
            if !crate::link::PRESETS.iter().any(|p| p.0 == name) {
                return fail(
                    "interconnect".into(),
                    "interconnect".into(),
                    format!(
                        "no link preset `{name}` (presets: {})",
                        crate::link::names()
                    ),
                );
            }
        }
        if self.levels.is_empty() {
            return fail(
                "levels".into(),
                "levels".into(),
                "at least one storage level is required".into(),
            );
        }
        let mut names = BTreeSet::new();
        for (i, level) in self.levels.iter().enumerate() {
            let shown = |f: &str| format!("levels[{i}] ({}).{f}", level.name);
            let loc = |f: &str| format!("levels[{i}].{f}");
            if level.name.trim().is_empty() {
                return fail(
                    loc("name"),
                    format!("levels[{i}].name"),
                    "must not be empty".into(),
                );
            }
            if !names.insert(level.name.as_str()) {
                return fail(
                    loc("name"),
                    shown("name"),
                    format!("duplicate level name \"{}\"", level.name),
                );
            }
            match (i, &level.parent) {
                (0, Some(_)) => {
                    return fail(
                        loc("parent"),
                        shown("parent"),
                        "the first level is the root of the tree: it has no parent".into(),
                    )
                }
                (_, Some(parent)) if !self.levels[..i].iter().any(|l| &l.name == parent) => {
                    let msg = if self.levels.iter().any(|l| &l.name == parent) {
                        format!("parent \"{parent}\" must be listed before this level (levels go outermost first)")
                    } else {
                        format!("no storage level named \"{parent}\"")
                    };
                    return fail(loc("parent"), shown("parent"), msg);
                }
                _ => {}
            }
            check_fanout(&level.fanout)
                .map_err(|m| (loc("fanout"), invalid(shown("fanout"), m)))?;
            if i == 0 && !is_unit_fanout(&level.fanout) {
                return fail(
                    loc("fanout"),
                    shown("fanout"),
                    "the root level has no parent to fan out from: its fanout must be [1]".into(),
                );
            }
            if let Some(c) = level.capacity {
                if !positive(c.bytes()) {
                    return fail(loc("capacity"), shown("capacity"), "must be > 0".into());
                }
            }
            if level.width_bits == 0 {
                return fail(loc("width_bits"), shown("width_bits"), "must be > 0".into());
            }
            if level.write_width_bits == Some(0) {
                return fail(
                    loc("write_width_bits"),
                    shown("write_width_bits"),
                    "must be > 0".into(),
                );
            }
            if level.bandwidth.is_some()
                && (level.read_bandwidth.is_some() || level.write_bandwidth.is_some())
            {
                let f = if level.read_bandwidth.is_some() {
                    "read_bandwidth"
                } else {
                    "write_bandwidth"
                };
                return fail(
                    loc(f),
                    shown(f),
                    "give either `bandwidth` (one shared read-write port) or `read_bandwidth`/`write_bandwidth` (separate ports), not both".into(),
                );
            }
            if let Some(name) = &level.memory {
                if !matches!(
                    level.kind,
                    StorageKind::Dram | StorageKind::Hbm | StorageKind::Ddr
                ) {
                    return fail(
                        loc("memory"),
                        shown("memory"),
                        format!(
                            "names a DRAM timing preset, for a `dram`, `hbm` or `ddr` level; this level is `{}`",
                            format!("{:?}", level.kind).to_lowercase()
                        ),
                    );
                }
                let peak = crate::memory::peak_bandwidth(name)
                    .map_err(|m| (loc("memory"), invalid(shown("memory"), m)))?;
                for (f, b) in [
                    ("bandwidth", level.bandwidth),
                    ("read_bandwidth", level.read_bandwidth),
                    ("write_bandwidth", level.write_bandwidth),
                ] {
                    if let Some(b) = b {
                        if b.bytes_per_s() > peak * (1.0 + 1e-9) {
                            return fail(
                                loc(f),
                                shown(f),
                                format!(
                                    "{b} exceeds the peak of memory preset `{name}` ({})",
                                    Bandwidth::new(peak)
                                        .map_or(format!("{peak} B/s"), |p| p.to_string())
                                ),
                            );
                        }
                    }
                }
            }
            if let Some(holds) = &level.holds {
                let mut seen = BTreeSet::new();
                for (k, h) in holds.iter().enumerate() {
                    let f = format!("holds[{k}]");
                    if h.trim().is_empty() {
                        return fail(loc(&f), shown(&f), "must not be empty".into());
                    }
                    if !seen.insert(h.as_str()) {
                        return fail(loc(&f), shown(&f), format!("\"{h}\" is listed twice"));
                    }
                    let lower = h.chars().all(|c| !c.is_ascii_uppercase());
                    if lower && !ROLES.contains(&h.as_str()) {
                        return fail(
                            loc(&f),
                            shown(&f),
                            format!(
                                "\"{h}\" is neither a role ({}) nor a tensor name (tensor names are upper case)",
                                ROLES.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        // Instances multiply down the tree: keep every count exact in an f64 and far from
        // overflow (a model multiplies them by traffic and energy per access).
        let mut count = vec![1u64; self.levels.len()];
        for (i, level) in self.levels.iter().enumerate() {
            let parent = self.parent(i).map_or(1, |p| count[p]);
            match level
                .fanout
                .iter()
                .try_fold(parent, |n, &f| n.checked_mul(u64::from(f)))
                .filter(|&n| n <= MAX_INSTANCES)
            {
                Some(n) => count[i] = n,
                None => {
                    return fail(
                        format!("levels[{i}].fanout"),
                        format!("levels[{i}] ({}).fanout", level.name),
                        format!("the fanouts down to this level make more than 2^40 ({MAX_INSTANCES}) instances"),
                    )
                }
            }
        }
        if self.compute.is_empty() {
            return fail(
                "compute".into(),
                "compute".into(),
                "at least one compute unit is required".into(),
            );
        }
        let mut unit_names = BTreeSet::new();
        for (i, unit) in self.compute.iter().enumerate() {
            let shown = |f: &str| format!("compute[{i}] ({}).{f}", unit.name);
            let loc = |f: &str| format!("compute[{i}].{f}");
            if unit.name.trim().is_empty() {
                return fail(
                    loc("name"),
                    format!("compute[{i}].name"),
                    "must not be empty".into(),
                );
            }
            if !unit_names.insert(unit.name.as_str()) {
                return fail(
                    loc("name"),
                    shown("name"),
                    format!("duplicate compute unit name \"{}\"", unit.name),
                );
            }
            if let Some(level) = &unit.level {
                if self.level_index(level).is_none() {
                    return fail(
                        loc("level"),
                        shown("level"),
                        format!("no storage level named \"{level}\""),
                    );
                }
            }
            check_fanout(&unit.fanout).map_err(|m| (loc("fanout"), invalid(shown("fanout"), m)))?;
            let under = unit
                .level
                .as_deref()
                .and_then(|l| self.level_index(l))
                .unwrap_or(self.levels.len() - 1);
            let pes = unit
                .fanout
                .iter()
                .try_fold(count[under], |n, &f| n.checked_mul(u64::from(f)));
            if pes.is_none_or(|n| n > MAX_INSTANCES) {
                return fail(
                    loc("fanout"),
                    shown("fanout"),
                    format!(
                        "the fanouts down to this unit make more than 2^40 ({MAX_INSTANCES}) PEs"
                    ),
                );
            }
            if unit.ops.is_empty() {
                return fail(
                    loc("ops"),
                    shown("ops"),
                    "at least one op is required".into(),
                );
            }
            for (op, cost) in &unit.ops {
                if cost.cycles == 0 {
                    let f = format!("ops.{op}.cycles");
                    return fail(loc(&f), shown(&f), "must be >= 1".into());
                }
            }
            for (k, chain) in unit.chains.iter().enumerate() {
                let ok = chain
                    .split_once('>')
                    .is_some_and(|(a, b)| unit.ops.contains_key(a) && unit.ops.contains_key(b));
                if !ok {
                    let f = format!("chains[{k}]");
                    return fail(
                        loc(&f),
                        shown(&f),
                        format!("\"{chain}\" must be \"op>op\" over ops this unit supports"),
                    );
                }
            }
        }
        // Every level must lie on the path of some compute unit (it stores data for someone).
        let mut used = vec![false; self.levels.len()];
        for u in 0..self.compute.len() {
            for l in self.unit_path(u) {
                used[l] = true;
            }
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return fail(
                format!("levels[{i}].name"),
                format!("levels[{i}] ({})", self.levels[i].name),
                "feeds no compute unit: no unit hangs under it or under a level below it".into(),
            );
        }
        if let Some(pim) = &self.pim {
            if self.gpu.is_none() {
                return fail(
                    "pim".into(),
                    "pim".into(),
                    "needs a [gpu] section: the PIM units co-process with a GPU-like xPU".into(),
                );
            }
            if !PIM_PRESETS.contains(&pim.arch.as_str()) {
                return fail(
                    "pim.arch".into(),
                    "pim.arch".into(),
                    format!(
                        "no PIM preset `{}` (presets: {})",
                        pim.arch,
                        PIM_PRESETS.join(", ")
                    ),
                );
            }
        }
        if let Some(gpu) = &self.gpu {
            for (field, v) in [
                ("sms", gpu.sms),
                ("hbm_channels", gpu.hbm_channels),
                ("max_ctas_per_sm", gpu.max_ctas_per_sm),
                ("max_threads_per_sm", gpu.max_threads_per_sm),
            ] {
                if v == 0 {
                    let f = format!("gpu.{field}");
                    return fail(f.clone(), f, "must be > 0".into());
                }
            }
            for (dtype, f) in &gpu.tensor_flops_per_clk_per_sm {
                if !positive(*f) || *f > 1e9 {
                    let f = format!("gpu.tensor_flops_per_clk_per_sm.{dtype}");
                    return fail(
                        f.clone(),
                        f,
                        "must be finite, > 0 and at most 1e9 FLOP per clock per SM".into(),
                    );
                }
            }
            if let Some(m) = &gpu.measured_ceilings {
                let peak = gpu.peak_flops("bf16").unwrap_or(f64::INFINITY);
                let t = m.gemm_bf16_8192_tflops;
                if !positive(t) || t * 1e12 > peak {
                    let f = "gpu.measured_ceilings.gemm_bf16_8192_tflops".to_string();
                    return fail(
                        f.clone(),
                        f,
                        format!(
                            "must be finite, > 0 and at most the bf16 peak ({:.1} TFLOP/s)",
                            peak / 1e12
                        ),
                    );
                }
                if let Some(t) = m.gemm_bf16_align1_8191_tflops {
                    if !positive(t) || t * 1e12 > peak {
                        let f = "gpu.measured_ceilings.gemm_bf16_align1_8191_tflops".to_string();
                        return fail(
                            f.clone(),
                            f,
                            format!(
                                "must be finite, > 0 and at most the bf16 peak ({:.1} TFLOP/s)",
                                peak / 1e12
                            ),
                        );
                    }
                }
                if m.copy.bytes_per_s() > 2.0 * gpu.hbm_bandwidth.bytes_per_s() {
                    let f = "gpu.measured_ceilings.copy".to_string();
                    return fail(
                        f.clone(),
                        f,
                        "a copy moves at most twice gpu.hbm_bandwidth (reads plus writes)".into(),
                    );
                }
            }
            if let Some(d) = gpu.l2_dirty_at_op_start {
                if d.bytes() > gpu.l2.bytes() {
                    let f = "gpu.l2_dirty_at_op_start".to_string();
                    return fail(
                        f.clone(),
                        f,
                        "must not exceed gpu.l2 (the L2 capacity)".into(),
                    );
                }
            }
            if gpu.smem_per_block_max.bytes() > gpu.smem_per_sm.bytes() {
                return fail(
                    "gpu.smem_per_block_max".into(),
                    "gpu.smem_per_block_max".into(),
                    "must not exceed gpu.smem_per_sm".into(),
                );
            }
        }
        Ok(())
    }

    /// The storage level named `name`.
    pub fn level(&self, name: &str) -> Option<&StorageLevel> {
        self.levels.iter().find(|l| l.name == name)
    }

    /// Index of the level named `name` (0 = the root).
    pub fn level_index(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.name == name)
    }

    /// The parent of level `i` (`None` for the root). Assumes a validated architecture.
    pub fn parent(&self, i: usize) -> Option<usize> {
        if i == 0 {
            return None;
        }
        match &self.levels[i].parent {
            Some(p) => self.level_index(p),
            None => Some(i - 1),
        }
    }

    /// The root level (outermost; e.g. DRAM). Panics if `levels` is empty, which `validate`
    /// rejects.
    pub fn root(&self) -> &StorageLevel {
        self.levels
            .first()
            .expect("architecture has no storage levels")
    }

    /// The level compute unit `u` hangs under.
    pub fn unit_level(&self, u: usize) -> usize {
        match &self.compute[u].level {
            Some(l) => self.level_index(l).unwrap_or(self.levels.len() - 1),
            None => self.levels.len() - 1,
        }
    }

    /// Levels from the root down to the level unit `u` hangs under.
    pub fn unit_path(&self, u: usize) -> Vec<usize> {
        let mut path = vec![self.unit_level(u)];
        while let Some(p) = self.parent(*path.last().unwrap()) {
            if path.contains(&p) {
                break; // unreachable for a validated architecture
            }
            path.push(p);
        }
        path.reverse();
        path
    }

    /// Instances of level `i` in the whole architecture (product of the fanouts on its path).
    pub fn instances(&self, i: usize) -> u64 {
        let own: u64 = self.levels[i]
            .fanout
            .iter()
            .map(|&f| u64::from(f))
            .product();
        own * self.parent(i).map_or(1, |p| self.instances(p))
    }

    /// The compute unit named `name`.
    pub fn compute_unit(&self, name: &str) -> Option<&ComputeUnit> {
        self.compute.iter().find(|u| u.name == name)
    }

    /// Index of the compute unit named `name`.
    pub fn unit_index(&self, name: &str) -> Option<usize> {
        self.compute.iter().position(|u| u.name == name)
    }

    /// Processing elements of unit `u` in the whole architecture.
    pub fn unit_pes(&self, u: usize) -> u64 {
        let own: u64 = self.compute[u]
            .fanout
            .iter()
            .map(|&f| u64::from(f))
            .product();
        own * self.instances(self.unit_level(u))
    }

    /// Peak throughput of `op` on `unit` in ops/s: `PEs × clock / cycles`. `None` if the unit
    /// does not exist or does not support the op.
    pub fn peak_ops_per_s(&self, unit: &str, op: &str) -> Option<f64> {
        let u = self.unit_index(unit)?;
        let cost = self.compute[u].op(op)?;
        Some(self.unit_pes(u) as f64 * self.clock.hz() / f64::from(cost.cycles))
    }

    /// Seconds for `cycles` core cycles at [`Architecture::clock`].
    pub fn cycles_to_seconds(&self, cycles: f64) -> f64 {
        self.clock.cycles_to_seconds(cycles)
    }
}

fn check_fanout(f: &[u32]) -> Result<(), String> {
    if f.is_empty() || f.len() > 3 {
        return Err(format!(
            "a fanout has one to three dimensions, got {}",
            f.len()
        ));
    }
    if f.contains(&0) {
        return Err("every fanout dimension must be ≥ 1".into());
    }
    Ok(())
}

/// A TOML error of `text` (read from `file`) as a located [`ArchError::Parse`]; a bad value (a
/// unit out of range, a wrong type) names its field too.
pub(crate) fn parse_error(e: &toml::de::Error, text: &str, file: &str) -> ArchError {
    let (line, col, snippet) = match e.span() {
        Some(span) => line_col(text, span.start),
        None => (0, 0, String::new()),
    };
    let field = e
        .span()
        .and_then(|span| crate::locate::path_at(text, span.start))
        .map(|p| format!("{p}: "))
        .unwrap_or_default();
    ArchError::Parse {
        file: file.to_string(),
        line,
        col,
        message: format!("{field}{}", e.message().trim()),
        snippet,
    }
}

/// Turns a semantic error into a located parse error when its field is found in `text`.
fn locate_error(e: ArchError, locator: &str, text: &str, file: &str) -> ArchError {
    match e {
        ArchError::Invalid { path, message, .. } => match locate(text, locator) {
            Some(off) => {
                let (line, col, snippet) = line_col(text, off);
                ArchError::Parse {
                    file: file.to_string(),
                    line,
                    col,
                    message: format!("{path}: {message}"),
                    snippet,
                }
            }
            None => ArchError::Invalid {
                file: Some(file.to_string()),
                path,
                message,
            },
        },
        other => other,
    }
}
