//! Recorded H100 measurements against the model.
//!
//! The CUDA suite (`cascade crosscheck`, feature `cuda`) measures every case as the median of
//! back-to-back launches with a CUDA event between consecutive launches, and as the device time
//! per launch from CUDA-graph replay. This module reads such a CSV ([`parse_recorded`] /
//! [`load_recorded`]), predicts every case ([`compare`]) and writes the compared CSV, a Markdown
//! report with per-category errors and a measured-vs-modeled plot ([`write_reports`]).
//! `main_crosscheck` calls it after a live run; the test `tests/gpu_recorded.rs` recomputes it
//! from `reports/crosscheck/h100.csv` on any machine.
//!
//! What is compared, for every case: **the device time** ([`RecordedCase::measured_s`]). Cases
//! under [`GRAPH_TRUTH_BELOW_S`] back to back are compared by their graph-replay time, where the
//! host's launch calls can set the back-to-back pace (cuBLAS 512³: 9–15 µs back to back across
//! runs, 3.7 µs in graph replay); the model predicts them by the op's device time
//! ([`GpuEstimate::seconds`]: its kernels back to back, each with the launch overhead). Longer
//! cases are compared by their back-to-back median and predicted as the device time plus one
//! *stream launch gap* per timed launch (the launch command and event record between two
//! launches, ≤ 3% there), measured in the same run as the median over all cases of (back-to-back
//! median − graph-replay time per launch) ([`RunFigures`]).
//!
//! Mappings: vendor code (cuBLAS, `cuMemcpyDtoDAsync`) is predicted with the searched best
//! mapping (what a tuned library reaches); the suite's own kernels with an explicit mapping
//! that describes each kernel as built in `cuda/kernels/*.cu` ([`built_mapping`]).

use super::analytical::{estimate_plans, GpuEstimate};
use super::cycle::simulate_plans;
use super::error::GpuError;
use super::hw::{Ceilings, GpuParams};
use super::mapping::{Epilogue, GpuMapping, InstrClass, KernelKind};
use super::op::GpuOp;
use super::plan::plan_op;
use super::search::{calibrate, mapping, try_estimate_with};
use crate::plot::{render, scatter_with_diagonal, Series};
use cascade_arch::GpuSpec;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The categories of the cross-check suite, in report order (`cascade_cuda::CATEGORIES` is the
/// same list: `tests/cuda_suite.rs` checks).
pub const CATEGORIES: [&str; 7] = [
    "gemm_large",
    "gemm_small",
    "batched",
    "attention_fused",
    "attention_unfused",
    "decode",
    "copy",
];

/// Measured columns of the suite's CSV, in order.
pub const MEASURED_COLUMNS: [&str; 14] = [
    "case", "category", "op", "impl", "median_s", "min_s", "max_s", "launches", "rel_err", "ok",
    "device", "driver", "cuda", "date",
];

/// Columns the comparison appends: the graph-replay time (measured; empty where not measured),
/// the modelled back-to-back time, `modeled_s / median_s − 1`, and the mapping.
pub const COMPARED_COLUMNS: [&str; 4] = ["graph_s", "modeled_s", "rel_err_model", "mapping"];

/// The stream launch gap of the recorded run (see the module documentation), used when a CSV
/// has no graph-replay times.
pub const RECORDED_LAUNCH_GAP_S: f64 = 3.25e-6;

/// The recorded run's stream cost of each further kernel of a launch (see
/// [`RunFigures::kernel_gap_s`]), used when a CSV has no multi-kernel case with a graph time.
pub const RECORDED_KERNEL_GAP_S: f64 = 1.58e-6;

/// Errors reading or writing recorded measurements.
#[derive(Debug, thiserror::Error)]
pub enum RecordedError {
    /// I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Malformed CSV.
    #[error("{file}:{line}: {message}")]
    Csv {
        /// The file (or `<string>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
}

/// One measured case: the suite's columns, kept verbatim for writing back.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCase {
    /// The 14 measured fields as written by the suite (see [`MEASURED_COLUMNS`]).
    pub fields: Vec<String>,
    /// Back-to-back median seconds per launch.
    pub median_s: f64,
    /// Graph-replay seconds per launch, if measured.
    pub graph_s: Option<f64>,
    /// Whether the case passed its correctness check.
    pub ok: bool,
}

/// Cases whose back-to-back median is below this are compared by their graph-replay time.
pub const GRAPH_TRUTH_BELOW_S: f64 = 100e-6;

impl RecordedCase {
    /// Whether the case is compared by its graph-replay time (see the module documentation).
    pub fn graph_truth(&self) -> bool {
        self.graph_s.is_some() && self.median_s < GRAPH_TRUTH_BELOW_S
    }

    /// The measured time the model is compared with: the graph-replay time per launch for
    /// cases under [`GRAPH_TRUTH_BELOW_S`] back to back, else the back-to-back median.
    pub fn measured_s(&self) -> f64 {
        match self.graph_s {
            Some(g) if self.graph_truth() => g,
            _ => self.median_s,
        }
    }

    /// Case name.
    pub fn case(&self) -> &str {
        &self.fields[0]
    }
    /// Category.
    pub fn category(&self) -> &str {
        &self.fields[1]
    }
    /// Op spec.
    pub fn op(&self) -> &str {
        &self.fields[2]
    }
    /// Implementation (`cublas`, `ours_mma`, …).
    pub fn impl_name(&self) -> &str {
        &self.fields[3]
    }
    /// Device, driver, CUDA version and date of the run.
    pub fn run_info(&self) -> (&str, &str, &str, &str) {
        (
            &self.fields[10],
            &self.fields[11],
            &self.fields[12],
            &self.fields[13],
        )
    }
}

/// Splits one CSV line (RFC 4180 quoting, no embedded newlines).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(cur);
    Ok(out)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Parses a measured (or compared) CSV; `file` names it in errors. Extra columns are ignored.
pub fn parse_recorded(text: &str, file: &str) -> Result<Vec<RecordedCase>, RecordedError> {
    let err = |line: usize, message: String| RecordedError::Csv {
        file: file.to_string(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| err(1, "empty file".into()))?;
    let header = split_csv(header).map_err(|m| err(1, m))?;
    let mut idx = Vec::new();
    for name in MEASURED_COLUMNS {
        let i = header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| err(1, format!("missing column `{name}`")))?;
        idx.push(i);
    }
    let graph = header.iter().position(|h| h == "graph_s");
    let mut out = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let row = split_csv(line).map_err(|m| err(i + 1, m))?;
        let get = |j: usize| -> Result<&str, RecordedError> {
            row.get(j)
                .map(String::as_str)
                .ok_or_else(|| err(i + 1, format!("{} fields, expected more", row.len())))
        };
        let fields = idx
            .iter()
            .map(|&j| get(j).map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        let median_s: f64 = fields[4]
            .parse()
            .map_err(|_| err(i + 1, format!("bad median_s `{}`", fields[4])))?;
        let graph_s = match graph {
            Some(j) => match get(j)?.trim() {
                "" | "NaN" => None,
                v => Some(
                    v.parse::<f64>()
                        .map_err(|_| err(i + 1, format!("bad graph_s `{v}`")))?,
                ),
            },
            None => None,
        };
        let ok = fields[9] == "true";
        out.push(RecordedCase {
            fields,
            median_s,
            graph_s: graph_s.filter(|g| g.is_finite() && *g > 0.0),
            ok,
        });
    }
    Ok(out)
}

/// Reads a measured (or compared) CSV file.
pub fn load_recorded(path: &Path) -> Result<Vec<RecordedCase>, RecordedError> {
    let text = std::fs::read_to_string(path).map_err(|e| RecordedError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_recorded(&text, &path.display().to_string())
}

/// Figures a run measures about the GPU itself, used by the model for that run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunFigures {
    /// GEMM and copy ceilings (from the cases `cublas_gemm_m8192_n8192_k8192` and
    /// `copy bytes=1073741824`; the recorded H100 values where a run lacks them).
    pub ceilings: Ceilings,
    /// Stream launch gap: median over the short cases (those compared by their graph-replay
    /// time, [`RecordedCase::graph_truth`]) of (back-to-back median − graph time per launch)
    /// ([`RECORDED_LAUNCH_GAP_S`] where none has one). Longer cases are left out: there the
    /// difference is within the run-to-run spread of the kernel itself.
    pub launch_gap_s: f64,
    /// Cases the gap is the median of.
    pub gap_cases: usize,
    /// Stream cost of each kernel after the first in one timed launch (a stream-launched
    /// kernel starts later after its predecessor than a graph node does): median over our
    /// short multi-kernel cases of (back-to-back − graph − launch gap) / (kernels − 1)
    /// ([`RECORDED_KERNEL_GAP_S`] where there is none): in the recorded run the two b = 1
    /// decodes.
    pub kernel_gap_s: f64,
}

impl RunFigures {
    /// Derives the figures from a run's cases (only those that passed their check).
    pub fn from_cases(cases: &[RecordedCase]) -> RunFigures {
        let ok = |c: &&RecordedCase| c.ok && c.median_s.is_finite() && c.median_s > 0.0;
        let mut ceilings = Ceilings::H100_RECORDED;
        for c in cases.iter().filter(ok) {
            if c.case() == "cublas_gemm_m8192_n8192_k8192" {
                ceilings.gemm_flops = 2.0 * 8192f64.powi(3) / c.median_s;
            }
            if let Ok(GpuOp::Copy { bytes }) = GpuOp::parse(c.op()) {
                if bytes == 1 << 30 {
                    ceilings.copy_bytes_per_s = 2.0 * bytes as f64 / c.median_s;
                }
            }
        }
        let gaps: Vec<f64> = cases
            .iter()
            .filter(ok)
            .filter(|c| CATEGORIES.contains(&c.category()))
            .filter(|c| c.graph_truth())
            .filter_map(|c| c.graph_s.map(|g| c.median_s - g))
            .collect();
        let gap_cases = gaps.len();
        let launch_gap_s = median(gaps).unwrap_or(RECORDED_LAUNCH_GAP_S);
        RunFigures {
            ceilings,
            launch_gap_s,
            gap_cases,
            kernel_gap_s: RECORDED_KERNEL_GAP_S,
        }
    }

    /// The back-to-back time the model predicts for an op of `kernels` kernels that takes
    /// `device_s` on the device.
    pub fn back_to_back(&self, device_s: f64, kernels: usize) -> f64 {
        device_s + self.launch_gap_s + kernels.saturating_sub(1) as f64 * self.kernel_gap_s
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some(0.5 * (v[n / 2 - 1] + v[n / 2])),
    }
}

/// Keys per split-KV CTA of the suite's decode kernel (`decode_chunk` in
/// `cuda/src/suite.rs`): enough CTAs to fill the GPU twice, 64–1024 keys, a multiple of 32.
pub fn decode_chunk(b: u64, hkv: u64, l: u64, sms: u64) -> u64 {
    let want = (2 * sms).div_ceil((b * hkv).max(1)).max(1);
    let chunk = l.div_ceil(want).div_ceil(32) * 32;
    chunk.clamp(64, 1024)
}

/// The explicit mapping of one of the suite's own kernels (`impl` `ours_mma`, `ours_fa2`,
/// `ours_unfused3`, `ours_splitkv`) as built in `cuda/kernels/*.cu`; `None` for vendor code
/// (cuBLAS, copies), which the model maps by search.
///
/// - `ours_mma` (`gemm.cuh`): CTA tile 128 × 128, K step 32, 8 warps (2 × 4), a 4-stage
///   `cp.async` pipeline, `mma.sync` m16n8k16; row-major CTA order (no swizzle).
/// - `ours_fa2` (`fa2.cu`): 64 query rows per CTA (16 per warp, 4 warps), 64-key K/V tiles,
///   double-buffered, `mma.sync`.
/// - `ours_unfused3` (`attn_unfused.cu`): S = QKᵀ with the GEMM tile above (fp32 S), a softmax
///   of one row per CTA (256 threads, 4 columns each per step, three passes over the row: max,
///   sum, normalize), O = PV with 128 × d tiles.
/// - `ours_splitkv` (`decode.cu`): CUDA-core kernel, one CTA per (KV head, split of ≤ 1024
///   keys) holding the 4 query heads of the group, 32 keys per step (8 half-warps × 4 keys in
///   registers, one load in flight), then a combine kernel (one CTA of 128 threads per query
///   head) — launched even with a single split.
pub fn built_mapping(op: &GpuOp, imp: &str, sms: u64) -> Option<Vec<GpuMapping>> {
    use InstrClass::{CudaCore, MmaSync};
    use KernelKind::*;
    let frag = |m: GpuMapping| GpuMapping {
        epilogue: Epilogue::Fragments,
        ..m
    };
    let gemm = frag(mapping(Gemm, (128, 128, 32), 4, 8, 1, 1, MmaSync));
    match (imp, *op) {
        ("ours_mma", GpuOp::Gemm { .. }) => Some(vec![gemm]),
        ("ours_fa2", GpuOp::Attention { d, .. }) => Some(vec![frag(mapping(
            FlashAttention,
            (64, 64, d as u32),
            2,
            4,
            1,
            1,
            MmaSync,
        ))]),
        ("ours_unfused3", GpuOp::AttentionUnfused { d, .. }) => Some(vec![
            gemm.clone(),
            mapping(Softmax, (1, 1024, 3), 1, 8, 1, 1, CudaCore),
            frag(mapping(Gemm, (128, d as u32, 32), 4, 8, 1, 1, MmaSync)),
        ]),
        ("ours_splitkv", GpuOp::DecodeAttention { b, hkv, l, d, .. }) => {
            let chunk = decode_chunk(b, hkv, l, sms);
            let nsplit = l.div_ceil(chunk) as u32;
            Some(vec![
                mapping(DecodeSplitKv, (4, 32, d as u32), 1, 4, nsplit, 1, CudaCore),
                mapping(DecodeCombine, (128, 128, 1), 1, 4, 1, 1, CudaCore),
            ])
        }
        _ => None,
    }
}

/// A short description of a mapping list for the CSV (no commas).
pub fn describe_mapping(maps: &[GpuMapping], searched: bool) -> String {
    let one = |m: &GpuMapping| {
        let mut s = format!(
            "{} {}x{}x{} s{} w{}",
            m.instr.name(),
            m.cta_tile_m,
            m.cta_tile_n,
            m.cta_tile_k,
            m.stages,
            m.warps
        );
        if m.split_k > 1 {
            let _ = write!(s, " split{}", m.split_k);
        }
        if m.swizzle > 1 {
            let _ = write!(s, " sw{}", m.swizzle);
        }
        s
    };
    let body = maps.iter().map(one).collect::<Vec<_>>().join("; ");
    if searched {
        format!("searched: {body}")
    } else {
        format!("as built: {body}")
    }
}

/// One case, measured and modelled.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparedCase {
    /// The measurement.
    pub recorded: RecordedCase,
    /// The model's estimate of the op (device time; `None` if the case is not modelled).
    pub estimate: Option<GpuEstimate>,
    /// The cycle-level simulation of the same mapping, seconds (device time).
    pub cycle_s: Option<f64>,
    /// Predicted back-to-back time: device time + the stream launch gap.
    pub modeled_s: Option<f64>,
    /// Short mapping description.
    pub mapping: String,
    /// Why the case is not modelled, if it is not.
    pub skipped: Option<String>,
}

impl ComparedCase {
    /// Whether the host, not the GPU, set the back-to-back period: the measured back-to-back
    /// time exceeds the graph-replay time by more than twice the stream gaps the model adds
    /// (the launch calls and event records of the timing loop take longer than the op runs).
    /// The model predicts the GPU's pace; such cases measure the host API's cost.
    pub fn host_paced(&self, f: &RunFigures) -> bool {
        let (Some(g), Some(e)) = (self.recorded.graph_s, &self.estimate) else {
            return false;
        };
        let gaps = f.back_to_back(0.0, e.kernels.len());
        self.recorded.median_s - g > 2.0 * gaps
    }

    /// `modeled / measured − 1` ([`RecordedCase::measured_s`]).
    pub fn rel_err(&self) -> Option<f64> {
        self.modeled_s.map(|m| m / self.recorded.measured_s() - 1.0)
    }

    /// The back-to-back time the model predicts (device time plus the stream gaps).
    pub fn modeled_back_to_back_s(&self, f: &RunFigures) -> Option<f64> {
        let e = self.estimate.as_ref()?;
        Some(f.back_to_back(e.seconds, e.kernels.len()))
    }

    /// `|analytical − cycle| / analytical` on device time.
    pub fn cycle_gap(&self) -> Option<f64> {
        let a = self.estimate.as_ref()?.seconds;
        Some((a - self.cycle_s?).abs() / a)
    }
}

/// Error statistics of a set of cases.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ErrorStats {
    /// Cases.
    pub n: usize,
    /// Mean absolute relative error.
    pub mape: f64,
    /// Largest absolute relative error.
    pub max_abs: f64,
    /// Mean signed relative error (bias).
    pub bias: f64,
}

impl ErrorStats {
    fn of(errs: &[f64]) -> ErrorStats {
        let n = errs.len();
        if n == 0 {
            return ErrorStats::default();
        }
        ErrorStats {
            n,
            mape: errs.iter().map(|e| e.abs()).sum::<f64>() / n as f64,
            max_abs: errs.iter().fold(0.0, |a, e| a.max(e.abs())),
            bias: errs.iter().sum::<f64>() / n as f64,
        }
    }
}

/// A run compared with the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Every case, in input order.
    pub cases: Vec<ComparedCase>,
    /// The run's own figures that the model used.
    pub figures: RunFigures,
    /// The calibrated `wgmma` fraction of the dense peak and HBM bandwidth (bytes/s) the model
    /// ran with ([`calibrate`]).
    pub calibrated: (f64, f64),
    /// The HBM rates the model took from the DRAM model ([`GpuParams::hbm_rates`]), if the
    /// spec names a memory preset (then HBM is not fitted to the copy).
    pub hbm_rates: Option<crate::dram::SustainedRates>,
}

impl Comparison {
    /// Cases of the cross-check categories that passed their check and are modelled.
    pub fn scored(&self) -> impl Iterator<Item = &ComparedCase> {
        self.cases.iter().filter(|c| {
            c.recorded.ok && c.modeled_s.is_some() && CATEGORIES.contains(&c.recorded.category())
        })
    }

    /// Statistics per category (in [`CATEGORIES`] order, categories without cases omitted)
    /// and overall.
    pub fn stats(&self) -> (Vec<(&'static str, ErrorStats)>, ErrorStats) {
        let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut all = Vec::new();
        for c in self.scored() {
            let e = c.rel_err().unwrap_or(0.0);
            by.entry(c.recorded.category()).or_default().push(e);
            all.push(e);
        }
        let per = CATEGORIES
            .iter()
            .filter_map(|&cat| by.get(cat).map(|v| (cat, ErrorStats::of(v))))
            .collect();
        (per, ErrorStats::of(&all))
    }

    /// The per-category table as Markdown.
    pub fn table_markdown(&self) -> String {
        let (per, all) = self.stats();
        let mut s = String::from(
            "| category | cases | MAPE | max abs error | mean error (bias) |\n|---|---:|---:|---:|---:|\n",
        );
        let row = |s: &mut String, name: &str, e: &ErrorStats| {
            let _ = writeln!(
                s,
                "| {name} | {} | {:.1}% | {:.1}% | {:+.1}% |",
                e.n,
                100.0 * e.mape,
                100.0 * e.max_abs,
                100.0 * e.bias
            );
        };
        for (cat, e) in &per {
            row(&mut s, cat, e);
        }
        row(&mut s, "**all**", &all);
        s
    }
}

/// Predicts one op as the case ran it (explicit mapping for our kernels, searched otherwise).
pub fn model_case(
    op: &GpuOp,
    imp: &str,
    hw: &GpuParams,
) -> Result<(GpuEstimate, f64, String), GpuError> {
    let (plans, searched) = match built_mapping(op, imp, u64::from(hw.sms)) {
        Some(maps) => (plan_op(op, &maps, hw)?, false),
        None => {
            let best = try_estimate_with(op, hw)?;
            (plan_op(op, &best.mapping, hw)?, true)
        }
    };
    let est = estimate_plans(op, &plans, hw);
    let cyc = simulate_plans(&plans, hw).seconds;
    let desc = describe_mapping(&est.mapping, searched);
    Ok((est, cyc, desc))
}

/// Compares recorded cases with the model on `spec`, using the run's own ceilings and launch
/// gap ([`RunFigures::from_cases`]).
pub fn compare(cases: &[RecordedCase], spec: &GpuSpec) -> Comparison {
    let mut figures = RunFigures::from_cases(cases);
    let hw = calibrate(spec, &figures.ceilings);
    let out: Vec<ComparedCase> = cases
        .iter()
        .map(|c| {
            let skip = |why: String| ComparedCase {
                recorded: c.clone(),
                estimate: None,
                cycle_s: None,
                modeled_s: None,
                mapping: String::new(),
                skipped: Some(why),
            };
            let op = match GpuOp::parse(c.op()) {
                Ok(op) => op,
                Err(e) => return skip(format!("op does not parse: {e}")),
            };
            if !CATEGORIES.contains(&c.category()) {
                return skip(format!("category `{}` is not cross-checked", c.category()));
            }
            match model_case(&op, c.impl_name(), &hw) {
                Ok((est, cyc, mapping)) => ComparedCase {
                    recorded: c.clone(),
                    modeled_s: None,
                    estimate: Some(est),
                    cycle_s: Some(cyc),
                    mapping,
                    skipped: None,
                },
                Err(e) => skip(format!("model error: {e}")),
            }
        })
        .collect();
    // The per-kernel stream cost, from our own multi-kernel cases (whose kernel count is
    // known; a library may launch more kernels than the model maps).
    let extra: Vec<f64> = out
        .iter()
        .filter(|c| c.recorded.ok && c.mapping.starts_with("as built"))
        .filter_map(|c| {
            let k = c.estimate.as_ref()?.kernels.len();
            let g = c.recorded.graph_s.filter(|_| c.recorded.graph_truth())?;
            (k >= 2).then(|| (c.recorded.median_s - g - figures.launch_gap_s) / (k - 1) as f64)
        })
        .collect();
    if let Some(m) = median(extra) {
        figures.kernel_gap_s = m.max(0.0);
    }
    let cases = out
        .into_iter()
        .map(|mut c| {
            c.modeled_s = c.estimate.as_ref().map(|e| {
                if c.recorded.graph_truth() {
                    e.seconds
                } else {
                    figures.back_to_back(e.seconds, e.kernels.len())
                }
            });
            c
        })
        .collect();
    Comparison {
        cases,
        figures,
        calibrated: (hw.wgmma_efficiency, hw.hbm_bw),
        hbm_rates: hw.hbm_rates,
    }
}

/// The compared CSV: the measured columns verbatim, then [`COMPARED_COLUMNS`].
pub fn compared_csv(cmp: &Comparison) -> String {
    let mut s = MEASURED_COLUMNS
        .iter()
        .chain(COMPARED_COLUMNS.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for c in &cmp.cases {
        let mut row: Vec<String> = c.recorded.fields.iter().map(|f| csv_field(f)).collect();
        row.push(
            c.recorded
                .graph_s
                .map_or(String::new(), |g| format!("{g:.6e}")),
        );
        row.push(c.modeled_s.map_or(String::new(), |m| format!("{m:.6e}")));
        row.push(c.rel_err().map_or(String::new(), |e| format!("{e:+.4}")));
        row.push(csv_field(&c.mapping));
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s
}

fn us(x: f64) -> String {
    format!("{:.1}", x * 1e6)
}

/// The Markdown report.
pub fn report_markdown(cmp: &Comparison) -> String {
    let mut s = String::new();
    let first = cmp.cases.first().map(|c| c.recorded.run_info());
    let (device, driver, cuda, date) = first.unwrap_or(("?", "?", "?", "?"));
    let f = &cmp.figures;
    let (_, all) = cmp.stats();
    let _ = writeln!(s, "# H100 cross-check: measured vs modeled\n");
    let _ = writeln!(
        s,
        "Generated by `cascade::gpu::recorded` from `h100.csv` (measured columns); regenerate on \
         any machine with `cargo test --test gpu_recorded regenerate -- --ignored`, or on the GPU \
         machine with `cascade crosscheck --out DIR` (build with `--features cuda`).\n"
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| device | {device} |");
    let _ = writeln!(s, "| driver | {driver} |");
    let _ = writeln!(s, "| CUDA | {cuda} |");
    let _ = writeln!(s, "| date of the measurements | {date} |");
    let _ = writeln!(
        s,
        "| cases compared | {} of {} ({} categories) |",
        all.n,
        cmp.cases.len(),
        cmp.stats().0.len()
    );
    let _ = writeln!(s, "\n## Measured ceilings (same run), used by the model\n");
    let _ = writeln!(
        s,
        "- bf16 cuBLAS GEMM 8192×8192×8192: **{:.1} TFLOP/s** — the model's `wgmma` main loops run \
         at {:.4} of the dense peak, the rate at which it reproduces this case.",
        f.ceilings.gemm_flops / 1e12,
        cmp.calibrated.0
    );
    match &cmp.hbm_rates {
        Some(r) => {
            let _ = writeln!(
                s,
                "- device-to-device copy of 1 GiB (read + write bytes): **{:.0} GB/s** — not \
                 fitted: the model's HBM rates come from the DRAM model on the spec's memory \
                 preset, which sustains {:.0} GB/s copying ({:+.1}% from this case), {:.0} GB/s \
                 reading and {:.0} GB/s writing.",
                f.ceilings.copy_bytes_per_s / 1e9,
                r.copy / 1e9,
                (r.copy / f.ceilings.copy_bytes_per_s - 1.0) * 100.0,
                r.read / 1e9,
                r.write / 1e9
            );
        }
        None => {
            let _ = writeln!(
                s,
                "- device-to-device copy of 1 GiB (read + write bytes): **{:.0} GB/s** — the \
                 model's HBM delivers {:.0} GB/s, at which it reproduces this case.",
                f.ceilings.copy_bytes_per_s / 1e9,
                cmp.calibrated.1 / 1e9
            );
        }
    }
    let _ = writeln!(
        s,
        "- stream launch gap: **{:.2} µs** per timed launch — median over the {} cases under \
         {:.0} µs of (back-to-back median − graph-replay time per launch); **{:.2} µs** more for \
         each further kernel of a launch (median over our short multi-kernel cases).",
        f.launch_gap_s * 1e6,
        f.gap_cases,
        GRAPH_TRUTH_BELOW_S * 1e6,
        f.kernel_gap_s * 1e6
    );
    let _ = writeln!(s, "\n## What is compared\n");
    let _ = writeln!(
        s,
        "The measured time is the op's **device time per launch**: for cases under {:.0} µs back \
         to back, the CUDA-graph replay time (many launches captured in one graph, covering every \
         rotated input set), because there the host's launch calls and event records, not the \
         GPU, can set the pace of back-to-back launches; for longer cases the back-to-back median \
         of launches with a CUDA event between consecutive ones (the stream gaps above are ≤ 3% \
         there, and the model adds them). The model predicts the device time of the op's kernels \
         back to back, each with the launch overhead of the `h100` preset. The back-to-back \
         median and the model's back-to-back prediction (device time + the stream gaps) are \
         listed beside it; cases marked *host-paced* ran slower back to back than their graph \
         time plus twice the gaps. Vendor code (cuBLAS, copies) is modelled with the searched \
         best mapping (what a tuned library reaches; `wgmma` for cuBLAS); our kernels with their \
         mapping as built.\n",
        GRAPH_TRUTH_BELOW_S * 1e6
    );
    let _ = writeln!(s, "## Error by category\n");
    let _ = writeln!(
        s,
        "Relative error = modeled / measured − 1 on the device time.\n"
    );
    s.push_str(&cmp.table_markdown());
    let _ = writeln!(
        s,
        "\nOverall MAPE **{:.1}%**, largest error **{:.1}%** over {} cases.",
        100.0 * all.mape,
        100.0 * all.max_abs,
        all.n
    );
    let b2b: Vec<f64> = cmp
        .scored()
        .filter(|c| !c.host_paced(f))
        .filter_map(|c| Some(c.modeled_back_to_back_s(f)? / c.recorded.median_s - 1.0))
        .collect();
    let e = ErrorStats::of(&b2b);
    let _ = writeln!(
        s,
        "On the back-to-back median instead (device time + stream gaps), without the {} \
         host-paced case(s): MAPE {:.1}%, largest error {:.1}%.",
        all.n - b2b.len(),
        100.0 * e.mape,
        100.0 * e.max_abs
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "![measured vs modeled](h100_measured_vs_modeled.png)\n\n## Cases\n"
    );
    let _ = writeln!(
        s,
        "| case | impl | measured µs | modeled µs | error | back-to-back µs | modeled b2b µs | cycle µs | bound | mapping |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---|---|");
    for cat in CATEGORIES {
        for c in cmp.cases.iter().filter(|c| c.recorded.category() == cat) {
            let r = &c.recorded;
            let (m, e, b2b, cyc, bound) = match (&c.estimate, c.modeled_s) {
                (Some(est), Some(m)) => (
                    us(m),
                    format!("{:+.1}%", 100.0 * (m / r.measured_s() - 1.0)),
                    c.modeled_back_to_back_s(f).map_or("—".into(), us),
                    c.cycle_s.map_or("—".into(), us),
                    est.bound.name().to_string(),
                ),
                _ => (
                    "—".into(),
                    c.skipped.clone().unwrap_or_default(),
                    "—".into(),
                    "—".into(),
                    "—".into(),
                ),
            };
            let measured = if r.graph_truth() {
                format!("{} (graph)", us(r.measured_s()))
            } else {
                us(r.measured_s())
            };
            let b2b_measured = if c.host_paced(f) {
                format!("{} (host-paced)", us(r.median_s))
            } else {
                us(r.median_s)
            };
            let _ = writeln!(
                s,
                "| {} | {} | {measured} | {m} | {e} | {b2b_measured} | {b2b} | {cyc} | {bound} | {} |",
                r.case(),
                r.impl_name(),
                c.mapping
            );
        }
    }
    let others: Vec<&ComparedCase> = cmp
        .cases
        .iter()
        .filter(|c| !CATEGORIES.contains(&c.recorded.category()))
        .collect();
    if !others.is_empty() {
        let _ = writeln!(s, "\n## Other measured cases (not scored)\n");
        let _ = writeln!(s, "| case | category | impl | median µs | graph µs |");
        let _ = writeln!(s, "|---|---|---|---:|---:|");
        for c in others {
            let r = &c.recorded;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.case(),
                r.category(),
                r.impl_name(),
                us(r.median_s),
                r.graph_s.map_or("—".into(), us)
            );
        }
    }
    s.push_str(
        "\nWhat each model change was and the evidence for it, the diagnostic runs and the known \
         limits: `docs/gpu-h100-notes.md` (fixed text, kept out of this generated report).\n",
    );
    s
}

/// Writes `h100.csv`, `h100.md` and `h100_measured_vs_modeled.{png,svg}` into `dir`.
pub fn write_reports(cmp: &Comparison, dir: &Path) -> Result<(), RecordedError> {
    write_reports_named(cmp, dir, "h100")
}

/// Writes `<gpu>.csv`, `<gpu>.md` and `<gpu>_measured_vs_modeled.{png,svg}` into `dir`.
pub fn write_reports_named(cmp: &Comparison, dir: &Path, gpu: &str) -> Result<(), RecordedError> {
    std::fs::create_dir_all(dir).map_err(|e| RecordedError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| RecordedError::Io { path, source: e })
    };
    write(&format!("{gpu}.csv"), compared_csv(cmp))?;
    write(&format!("{gpu}.md"), report_markdown(cmp))?;
    let mut series = Vec::new();
    for cat in CATEGORIES {
        let pts: Vec<(f64, f64)> = cmp
            .scored()
            .filter(|c| c.recorded.category() == cat)
            .filter_map(|c| Some((c.recorded.measured_s() * 1e6, c.modeled_s? * 1e6)))
            .collect();
        if !pts.is_empty() {
            series.push(Series::new(cat, pts));
        }
    }
    if !series.is_empty() {
        let chart = scatter_with_diagonal(
            &format!("{}: measured vs modeled (device time)", gpu.to_uppercase()),
            "measured µs",
            "modeled µs",
            series,
        );
        render(
            &chart,
            &dir.join(format!("{gpu}_measured_vs_modeled.png")),
            &dir.join(format!("{gpu}_measured_vs_modeled.svg")),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_splitting_and_parsing() {
        assert_eq!(
            split_csv("a,\"b,c\",\"d\"\"e\",").unwrap(),
            vec!["a", "b,c", "d\"e", ""]
        );
        assert!(split_csv("a,\"b").is_err());
        let text = "case,category,op,impl,median_s,min_s,max_s,launches,rel_err,ok,device,driver,cuda,date\n\
                    x,copy,copy bytes=1073741824,cuMemcpyDtoDAsync,7.151680e-4,7.1e-4,7.3e-4,70,0.000e0,true,H100,580,13.0,2026-11-26\n";
        let cases = parse_recorded(text, "t.csv").unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].case(), "x");
        assert_eq!(cases[0].graph_s, None);
        let fig = RunFigures::from_cases(&cases);
        assert!((fig.ceilings.copy_bytes_per_s - 3.0024e12).abs() < 1e9);
        assert_eq!(fig.launch_gap_s, RECORDED_LAUNCH_GAP_S);
        let err = parse_recorded("case,op\nx,y\n", "t.csv").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("t.csv:1: missing column `category`"));
    }

    #[test]
    fn built_mappings_plan_and_describe() {
        let spec = cascade_arch::preset("h100").unwrap().gpu.unwrap();
        let hw = GpuParams::new(&spec);
        for (s, imp) in [
            ("gemm m=512 n=512 k=512 dtype=bf16", "ours_mma"),
            (
                "attention b=1 h=32 n=1024 d=128 causal=1 impl=fa2",
                "ours_fa2",
            ),
            (
                "attention b=2 h=16 n=2048 d=64 causal=0 impl=fa2",
                "ours_fa2",
            ),
            (
                "attention_unfused b=1 h=32 n=1024 d=128 scores=fp32",
                "ours_unfused3",
            ),
            (
                "attention_unfused b=2 h=16 n=2048 d=64 scores=fp32",
                "ours_unfused3",
            ),
            (
                "decode_attention b=64 hq=32 hkv=8 l=1024 d=128",
                "ours_splitkv",
            ),
            (
                "decode_attention b=1 hq=32 hkv=8 l=32768 d=128",
                "ours_splitkv",
            ),
        ] {
            let op = GpuOp::parse(s).unwrap();
            let (est, cyc, desc) = model_case(&op, imp, &hw).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(est.seconds > 0.0 && cyc > 0.0, "{s}");
            assert!(
                desc.starts_with("as built: ") && !desc.contains(','),
                "{desc}"
            );
        }
        assert_eq!(decode_chunk(1, 8, 32768, 132), 1024);
        assert_eq!(decode_chunk(1, 8, 1024, 132), 64);
        assert_eq!(decode_chunk(64, 8, 1024, 132), 1024);
    }
}
