//! The measurement cases and their runner.

use std::time::Instant;

use crate::gpu::{DBuf, Gpu, Timing};
use crate::kernels::dyn_smem;
use crate::launch::{DType, Launch, Span, DECODE_MAX_CHUNK};
use crate::reference::{
    attention_rows, bf16_slice_to_f32, decode_attention_heads, gemm_rows, rel_err,
};
use crate::{CudaError, Measurement, SuiteOptions, SuiteResult, BF16_TOLERANCE};

/// What a case computes.
#[derive(Clone, Debug, PartialEq)]
pub enum CaseKind {
    /// Row-major `C[m,n] = A[m,k]·B[k,n]`; `ours`: our mma.sync kernel, else cuBLAS.
    Gemm {
        m: usize,
        n: usize,
        k: usize,
        ours: bool,
    },
    /// cuBLAS strided-batched GEMM.
    Bmm {
        batch: usize,
        m: usize,
        n: usize,
        k: usize,
    },
    /// Three-kernel attention (scores fp32 in HBM, softmax, P·V), non-causal.
    Unfused {
        b: usize,
        h: usize,
        n: usize,
        d: usize,
    },
    /// Fused FlashAttention-2 style forward.
    Fa2 {
        b: usize,
        h: usize,
        n: usize,
        d: usize,
        causal: bool,
    },
    /// Split-KV GQA decode attention + combine.
    Decode {
        b: usize,
        hq: usize,
        hkv: usize,
        l: usize,
        d: usize,
    },
    /// cuMemcpyDtoDAsync.
    Copy { bytes: usize },
    /// Diagnostic: one kernel of the unfused attention (0: S = QKᵀ, 1: softmax,
    /// 2: O = PV), timed alone after a checked run of all three.
    UnfusedPart {
        b: usize,
        h: usize,
        n: usize,
        d: usize,
        part: usize,
    },
    /// Diagnostic: one kernel of the split-KV decode (0: split, 1: combine),
    /// timed alone after a checked run of both.
    DecodePart {
        b: usize,
        hq: usize,
        hkv: usize,
        l: usize,
        d: usize,
        part: usize,
    },
    /// Diagnostic: a one-block kernel that does (almost) nothing: launch cost.
    Empty,
    /// Diagnostic: one thread following `steps` dependent loads scattered over
    /// `bytes` (a power of two): the load-to-use latency of L2 (small `bytes`)
    /// or HBM (`bytes` far above L2).
    Chase { bytes: usize, steps: usize },
    /// Diagnostic: `ctas` CTAs of a fixed-cost kernel (`noop_dyn_smem`: the GEMM's dynamic
    /// shared memory and one store; `store_tile_bf16`: the GEMM epilogue's 32 KB of stores).
    Fixed { kernel: &'static str, ctas: usize },
}

/// A case of the suite.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub name: String,
    pub category: &'static str,
    pub op: String,
    pub impl_name: &'static str,
    pub kind: CaseKind,
}

fn gemm_category(m: usize, n: usize, k: usize) -> &'static str {
    if m.min(n).min(k) >= 1024 {
        "gemm_large"
    } else {
        "gemm_small"
    }
}

impl Case {
    pub fn gemm(m: usize, n: usize, k: usize, ours: bool) -> Case {
        let (prefix, imp) = if ours {
            ("ours_mma_gemm", "ours_mma")
        } else {
            ("cublas_gemm", "cublas")
        };
        Case {
            name: format!("{prefix}_m{m}_n{n}_k{k}"),
            category: gemm_category(m, n, k),
            op: format!("gemm m={m} n={n} k={k} dtype=bf16"),
            impl_name: imp,
            kind: CaseKind::Gemm { m, n, k, ours },
        }
    }
    pub fn bmm(batch: usize, m: usize, n: usize, k: usize) -> Case {
        Case {
            name: format!("cublas_bmm_b{batch}_m{m}_n{n}_k{k}"),
            category: "batched",
            op: format!("bmm batch={batch} m={m} n={n} k={k} dtype=bf16"),
            impl_name: "cublas",
            kind: CaseKind::Bmm { batch, m, n, k },
        }
    }
    pub fn unfused(b: usize, h: usize, n: usize, d: usize) -> Case {
        Case {
            name: format!("ours_unfused3_b{b}_h{h}_n{n}_d{d}"),
            category: "attention_unfused",
            op: format!("attention_unfused b={b} h={h} n={n} d={d} scores=fp32"),
            impl_name: "ours_unfused3",
            kind: CaseKind::Unfused { b, h, n, d },
        }
    }
    pub fn fa2(b: usize, h: usize, n: usize, d: usize, causal: bool) -> Case {
        let c = causal as u8;
        Case {
            name: format!("ours_fa2_b{b}_h{h}_n{n}_d{d}_c{c}"),
            category: "attention_fused",
            op: format!("attention b={b} h={h} n={n} d={d} causal={c} impl=fa2"),
            impl_name: "ours_fa2",
            kind: CaseKind::Fa2 { b, h, n, d, causal },
        }
    }
    pub fn decode(b: usize, hq: usize, hkv: usize, l: usize, d: usize) -> Case {
        Case {
            name: format!("ours_splitkv_decode_b{b}_hq{hq}_hkv{hkv}_l{l}_d{d}"),
            category: "decode",
            op: format!("decode_attention b={b} hq={hq} hkv={hkv} l={l} d={d}"),
            impl_name: "ours_splitkv",
            kind: CaseKind::Decode { b, hq, hkv, l, d },
        }
    }
    pub fn copy(bytes: usize) -> Case {
        Case {
            name: format!("copy_dtod_{}", human_bytes(bytes)),
            category: "copy",
            op: format!("copy bytes={bytes}"),
            impl_name: "cuMemcpyDtoDAsync",
            kind: CaseKind::Copy { bytes },
        }
    }

    /// Diagnostic variant of a case: category `diagnostic`, name prefixed `diag_`.
    fn diagnostic(mut self) -> Case {
        self.name = format!("diag_{}", self.name);
        self.category = DIAGNOSTIC;
        self
    }
    fn unfused_part(b: usize, h: usize, n: usize, d: usize, part: usize) -> Case {
        let base = Case::unfused(b, h, n, d);
        Case {
            name: format!("diag_{}_part{part}", base.name),
            category: DIAGNOSTIC,
            op: base.op,
            impl_name: [
                "ours_unfused3_qk",
                "ours_unfused3_softmax",
                "ours_unfused3_pv",
            ][part],
            kind: CaseKind::UnfusedPart { b, h, n, d, part },
        }
    }
    fn decode_part(b: usize, hq: usize, hkv: usize, l: usize, d: usize, part: usize) -> Case {
        let base = Case::decode(b, hq, hkv, l, d);
        Case {
            name: format!("diag_{}_part{part}", base.name),
            category: DIAGNOSTIC,
            op: base.op,
            impl_name: ["ours_splitkv_split", "ours_splitkv_combine"][part],
            kind: CaseKind::DecodePart {
                b,
                hq,
                hkv,
                l,
                d,
                part,
            },
        }
    }

    /// Floating-point operations of one launch.
    pub fn flops(&self) -> f64 {
        match self.kind {
            CaseKind::Gemm { m, n, k, .. } => 2.0 * (m * n * k) as f64,
            CaseKind::Bmm { batch, m, n, k } => 2.0 * (batch * m * n * k) as f64,
            CaseKind::Unfused { b, h, n, d } => 4.0 * (b * h) as f64 * (n * n * d) as f64,
            CaseKind::Fa2 { b, h, n, d, causal } => {
                let pairs = if causal {
                    (n * (n + 1) / 2) as f64
                } else {
                    (n * n) as f64
                };
                4.0 * (b * h * d) as f64 * pairs
            }
            CaseKind::Decode { b, hq, l, d, .. } => 4.0 * (b * hq * l * d) as f64,
            CaseKind::Copy { .. }
            | CaseKind::Empty
            | CaseKind::Chase { .. }
            | CaseKind::Fixed { .. } => 0.0,
            CaseKind::UnfusedPart { b, h, n, d, part } => {
                if part == 1 {
                    0.0
                } else {
                    2.0 * (b * h) as f64 * (n * n * d) as f64
                }
            }
            CaseKind::DecodePart { .. } => 0.0,
        }
    }

    /// Minimum device-memory bytes of one launch.
    pub fn bytes(&self) -> f64 {
        match self.kind {
            CaseKind::Gemm { m, n, k, .. } => 2.0 * (m * k + k * n + m * n) as f64,
            CaseKind::Bmm { batch, m, n, k } => 2.0 * (batch * (m * k + k * n + m * n)) as f64,
            CaseKind::Unfused { b, h, n, d } | CaseKind::Fa2 { b, h, n, d, .. } => {
                2.0 * 4.0 * (b * h * n * d) as f64
            }
            CaseKind::Decode { b, hq, hkv, l, d } => {
                2.0 * (2 * b * hkv * l * d + 2 * b * hq * d) as f64
            }
            CaseKind::Copy { bytes } => 2.0 * bytes as f64,
            CaseKind::UnfusedPart { b, h, n, d, part } => {
                let (bh, nn) = ((b * h) as f64, (n * n) as f64);
                match part {
                    0 => bh * (2.0 * 2.0 * (n * d) as f64 + 4.0 * nn),
                    1 => bh * 6.0 * nn,
                    _ => bh * (2.0 * nn + 2.0 * 2.0 * (n * d) as f64),
                }
            }
            CaseKind::DecodePart { .. }
            | CaseKind::Empty
            | CaseKind::Chase { .. }
            | CaseKind::Fixed { .. } => 0.0,
        }
    }
}

fn human_bytes(b: usize) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{}GiB", b >> 30)
    } else if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{}MiB", b >> 20)
    } else {
        format!("{b}B")
    }
}

/// Category of the opt-in diagnostic cases ([`diagnostic_cases`]): not part of
/// the cross-check statistics.
pub const DIAGNOSTIC: &str = "diagnostic";

/// Opt-in diagnostic cases (`CASCADE_CUDA_DIAG=1`) that isolate mechanisms the
/// model needs: launch cost (a near-empty kernel, a 256-byte copy), the fixed
/// cost and the per-step time of our kernels (one step, one CTA; one CTA per
/// SM over many steps), and the three kernels of unfused attention and the two
/// of decode timed one by one.
pub fn diagnostic_cases() -> Vec<Case> {
    let mut v = vec![
        Case {
            name: "diag_empty_kernel".into(),
            category: DIAGNOSTIC,
            op: "-".into(),
            impl_name: "count_nonfinite_bf16",
            kind: CaseKind::Empty,
        },
        Case::copy(256).diagnostic(),
    ];
    // What a kernel pays besides its main loop: the GEMM's dynamic shared memory alone, and
    // its epilogue's stores alone, for one CTA and one CTA per SM.
    for (kernel, ctas) in [
        ("noop_dyn_smem", 1usize),
        ("noop_dyn_smem", 132),
        ("store_tile_bf16", 1),
        ("store_tile_bf16", 16),
        ("store_tile_bf16", 132),
    ] {
        v.push(Case {
            name: format!("diag_{kernel}_{ctas}cta"),
            category: DIAGNOSTIC,
            op: "-".into(),
            impl_name: kernel,
            kind: CaseKind::Fixed { kernel, ctas },
        });
    }
    // Dependent-load latency: L2-resident (4 MiB), and two sizes far above the 50 MB L2
    // (their times differ by 5%: TLB misses add little).
    for (bytes, steps) in [
        (4usize << 20, 4096usize),
        (128 << 20, 2048),
        (1 << 30, 2048),
    ] {
        v.push(Case {
            name: format!("diag_chase_{}", human_bytes(bytes)),
            category: DIAGNOSTIC,
            op: "-".into(),
            impl_name: "chase_u32",
            kind: CaseKind::Chase { bytes, steps },
        });
    }
    for (m, n, k) in [
        (1024usize, 1024usize, 32usize),
        (2048, 2048, 32),
        (1024, 1024, 128),
        (1024, 1024, 4096),
        (2048, 2048, 4096),
    ] {
        v.push(Case::gemm(m, n, k, true).diagnostic());
    }
    // One CTA and 16 CTAs (one per SM) at 1, 16 and 64 steps, inputs from HBM and from L2:
    // the fixed cost and the per-step time of a lone CTA, and what HBM adds to each.
    for (mn, k) in [
        (128usize, 32usize),
        (128, 512),
        (128, 2048),
        (512, 32),
        (512, 512),
        (512, 2048),
    ] {
        let base = Case::gemm(mn, mn, k, true).diagnostic();
        let mut resident = base.clone();
        resident.name.push_str(L2_RESIDENT_SUFFIX);
        v.push(base);
        v.push(resident);
    }
    for (b, h, n) in [(1usize, 1usize, 64usize), (1, 1, 4096), (1, 132, 64)] {
        v.push(Case::fa2(b, h, n, 128, false).diagnostic());
    }
    for n in [1024usize, 4096] {
        for part in 0..3 {
            v.push(Case::unfused_part(1, 32, n, 128, part));
        }
    }
    for (b, l) in [(1usize, 32768usize), (64, 8192)] {
        for part in 0..2 {
            v.push(Case::decode_part(b, 32, 8, l, 128, part));
        }
    }
    v
}

/// The cases of the suite, in run order (copies and cuBLAS first: they give
/// the ceilings and cannot corrupt the context).
pub fn cases(quick: bool) -> Vec<Case> {
    let mut v = Vec::new();
    if quick {
        v.push(Case::copy(64 << 20));
        v.push(Case::gemm(2048, 2048, 2048, false));
        v.push(Case::gemm(8, 4096, 4096, false));
        v.push(Case::bmm(8, 64, 4096, 4096));
        v.push(Case::gemm(1024, 1024, 1024, true));
        v.push(Case::unfused(1, 8, 1024, 128));
        v.push(Case::fa2(1, 8, 1024, 64, false));
        v.push(Case::fa2(1, 8, 1024, 128, true));
        v.push(Case::decode(4, 32, 8, 4096, 128));
        return v;
    }
    for bytes in [1usize << 20, 64 << 20, 1 << 30] {
        v.push(Case::copy(bytes));
    }
    for s in [512usize, 1024, 2048, 4096, 8192] {
        v.push(Case::gemm(s, s, s, false));
    }
    for n in [4096usize, 14336] {
        for m in [1usize, 8, 16, 32, 64] {
            v.push(Case::gemm(m, n, 4096, false));
        }
    }
    v.push(Case::gemm(512, 14336, 4096, false));
    v.push(Case::gemm(512, 4096, 14336, false));
    for t in [16usize, 64, 256, 1024, 4096] {
        v.push(Case::bmm(8, t, 14336, 4096));
    }
    for s in [512usize, 1024, 2048, 4096] {
        v.push(Case::gemm(s, s, s, true));
    }
    v.push(Case::gemm(512, 14336, 4096, true));
    for (b, h, n, d) in [
        (1usize, 32usize, 1024usize, 128usize),
        (1, 32, 2048, 128),
        (1, 32, 4096, 128),
        (2, 16, 2048, 64),
    ] {
        v.push(Case::unfused(b, h, n, d));
    }
    for (b, h, n, d) in [
        (1usize, 32usize, 1024usize, 128usize),
        (1, 32, 2048, 128),
        (1, 32, 4096, 128),
        (1, 32, 8192, 128),
        (2, 16, 2048, 64),
    ] {
        for causal in [false, true] {
            v.push(Case::fa2(b, h, n, d, causal));
        }
    }
    for (b, l) in [
        (1usize, 1024usize),
        (1, 32768),
        (16, 8192),
        (64, 1024),
        (64, 8192),
        (32, 32768),
    ] {
        v.push(Case::decode(b, 32, 8, l, 128));
    }
    v
}

/// Cases whose back-to-back median is below this capture [`GRAPH_LAUNCHES_SHORT`] launches
/// per graph, the others [`GRAPH_LAUNCHES_LONG`].
const GRAPH_SHORT_S: f64 = 100e-6;
/// Most input sets a case rotates among ([`Ctx::sets`]).
const MAX_SETS: usize = 256;
/// Launches captured per graph for short cases: all the input sets a case may rotate among
/// ([`MAX_SETS`]), so one replay never re-reads a set that is still in L2.
const GRAPH_LAUNCHES_SHORT: usize = MAX_SETS;
/// Diagnostic cases whose name ends with this run on a single input set, which stays in L2
/// after the warm-up: against the same case without it, the cost of reading from HBM.
const L2_RESIDENT_SUFFIX: &str = "_l2resident";
/// Launches per graph for long cases (their launch gaps are under 3% anyway; at most 3 sets).
const GRAPH_LAUNCHES_LONG: usize = 8;
/// Timed replays of the graph.
const GRAPH_REPLAYS: usize = 10;

/// Per-case context: options, seeds, rotation policy.
struct Ctx<'a> {
    gpu: &'a Gpu,
    opts: &'a SuiteOptions,
    seed: u64,
    rotate_bytes: usize,
}

/// What a case run produces (before it becomes a [`Measurement`]).
struct Outcome {
    timing: Timing,
    rel_err: f64,
    nonfinite: u64,
    tolerance: f64,
    notes: String,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Up to `count` distinct indices in `0..n`, sorted, always including the first
/// and the last.
fn sample_indices(n: usize, count: usize, seed: u64) -> Vec<usize> {
    if count >= n {
        return (0..n).collect();
    }
    let mut set = std::collections::BTreeSet::new();
    set.insert(0);
    if count > 1 {
        set.insert(n - 1);
    }
    let mut s = seed;
    while set.len() < count.max(1) {
        s = splitmix(s);
        set.insert((s % n as u64) as usize);
    }
    set.into_iter().collect()
}

impl Ctx<'_> {
    fn seed(&self, salt: u64) -> u64 {
        splitmix(self.seed ^ salt.wrapping_mul(0x2545_F491_4F6C_DD1D))
    }
    /// Number of input/output copies so that one rotation spans `rotate_bytes`.
    fn sets(&self, set_bytes: usize) -> usize {
        self.rotate_bytes
            .div_ceil(set_bytes.max(1))
            .clamp(1, MAX_SETS)
    }
    /// Back-to-back event timing, and the device-only time from CUDA-graph replay (the
    /// cross-check's measured time: see the module documentation).
    fn time(&self, f: &mut dyn FnMut(usize) -> Result<(), CudaError>) -> Result<Timing, CudaError> {
        let mut t = self.gpu.time_launches(
            self.opts.warmup_launches,
            self.opts.min_launches,
            self.opts.max_launches,
            self.opts.target_seconds_per_case,
            f,
        )?;
        let per_graph = if t.median < GRAPH_SHORT_S {
            GRAPH_LAUNCHES_SHORT
        } else {
            GRAPH_LAUNCHES_LONG
        };
        match self.gpu.graph_time(per_graph, GRAPH_REPLAYS, f) {
            Ok(g) => {
                t.graph_median = g;
                t.graph_launches = per_graph;
            }
            Err(e) => {
                if is_sticky(&e) {
                    return Err(e);
                }
                t.graph_error = Some(e.to_string());
            }
        }
        Ok(t)
    }
    /// A bf16 buffer of `elems` uniform random values in `[-scale, scale)`.
    fn alloc_rand(
        &self,
        name: &'static str,
        elems: usize,
        salt: u64,
        scale: f32,
    ) -> Result<DBuf, CudaError> {
        let b = self.gpu.alloc(name, DType::Bf16, elems)?;
        self.gpu
            .fill_rand_bf16(b.span(), elems, self.seed(salt), scale)?;
        Ok(b)
    }
    /// A bf16 buffer of `elems` values, not yet written.
    fn alloc_bf16(&self, name: &'static str, elems: usize) -> Result<DBuf, CudaError> {
        self.gpu.alloc(name, DType::Bf16, elems)
    }
    fn download_bf16(&self, s: Span, elems: usize) -> Result<Vec<f32>, CudaError> {
        Ok(bf16_slice_to_f32(&self.gpu.download::<u16>(s, elems)?))
    }
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), CudaError> {
    if cond {
        Ok(())
    } else {
        Err(CudaError::Invalid(msg()))
    }
}

fn run_gemm(c: &Ctx, m: usize, n: usize, k: usize, ours: bool) -> Result<Outcome, CudaError> {
    let (ea, eb, ec) = (m * k, k * n, m * n);
    let sets = c.sets(2 * (ea + eb + ec));
    let a = c.alloc_rand("A", ea * sets, 1, 1.0)?;
    let b = c.alloc_rand("B", eb * sets, 2, 1.0)?;
    let cb = c.alloc_bf16("C", ec * sets)?;
    let gpu = c.gpu;
    let launch = |s: usize| -> Result<(), CudaError> {
        let (pa, pb, pc) = (a.at(s * ea), b.at(s * eb), cb.at(s * ec));
        if ours {
            gpu.launch(&Launch::Gemm {
                a: pa,
                b: pb,
                c: pc,
                m,
                n,
                k,
            })
        } else {
            gpu.cublas_gemm(m, n, k, pa, pb, pc)
        }
    };
    gpu.poison(cb.span(), ec)?;
    launch(0)?;
    gpu.sync()?;
    let nonfinite = gpu.count_nonfinite(cb.span(), ec)?;
    let rows = sample_indices(m, c.opts.ref_rows, c.seed(3));
    let mut a_rows = Vec::with_capacity(rows.len() * k);
    let mut c_rows = Vec::with_capacity(rows.len() * n);
    for &r in &rows {
        a_rows.extend(c.download_bf16(a.at(r * k), k)?);
        c_rows.extend(c.download_bf16(cb.at(r * n), n)?);
    }
    let b_h = c.download_bf16(b.span(), eb)?;
    let local: Vec<usize> = (0..rows.len()).collect();
    let reference = gemm_rows(&a_rows, &b_h, k, n, &local);
    let err = rel_err(&c_rows, &reference);
    let timing = c.time(&mut |i| launch(i % sets))?;
    let geom = if ours {
        format!("; grid {}x{} CTAs of 256", n / 128, m / 128)
    } else {
        String::new()
    };
    Ok(Outcome {
        timing,
        rel_err: err,
        nonfinite,
        tolerance: BF16_TOLERANCE,
        notes: format!(
            "ref {}/{} rows of C (f64); sets={sets}{geom}",
            rows.len(),
            m
        ),
    })
}

fn run_bmm(c: &Ctx, batch: usize, m: usize, n: usize, k: usize) -> Result<Outcome, CudaError> {
    let (ea, eb, ec) = (batch * m * k, batch * k * n, batch * m * n);
    let sets = c.sets(2 * (ea + eb + ec));
    let a = c.alloc_rand("A", ea * sets, 11, 1.0)?;
    let b = c.alloc_rand("B", eb * sets, 12, 1.0)?;
    let cb = c.alloc_bf16("C", ec * sets)?;
    let gpu = c.gpu;
    let launch = |s: usize| {
        gpu.cublas_gemm_batched(batch, m, n, k, a.at(s * ea), b.at(s * eb), cb.at(s * ec))
    };
    gpu.poison(cb.span(), ec)?;
    launch(0)?;
    gpu.sync()?;
    let nonfinite = gpu.count_nonfinite(cb.span(), ec)?;
    let experts: Vec<usize> = if batch > 1 {
        vec![0, batch - 1]
    } else {
        vec![0]
    };
    let per = (c.opts.ref_rows / experts.len()).max(1);
    let mut outs = Vec::new();
    let mut refs = Vec::new();
    let mut checked = 0;
    for &e in &experts {
        let rows = sample_indices(m, per, c.seed(13 + e as u64));
        checked += rows.len();
        let mut a_rows = Vec::with_capacity(rows.len() * k);
        for &r in &rows {
            a_rows.extend(c.download_bf16(a.at(e * m * k + r * k), k)?);
            outs.extend(c.download_bf16(cb.at(e * m * n + r * n), n)?);
        }
        let b_h = c.download_bf16(b.at(e * k * n), k * n)?;
        let local: Vec<usize> = (0..rows.len()).collect();
        refs.extend(gemm_rows(&a_rows, &b_h, k, n, &local));
    }
    let err = rel_err(&outs, &refs);
    let timing = c.time(&mut |i| launch(i % sets))?;
    Ok(Outcome {
        timing,
        rel_err: err,
        nonfinite,
        tolerance: BF16_TOLERANCE,
        notes: format!("ref {checked} rows of experts {experts:?} (f64); sets={sets}"),
    })
}

/// Reference check of `heads` sampled heads of a [bh, n, d] attention output.
#[allow(clippy::too_many_arguments)]
fn check_attention(
    c: &Ctx,
    q: Span,
    k: Span,
    v: Span,
    o: Span,
    bh: usize,
    n: usize,
    d: usize,
    causal: bool,
) -> Result<(f64, String), CudaError> {
    let heads = sample_indices(bh, c.opts.ref_attention_heads, c.seed(21));
    let mut outs = Vec::new();
    let mut refs = Vec::new();
    let mut nrows = 0;
    for &hd in &heads {
        let off = hd * n * d;
        let qh = c.download_bf16(q.at(off), n * d)?;
        let kh = c.download_bf16(k.at(off), n * d)?;
        let vh = c.download_bf16(v.at(off), n * d)?;
        let oh = c.download_bf16(o.at(off), n * d)?;
        let rows = sample_indices(n, c.opts.ref_attention_rows, c.seed(22 + hd as u64));
        nrows += rows.len();
        for &r in &rows {
            outs.extend_from_slice(&oh[r * d..(r + 1) * d]);
        }
        refs.extend(attention_rows(
            &qh,
            &kh,
            &vh,
            n,
            d,
            causal,
            1.0 / (d as f64).sqrt(),
            &rows,
        ));
    }
    Ok((
        rel_err(&outs, &refs),
        format!(
            "ref {} heads x {} query rows (f64)",
            heads.len(),
            nrows / heads.len().max(1)
        ),
    ))
}

fn run_unfused(
    c: &Ctx,
    b: usize,
    h: usize,
    n: usize,
    d: usize,
    part: Option<usize>,
) -> Result<Outcome, CudaError> {
    check(n.is_multiple_of(128) && (d == 64 || d == 128), || {
        format!("unfused attention needs n%128 == 0 and d in {{64,128}} (n={n}, d={d})")
    })?;
    let bh = b * h;
    let e = bh * n * d;
    let q = c.alloc_rand("Q", e, 31, 2.0)?;
    let k = c.alloc_rand("K", e, 32, 1.0)?;
    let v = c.alloc_rand("V", e, 33, 1.0)?;
    let o = c.alloc_bf16("O", e)?;
    let s = c.gpu.alloc("S", DType::F32, bh * n * n)?;
    let p = c.alloc_bf16("P", bh * n * n)?;
    let gpu = c.gpu;
    let scale = 1.0 / (d as f32).sqrt();
    let kernel = |i: usize| -> Result<(), CudaError> {
        gpu.launch(&match i {
            0 => Launch::AttnScores {
                q: q.span(),
                k: k.span(),
                s: s.span(),
                bh,
                n,
                d,
                scale,
            },
            1 => Launch::Softmax {
                s: s.span(),
                p: p.span(),
                rows: bh * n,
                n,
            },
            _ => Launch::AttnPv {
                p: p.span(),
                v: v.span(),
                o: o.span(),
                bh,
                n,
                d,
            },
        })
    };
    let launch = || -> Result<(), CudaError> { (0..3).try_for_each(kernel) };
    gpu.poison(s.span(), bh * n * n)?;
    gpu.poison(p.span(), bh * n * n)?;
    gpu.poison(o.span(), e)?;
    launch()?;
    gpu.sync()?;
    let nonfinite = gpu.count_nonfinite(o.span(), e)?
        + gpu.count_nonfinite(s.span(), bh * n * n)?
        + gpu.count_nonfinite(p.span(), bh * n * n)?;
    let (err, what) = check_attention(c, q.span(), k.span(), v.span(), o.span(), bh, n, d, false)?;
    let timing = match part {
        Some(i) => c.time(&mut |_| kernel(i))?,
        None => c.time(&mut |_| launch())?,
    };
    let only = part.map_or(String::new(), |i| {
        format!("timed: kernel {i} only (0 S=QK^T, 1 softmax, 2 O=PV); ")
    });
    Ok(Outcome {
        timing,
        rel_err: err,
        nonfinite,
        tolerance: BF16_TOLERANCE,
        notes: format!(
            "{only}{what}; 3 launches: S=QK^T fp32 {} MiB, softmax -> P bf16 {} MiB, O=PV; sets=1 (S/P exceed L2)",
            (4 * bh * n * n) >> 20,
            (2 * bh * n * n) >> 20
        ),
    })
}

fn run_fa2(
    c: &Ctx,
    b: usize,
    h: usize,
    n: usize,
    d: usize,
    causal: bool,
) -> Result<Outcome, CudaError> {
    check(n.is_multiple_of(64) && (d == 64 || d == 128), || {
        format!("ours_fa2 needs n%64 == 0 and d in {{64,128}} (n={n}, d={d})")
    })?;
    let bh = b * h;
    let e = bh * n * d;
    let sets = c.sets(4 * 2 * e);
    let q = c.alloc_rand("Q", e * sets, 41, 2.0)?;
    let k = c.alloc_rand("K", e * sets, 42, 1.0)?;
    let v = c.alloc_rand("V", e * sets, 43, 1.0)?;
    let o = c.alloc_bf16("O", e * sets)?;
    let gpu = c.gpu;
    let scale_log2 = (std::f64::consts::LOG2_E / (d as f64).sqrt()) as f32;
    let launch = |s: usize| -> Result<(), CudaError> {
        gpu.launch(&Launch::Fa2 {
            q: q.at(s * e),
            k: k.at(s * e),
            v: v.at(s * e),
            o: o.at(s * e),
            bh,
            n,
            d,
            causal,
            scale_log2,
        })
    };
    let smem = dyn_smem(if d == 64 {
        "fa2_fwd_d64"
    } else {
        "fa2_fwd_d128"
    });
    gpu.poison(o.span(), e)?;
    launch(0)?;
    gpu.sync()?;
    let nonfinite = gpu.count_nonfinite(o.span(), e)?;
    let (err, what) = check_attention(c, q.span(), k.span(), v.span(), o.span(), bh, n, d, causal)?;
    let timing = c.time(&mut |i| launch(i % sets))?;
    Ok(Outcome {
        timing,
        rel_err: err,
        nonfinite,
        tolerance: BF16_TOLERANCE,
        notes: format!(
            "{what}; grid {}x{} CTAs of 128, {} B dyn smem; sets={sets}",
            n / 64,
            bh,
            smem
        ),
    })
}

/// Keys per split-KV CTA: enough CTAs to fill the GPU twice, ≤ 1024 keys each (the model's
/// `cascade::gpu::recorded::decode_chunk` must agree: the root crate's `tests/cuda_suite.rs`).
pub fn decode_chunk(b: usize, hkv: usize, l: usize, sm_count: usize) -> usize {
    let want_splits = (2 * sm_count).div_ceil(b * hkv).max(1);
    let chunk = l.div_ceil(want_splits).div_ceil(32) * 32;
    chunk.clamp(64, DECODE_MAX_CHUNK)
}

fn run_decode(
    c: &Ctx,
    b: usize,
    hq: usize,
    hkv: usize,
    l: usize,
    d: usize,
    part: Option<usize>,
) -> Result<Outcome, CudaError> {
    check(d == 128 && hkv > 0 && hq == 4 * hkv, || {
        format!("ours_splitkv needs d=128 and hq = 4*hkv (hq={hq}, hkv={hkv}, d={d})")
    })?;
    let chunk = decode_chunk(b, hkv, l, c.gpu.sm_count.max(1) as usize);
    let nsplit = l.div_ceil(chunk);
    let (eq, ekv) = (b * hq * d, b * hkv * l * d);
    let sets = c.sets(2 * (2 * eq + 2 * ekv));
    let q = c.alloc_rand("q", eq * sets, 51, 2.0)?;
    let kc = c.alloc_rand("Kcache", ekv * sets, 52, 1.0)?;
    let vc = c.alloc_rand("Vcache", ekv * sets, 53, 1.0)?;
    let out = c.alloc_bf16("out", eq * sets)?;
    let po = c.gpu.alloc("po", DType::F32, b * hq * nsplit * d)?;
    let pm = c.gpu.alloc("pm", DType::F32, b * hq * nsplit)?;
    let pl = c.gpu.alloc("pl", DType::F32, b * hq * nsplit)?;
    let gpu = c.gpu;
    let scale = 1.0 / (d as f32).sqrt();
    let split = |s: usize| -> Result<(), CudaError> {
        gpu.launch(&Launch::DecodeSplit {
            q: q.at(s * eq),
            k: kc.at(s * ekv),
            v: vc.at(s * ekv),
            po: po.span(),
            pm: pm.span(),
            pl: pl.span(),
            b,
            hq,
            hkv,
            l,
            d,
            chunk,
            nsplit,
            scale,
        })
    };
    let combine = |s: usize| -> Result<(), CudaError> {
        gpu.launch(&Launch::DecodeCombine {
            po: po.span(),
            pm: pm.span(),
            pl: pl.span(),
            out: out.at(s * eq),
            b,
            hq,
            d,
            nsplit,
        })
    };
    let launch = |s: usize| -> Result<(), CudaError> {
        split(s)?;
        combine(s)
    };
    gpu.poison(out.span(), eq)?;
    gpu.poison(po.span(), b * hq * nsplit * d)?;
    launch(0)?;
    gpu.sync()?;
    let nonfinite = gpu.count_nonfinite(out.span(), eq)?
        + gpu.count_nonfinite(po.span(), b * hq * nsplit * d)?;
    let batches = sample_indices(b, c.opts.ref_decode_batches, c.seed(54));
    let mut outs = Vec::new();
    let mut refs = Vec::new();
    for &bi in &batches {
        let qh = c.download_bf16(q.at(bi * hq * d), hq * d)?;
        let kh = c.download_bf16(kc.at(bi * hkv * l * d), hkv * l * d)?;
        let vh = c.download_bf16(vc.at(bi * hkv * l * d), hkv * l * d)?;
        outs.extend(c.download_bf16(out.at(bi * hq * d), hq * d)?);
        refs.extend(decode_attention_heads(
            &qh,
            &kh,
            &vh,
            hq,
            hkv,
            l,
            d,
            scale as f64,
        ));
    }
    let err = rel_err(&outs, &refs);
    let timing = match part {
        Some(0) => c.time(&mut |i| split(i % sets))?,
        Some(_) => c.time(&mut |i| combine(i % sets))?,
        None => c.time(&mut |i| launch(i % sets))?,
    };
    let only = part.map_or(String::new(), |i| {
        format!("timed: kernel {i} only (0 split, 1 combine); ")
    });
    Ok(Outcome {
        timing,
        rel_err: err,
        nonfinite,
        tolerance: BF16_TOLERANCE,
        notes: format!(
            "{only}ref all {hq} heads of sequences {batches:?} (f64); chunk={chunk} nsplit={nsplit} -> {} CTAs + combine; sets={sets}",
            nsplit * hkv * b
        ),
    })
}

fn run_copy(c: &Ctx, bytes: usize) -> Result<Outcome, CudaError> {
    check(bytes.is_multiple_of(2), || "copy size must be even".into())?;
    let elems = bytes / 2;
    let sets = c.sets(2 * bytes);
    let src = c.alloc_rand("src", elems * sets, 61, 1.0)?;
    let dst = c.alloc_bf16("dst", elems * sets)?;
    let gpu = c.gpu;
    let launch = |s: usize| gpu.copy_dtod(dst.at(s * elems), src.at(s * elems), bytes);
    gpu.poison(dst.span(), elems)?;
    launch(0)?;
    gpu.sync()?;
    let nonfinite = gpu.count_nonfinite(dst.span(), elems)?;
    let win = (64usize << 10).min(bytes) / 2; // elements per window
    let mut outs = Vec::new();
    let mut refs = Vec::new();
    for start in [0, elems / 2 - win / 2, elems - win] {
        outs.extend(c.download_bf16(dst.at(start), win)?);
        refs.extend(
            c.download_bf16(src.at(start), win)?
                .into_iter()
                .map(|x| x as f64),
        );
    }
    let err = rel_err(&outs, &refs);
    let timing = c.time(&mut |i| launch(i % sets))?;
    Ok(Outcome {
        timing,
        rel_err: err,
        nonfinite,
        tolerance: 0.0,
        notes: format!(
            "3 windows of {} KiB compared exactly; sets={sets}",
            (win * 2) >> 10
        ),
    })
}

/// A one-block launch of `count_nonfinite_bf16` over one finite element: the
/// cost of a launch itself.
fn run_empty(c: &Ctx) -> Result<Outcome, CudaError> {
    let x = c.alloc_rand("x", 1, 71, 1.0)?;
    let counter = c.gpu.alloc("counter", DType::U64, 1)?;
    c.gpu.poison(counter.span(), 1)?;
    let gpu = c.gpu;
    let launch = |_: usize| {
        gpu.launch(&Launch::CountNonfinite {
            p: x.span(),
            n: 1,
            count: counter.span(),
        })
    };
    timed_diagnostic(c, &launch, |_| {
        "one block of 256 threads reading one bf16 element".into()
    })
}

fn run_chase(c: &Ctx, bytes: usize, steps: usize) -> Result<Outcome, CudaError> {
    check(bytes.is_power_of_two() && bytes >= 128, || {
        format!("chase needs a power-of-two size of at least 128 bytes, got {bytes}")
    })?;
    let lines = bytes / 128;
    check(lines <= 1 << 26, || {
        format!("chase of {bytes} bytes is too large")
    })?;
    let p = c.gpu.alloc("chain", DType::U32, 32 * lines)?;
    let out = c.gpu.alloc("out", DType::U32, 1)?;
    let gpu = c.gpu;
    gpu.launch(&Launch::ChaseInit { p: p.span(), lines })?;
    gpu.sync()?;
    // Each launch starts where the previous chain position would be far away: a new start
    // line per launch, so no launch re-walks lines the previous one just cached.
    let launch = |i: usize| {
        gpu.launch(&Launch::Chase {
            p: p.span(),
            lines,
            steps,
            start_line: (i * 7919 * steps) % lines,
            out: out.span(),
        })
    };
    let per = |t: f64| t / steps as f64 * 1e9;
    timed_diagnostic(c, &launch, |timing| {
        format!(
            "one thread, {steps} dependent ld.global.cg loads over {lines} lines of 128 B: \
             {:.1} ns per load (graph), {:.1} ns (back to back)",
            per(timing.graph_median),
            per(timing.median)
        )
    })
}

/// Times a diagnostic launch that has no output to check: one launch and a sync (errors
/// surface here), then the suite's timing (`launch(i)` for launch `i`); `notes` describes
/// the case from its timing.
fn timed_diagnostic(
    c: &Ctx,
    launch: &dyn Fn(usize) -> Result<(), CudaError>,
    notes: impl FnOnce(&Timing) -> String,
) -> Result<Outcome, CudaError> {
    launch(0)?;
    c.gpu.sync()?;
    let timing = c.time(&mut |i| launch(i))?;
    Ok(Outcome {
        notes: notes(&timing),
        timing,
        rel_err: 0.0,
        nonfinite: 0,
        tolerance: 0.0,
    })
}

fn run_fixed(c: &Ctx, kernel: &'static str, ctas: usize) -> Result<Outcome, CudaError> {
    let gpu = c.gpu;
    let ld = 128 * ctas;
    let (buf, notes) = match kernel {
        "noop_dyn_smem" => (
            gpu.alloc("out", DType::U32, ctas)?,
            "75776 B dynamic shared memory per CTA, one 4-byte store",
        ),
        "store_tile_bf16" => (
            gpu.alloc("tiles", DType::Bf16, 128 * ld)?,
            "one 128 x 128 bf16 tile (32 KB) per CTA in the GEMM epilogue's store pattern",
        ),
        _ => {
            return Err(CudaError::Invalid(format!(
                "unknown fixed-cost kernel {kernel}"
            )))
        }
    };
    let launch = |_: usize| {
        gpu.launch(&if kernel == "noop_dyn_smem" {
            Launch::NoopDynSmem {
                out: buf.span(),
                ctas,
            }
        } else {
            Launch::StoreTile {
                out: buf.span(),
                ld,
                ctas,
            }
        })
    };
    timed_diagnostic(c, &launch, |_| {
        format!("{ctas} CTAs of 256 threads; {notes}")
    })
}

fn run_case(c: &Ctx, case: &Case) -> Result<Outcome, CudaError> {
    match case.kind {
        CaseKind::Gemm { m, n, k, ours } => run_gemm(c, m, n, k, ours),
        CaseKind::Bmm { batch, m, n, k } => run_bmm(c, batch, m, n, k),
        CaseKind::Unfused { b, h, n, d } => run_unfused(c, b, h, n, d, None),
        CaseKind::Fa2 { b, h, n, d, causal } => run_fa2(c, b, h, n, d, causal),
        CaseKind::Decode { b, hq, hkv, l, d } => run_decode(c, b, hq, hkv, l, d, None),
        CaseKind::Copy { bytes } => run_copy(c, bytes),
        CaseKind::UnfusedPart { b, h, n, d, part } => run_unfused(c, b, h, n, d, Some(part)),
        CaseKind::DecodePart {
            b,
            hq,
            hkv,
            l,
            d,
            part,
        } => run_decode(c, b, hq, hkv, l, d, Some(part)),
        CaseKind::Empty => run_empty(c),
        CaseKind::Chase { bytes, steps } => run_chase(c, bytes, steps),
        CaseKind::Fixed { kernel, ctas } => run_fixed(c, kernel, ctas),
    }
}

fn failed(case: &Case, why: String) -> Measurement {
    Measurement {
        case: case.name.clone(),
        category: case.category.to_string(),
        op: case.op.clone(),
        impl_name: case.impl_name.to_string(),
        median_s: f64::NAN,
        min_s: f64::NAN,
        max_s: f64::NAN,
        launches: 0,
        graph_median_s: f64::NAN,
        rel_err: f64::NAN,
        ok: false,
        flops: case.flops(),
        bytes: case.bytes(),
        notes: format!("FAILED: {}", why.replace('\n', " ")),
    }
}

/// The errors after which the context is unusable.
fn is_sticky(e: &CudaError) -> bool {
    match e {
        CudaError::Driver(s) => [
            "ILLEGAL_ADDRESS",
            "LAUNCH_FAILED",
            "ILLEGAL_INSTRUCTION",
            "MISALIGNED_ADDRESS",
            "HARDWARE_STACK_ERROR",
            "ASSERT",
            "INVALID_PC",
            "ECC",
            "CONTEXT_IS_DESTROYED",
        ]
        .iter()
        .any(|k| s.contains(k)),
        _ => false,
    }
}

fn driver_version() -> String {
    if let Ok(s) = std::fs::read_to_string("/sys/module/nvidia/version") {
        let s = s.trim();
        if !s.is_empty() {
            return s.to_string();
        }
    }
    if let Ok(s) = std::fs::read_to_string("/proc/driver/nvidia/version") {
        // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  ..."
        if let Some(tok) = s
            .split_whitespace()
            .find(|t| t.chars().next().is_some_and(|c| c.is_ascii_digit()) && t.contains('.'))
        {
            return tok.to_string();
        }
    }
    "unknown".into()
}

/// (YYYY-MM-DD, RFC 3339) of now, UTC.
fn utc_now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // civil_from_days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let date = format!("{y:04}-{m:02}-{d:02}");
    let ts = format!(
        "{date}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    (date, ts)
}

/// Runs the suite (see [`crate::run_suite`]).
pub(crate) fn run(
    opts: &SuiteOptions,
    on_case: &mut dyn FnMut(&SuiteResult, &Measurement),
) -> Result<SuiteResult, CudaError> {
    crate::gpu::check_libraries()?;
    let t0 = Instant::now();
    let mut log = |s: &str| eprintln!("[cuda] {s}");
    let gpu = Gpu::new(opts.device, &mut log)?;
    let (date, started) = utc_now();
    let mut res = SuiteResult {
        device: gpu.device_name(),
        driver: driver_version(),
        cuda: gpu.driver_cuda_version(),
        nvrtc: gpu.nvrtc_version(),
        cublas: gpu.cublas_version(),
        date,
        started_utc: started,
        compute_capability: gpu.compute_capability(),
        sm_count: gpu.sm_count,
        l2_bytes: gpu.l2_bytes as i64,
        total_mem_bytes: gpu.total_mem() as u64,
        ..Default::default()
    };
    log(&format!(
        "{} (sm_{}{}, {} SMs, L2 {} MiB) driver {} CUDA {} NVRTC {} cuBLAS {}",
        res.device,
        res.compute_capability.0,
        res.compute_capability.1,
        res.sm_count,
        res.l2_bytes >> 20,
        res.driver,
        res.cuda,
        res.nvrtc,
        res.cublas
    ));
    for (fam, e) in &gpu.module_errors {
        res.notes.push(format!(
            "kernel family '{fam}' unavailable: {}",
            e.lines().take(8).collect::<Vec<_>>().join(" / ")
        ));
    }
    for k in &gpu.kernel_info {
        res.notes.push(format!(
            "kernel {}: {} registers, {} B local memory (spills/stack), {} B static shared memory",
            k.name, k.regs, k.local_bytes, k.static_smem
        ));
    }
    let rotate_bytes = if opts.rotate_bytes > 0 {
        opts.rotate_bytes
    } else {
        4 * gpu.l2_bytes.max(1 << 20) as usize
    };
    res.notes.push(format!(
        "L2 rotation target {} MiB per rotation of input sets",
        rotate_bytes >> 20
    ));

    let mut all = cases(opts.quick);
    if opts.diagnostics {
        all.extend(diagnostic_cases());
    }
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| opts.filter.as_deref().is_none_or(|f| c.name.contains(f)))
        .collect();
    let mut dead: Option<String> = None;
    for (i, case) in selected.iter().enumerate() {
        let m = if let Some(why) = &dead {
            failed(case, format!("skipped: {why}"))
        } else {
            let ctx = Ctx {
                gpu: &gpu,
                opts,
                seed: splitmix(opts.seed ^ (i as u64 + 1)),
                rotate_bytes: if case.name.ends_with(L2_RESIDENT_SUFFIX) {
                    1
                } else {
                    rotate_bytes
                },
            };
            let tc = Instant::now();
            match run_case(&ctx, case) {
                Ok(o) => {
                    let ok = o.nonfinite == 0 && o.rel_err.is_finite() && o.rel_err <= o.tolerance;
                    let mut notes = o.notes;
                    if o.nonfinite > 0 {
                        notes = format!(
                            "{} NON-FINITE outputs (unwritten or NaN/Inf); {notes}",
                            o.nonfinite
                        );
                    }
                    if o.timing.graph_median.is_finite() {
                        notes.push_str(&format!(
                            "; graph replay {:.2} us/launch ({} launches x {GRAPH_REPLAYS} replays)",
                            o.timing.graph_median * 1e6,
                            o.timing.graph_launches
                        ));
                    }
                    if let Some(ge) = &o.timing.graph_error {
                        notes.push_str(&format!("; graph replay failed: {ge}"));
                    }
                    notes.push_str(&format!("; case wall {:.1} s", tc.elapsed().as_secs_f64()));
                    Measurement {
                        case: case.name.clone(),
                        category: case.category.to_string(),
                        op: case.op.clone(),
                        impl_name: case.impl_name.to_string(),
                        median_s: o.timing.median,
                        min_s: o.timing.min,
                        max_s: o.timing.max,
                        launches: o.timing.launches,
                        graph_median_s: o.timing.graph_median,
                        rel_err: o.rel_err,
                        ok,
                        flops: case.flops(),
                        bytes: case.bytes(),
                        notes,
                    }
                }
                Err(e) => {
                    let mut why = e.to_string();
                    let sticky = is_sticky(&e)
                        || gpu.sync().err().is_some_and(|e2| {
                            why = format!("{why}; then {e2}");
                            is_sticky(&e2)
                        });
                    if sticky {
                        dead = Some(format!("CUDA context lost in case {}: {why}", case.name));
                        log(&format!("FATAL: {}", dead.as_deref().unwrap_or("")));
                    }
                    failed(case, why)
                }
            }
        };
        let rate = if m.flops > 0.0 {
            format!("{:8.1} TFLOP/s", m.tflops())
        } else {
            format!("{:8.0} GB/s   ", m.gbps())
        };
        log(&format!(
            "[{:>2}/{}] {:<44} {:>10.1} us {} rel_err {:.2e} {}{}",
            i + 1,
            selected.len(),
            m.case,
            m.median_s * 1e6,
            rate,
            m.rel_err,
            if m.ok { "ok" } else { "FAIL" },
            if m.ok {
                String::new()
            } else {
                format!(" ({})", m.notes)
            }
        ));
        if m.ok && m.case == "cublas_gemm_m8192_n8192_k8192" {
            res.gemm_ceiling_tflops = Some(m.tflops());
        }
        if m.ok && m.op == format!("copy bytes={}", 1usize << 30) {
            res.copy_ceiling_gbps = Some(m.gbps());
        }
        res.measurements.push(m);
        res.wall_seconds = t0.elapsed().as_secs_f64();
        let last = res.measurements.last().cloned();
        if let Some(last) = last {
            on_case(&res, &last);
        }
    }
    res.wall_seconds = t0.elapsed().as_secs_f64();
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_list_covers_the_brief() {
        let cs = cases(false);
        let count = |cat: &str| cs.iter().filter(|c| c.category == cat).count();
        let cublas_gemm = cs
            .iter()
            .filter(|c| matches!(c.kind, CaseKind::Gemm { ours: false, .. }))
            .count();
        assert!(cublas_gemm >= 12);
        assert!(count("batched") >= 5);
        assert!(
            cs.iter()
                .filter(|c| matches!(c.kind, CaseKind::Gemm { ours: true, .. }))
                .count()
                >= 4
        );
        assert!(count("attention_unfused") >= 4);
        assert!(count("attention_fused") >= 8);
        assert!(count("decode") >= 4);
        assert!(count("copy") >= 3);
        let names: std::collections::HashSet<_> = cs.iter().map(|c| &c.name).collect();
        assert_eq!(names.len(), cs.len(), "case names are unique");
        for c in &cs {
            assert!(crate::CATEGORIES.contains(&c.category));
        }
    }

    #[test]
    fn op_spec_grammar() {
        assert_eq!(
            Case::gemm(4096, 4096, 4096, false).op,
            "gemm m=4096 n=4096 k=4096 dtype=bf16"
        );
        assert_eq!(
            Case::bmm(8, 512, 14336, 4096).op,
            "bmm batch=8 m=512 n=14336 k=4096 dtype=bf16"
        );
        assert_eq!(
            Case::fa2(1, 32, 1024, 128, true).op,
            "attention b=1 h=32 n=1024 d=128 causal=1 impl=fa2"
        );
        assert_eq!(
            Case::unfused(1, 32, 1024, 128).op,
            "attention_unfused b=1 h=32 n=1024 d=128 scores=fp32"
        );
        // That every op spec parses with the model's grammar is checked where the model is:
        // the root crate's tests/cuda_suite.rs.
        let diag = diagnostic_cases();
        assert!(diag.iter().all(|c| c.category == DIAGNOSTIC));
        let names: std::collections::HashSet<_> = cases(false)
            .iter()
            .chain(&diag)
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names.len(), cases(false).len() + diag.len());
        assert_eq!(
            Case::decode(1, 32, 8, 1024, 128).op,
            "decode_attention b=1 hq=32 hkv=8 l=1024 d=128"
        );
        assert_eq!(Case::copy(1 << 30).op, "copy bytes=1073741824");
        assert_eq!(Case::copy(1 << 30).name, "copy_dtod_1GiB");
    }

    #[test]
    fn sampling_and_chunks() {
        let s = sample_indices(1000, 10, 7);
        assert_eq!(s.len(), 10);
        assert_eq!(s[0], 0);
        assert_eq!(*s.last().unwrap(), 999);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_indices(5, 64, 1), vec![0, 1, 2, 3, 4]);
        for (b, l) in [
            (1, 1024),
            (1, 32768),
            (16, 8192),
            (64, 1024),
            (64, 8192),
            (32, 32768),
            (3, 1000),
        ] {
            let ch = decode_chunk(b, 8, l, 132);
            assert!(
                (64..=1024).contains(&ch) && ch.is_multiple_of(32),
                "b={b} l={l} chunk={ch}"
            );
        }
        assert_eq!(decode_chunk(1, 8, 32768, 132), 1024);
    }

    #[test]
    fn date_format() {
        let (d, ts) = utc_now();
        assert_eq!(d.len(), 10);
        assert!(ts.starts_with(&d) && ts.ends_with('Z'));
    }

    #[test]
    fn no_gpu_is_a_clean_error() {
        // On machines without CUDA this must be NoGpu, never a panic.
        if let Err(e) = crate::gpu::check_libraries() {
            assert!(matches!(e, CudaError::NoGpu(_)));
            assert!(crate::run_suite(&SuiteOptions::default()).is_err());
        }
    }
}
