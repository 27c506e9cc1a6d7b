//! `cascade-cuda` — measures real kernels on an NVIDIA GPU (H100, H200) so the
//! simulator's predictions can be cross-checked against them.
//!
//! This crate only measures: it knows nothing of the model and does not depend
//! on `cascade`. The root crate's `cascade crosscheck` (its `cuda` feature,
//! `sim/commands/crosscheck.rs`) runs [`run_suite_with`] and compares the
//! measurements with the model (`cascade::gpu::recorded`).
//!
//! cudarc loads the CUDA driver, NVRTC and cuBLAS at run time
//! (`dynamic-loading`), so the crate builds and its tests run on a machine
//! without CUDA; [`run_suite`] then returns [`CudaError::NoGpu`].
//!
//! The suite (see [`suite`]) runs cuBLAS bf16 GEMMs (plain and strided
//! batched), device-to-device copies, and our own NVRTC-compiled kernels
//! (`kernels/*.cu`): a tensor-core GEMM (mma.sync + ldmatrix + cp.async), a
//! three-kernel unfused attention, a fused FlashAttention-2 style attention and
//! a split-KV GQA decode attention. Every case: fresh random inputs generated
//! on the device, output poisoned with NaN before a checked launch, a full scan
//! for unwritten (non-finite) outputs, a float64 CPU reference on a sampled
//! subset of output rows ([`reference`](mod@reference)), then warm-up and ≥ 20 back-to-back
//! launches timed with CUDA events (median reported), and the same launches
//! captured in a CUDA graph and replayed (device time per launch: what the
//! model is compared with for cases under 100 µs, where the host's launch calls
//! can set the back-to-back pace; see `cascade::gpu::recorded`). Inputs that would
//! fit in L2 are rotated among up to 256 copies so the timing does not measure
//! the cache. Opt-in diagnostic cases (`CASCADE_CUDA_DIAG=1`) measure launch and
//! epilogue costs, L2/HBM load latency (pointer chase) and lone-CTA step times.
//!
//! Device buffers carry their name, element type and length; every kernel launch, cuBLAS
//! call, copy, fill and download is checked against them before it goes (a pure function of
//! lengths and shapes, unit-tested without a GPU), and refused with [`CudaError::Invalid`]
//! naming the buffer and the sizes. The `unsafe` blocks (all in the device layer) each say
//! why they are sound in a `// SAFETY:` comment; the crate's clippy configuration
//! (`undocumented_unsafe_blocks = "deny"` in its Cargo.toml) keeps it so.
//!
//! Op spec grammar written to [`Measurement::op`] (parsed by the model side):
//! `gemm m= n= k= dtype=bf16`, `bmm batch= m= n= k= dtype=bf16`,
//! `attention b= h= n= d= causal=0|1 impl=fa2`,
//! `attention_unfused b= h= n= d= scores=fp32` (the scores are kept in fp32),
//! `decode_attention b= hq= hkv= l= d=`, `copy bytes=` — every one parses with
//! `cascade::gpu::GpuOp::parse`, and every category is one of [`CATEGORIES`]
//! (the root crate's `tests/cuda_suite.rs` checks both, in CI, without a GPU).
//!
//! Development without a GPU: `cuda/emu/run_emu.sh` runs every kernel of
//! `kernels/` in a CPU emulator of the PTX subset they use (mma.sync and
//! ldmatrix fragment layouts, delayed cp.async, warp shuffles; AddressSanitizer
//! on) against f64 references, and so does `cargo test` (`tests/emu.rs`, every
//! family of [`kernels::FAMILIES`]; it needs g++ ≥ 12, and skips only with
//! `CASCADE_SKIP_EMU=1`); the test
//! `gpu::tests::nvrtc_compiles_all_kernel_families` NVRTC-compiles all
//! families when libnvrtc is loadable (e.g. `LD_LIBRARY_PATH` at the lib folder
//! of the `nvidia-cuda-nvrtc==13.0.*` wheel) and skips otherwise.

mod gpu;
pub mod kernels;
mod launch;
pub mod reference;
mod report;
pub mod suite;

use std::path::PathBuf;

pub use gpu::device_name;
pub use report::{
    csv_string, markdown_string, summary_table, write_csv, write_markdown, CSV_HEADER,
};

/// Errors of the measurement backend.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// No usable GPU or CUDA libraries on this machine (not a bug: skip).
    #[error("no GPU: {0}")]
    NoGpu(String),
    #[error("CUDA driver error: {0}")]
    Driver(String),
    #[error("cuBLAS error: {0}")]
    Cublas(String),
    #[error("kernel error: {0}")]
    Kernel(String),
    #[error("invalid case: {0}")]
    Invalid(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The measurement categories, in suite order: every case of [`suite::cases`] has one of them
/// (the diagnostic cases have [`suite::DIAGNOSTIC`]). The model's comparison in the root crate
/// (`cascade::gpu::recorded::CATEGORIES`) keeps the same list; `tests/cuda_suite.rs` there
/// checks that they agree.
pub const CATEGORIES: [&str; 7] = [
    "gemm_large",
    "gemm_small",
    "batched",
    "attention_fused",
    "attention_unfused",
    "decode",
    "copy",
];

/// Options of [`run_suite`]. `Default` is the full suite.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// Small smoke-test subset instead of the full suite.
    pub quick: bool,
    /// Run only cases whose name contains this substring.
    pub filter: Option<String>,
    /// CUDA device ordinal.
    pub device: usize,
    /// Untimed launches before timing (more are added for kernels < 50 µs).
    pub warmup_launches: usize,
    /// Timed launches: at least this many ...
    pub min_launches: usize,
    /// ... at most this many ...
    pub max_launches: usize,
    /// ... aiming at this much timed GPU time per case (seconds).
    pub target_seconds_per_case: f64,
    /// Output rows checked against the f64 CPU reference per GEMM (and per pair
    /// of experts for batched GEMM).
    pub ref_rows: usize,
    /// Query rows checked per sampled attention head.
    pub ref_attention_rows: usize,
    /// Attention heads (b, h pairs) checked per attention case.
    pub ref_attention_heads: usize,
    /// Batch entries checked per decode case (all query heads of each).
    pub ref_decode_batches: usize,
    /// Inputs are rotated among copies until one rotation spans at least this
    /// many bytes (0: 4 × the device's L2 size).
    pub rotate_bytes: usize,
    /// Seed of the device-side random inputs and of the sampled rows.
    pub seed: u64,
    /// Also run the opt-in diagnostic cases ([`suite::diagnostic_cases`]).
    pub diagnostics: bool,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            quick: false,
            filter: None,
            device: 0,
            warmup_launches: 3,
            min_launches: 20,
            max_launches: 200,
            target_seconds_per_case: 0.05,
            ref_rows: 64,
            ref_attention_rows: 32,
            ref_attention_heads: 3,
            ref_decode_batches: 2,
            rotate_bytes: 0,
            seed: 0x5eed_cafe,
            diagnostics: false,
        }
    }
}

/// One measured case.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Unique case name, e.g. `cublas_gemm_m4096_n4096_k4096`.
    pub case: String,
    /// One of [`CATEGORIES`].
    pub category: String,
    /// Op spec in the grammar of the module docs.
    pub op: String,
    /// Implementation: `cublas`, `ours_mma`, `ours_unfused3`, `ours_fa2`,
    /// `ours_splitkv`, `cuMemcpyDtoDAsync`.
    pub impl_name: String,
    /// Median / min / max seconds per launch (one launch = the whole op, e.g.
    /// the three kernels of unfused attention). NaN if the case failed.
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    /// Number of timed launches.
    pub launches: usize,
    /// Device-only seconds per launch from CUDA-graph replay (256 launches
    /// captured in one graph for cases under 100 µs back to back, else 8;
    /// median of 10 replays): the time the cross-check compares with the
    /// model. NaN if the capture failed.
    pub graph_median_s: f64,
    /// ‖out − ref‖₂ / ‖ref‖₂ over the sampled outputs (f64 reference).
    pub rel_err: f64,
    /// rel_err within the dtype tolerance and no unwritten outputs.
    pub ok: bool,
    /// Floating-point operations of one launch (2 per multiply-add).
    pub flops: f64,
    /// Minimum device-memory bytes of one launch (inputs read once, outputs
    /// written once; for copies read + write).
    pub bytes: f64,
    /// What was checked, rotation sets, launch geometry, or the error.
    pub notes: String,
}

impl Measurement {
    /// Achieved TFLOP/s at the median (0 for copies).
    pub fn tflops(&self) -> f64 {
        self.flops / self.median_s / 1e12
    }
    /// Achieved GB/s (minimum bytes) at the median.
    pub fn gbps(&self) -> f64 {
        self.bytes / self.median_s / 1e9
    }
}

/// Result of a suite run.
#[derive(Clone, Debug, Default)]
pub struct SuiteResult {
    pub device: String,
    /// Kernel driver version, e.g. `580.159.04`.
    pub driver: String,
    /// CUDA version supported by the driver, e.g. `13.0`.
    pub cuda: String,
    pub nvrtc: String,
    pub cublas: String,
    /// UTC date of the run, `YYYY-MM-DD`.
    pub date: String,
    /// UTC start time of the run, RFC 3339.
    pub started_utc: String,
    pub compute_capability: (i32, i32),
    pub sm_count: i32,
    pub l2_bytes: i64,
    pub total_mem_bytes: u64,
    /// Measured ceiling: large bf16 cuBLAS GEMM (8192³), TFLOP/s.
    pub gemm_ceiling_tflops: Option<f64>,
    /// Measured ceiling: 1 GiB device-to-device copy, GB/s counting read + write.
    pub copy_ceiling_gbps: Option<f64>,
    pub measurements: Vec<Measurement>,
    /// Build information (kernel registers/spills), failures, methodology.
    pub notes: Vec<String>,
    pub wall_seconds: f64,
}

/// Tolerance on `rel_err` for bf16 operands (fp32 accumulation).
pub const BF16_TOLERANCE: f64 = 2e-2;

/// Runs the whole suite. Fails only if no GPU can be used at all (clear
/// [`CudaError::NoGpu`] message when the libraries or the device are missing);
/// failures of single cases are recorded in their [`Measurement`].
pub fn run_suite(opts: &SuiteOptions) -> Result<SuiteResult, CudaError> {
    suite::run(opts, &mut |_, _| {})
}

/// [`run_suite`] with a callback after every case (partial result so far, the
/// new measurement), e.g. to write partial reports.
pub fn run_suite_with(
    opts: &SuiteOptions,
    on_case: &mut dyn FnMut(&SuiteResult, &Measurement),
) -> Result<SuiteResult, CudaError> {
    suite::run(opts, on_case)
}
