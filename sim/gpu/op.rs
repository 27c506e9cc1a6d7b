//! GPU operations, parsed from one-line specs.
//!
//! Grammar: an op name followed by `key=value` pairs separated by whitespace, keys in any order:
//!
//! ```text
//! gemm m=4096 n=4096 k=4096 [dtype=bf16] [impl=cublas|ideal]
//! bmm batch=8 m=512 n=14336 k=4096 [dtype=bf16] [impl=cublas|ideal]
//! attention b=8 h=16 n=4096 d=128 [m=4096] [causal=0|1] [impl=cudnn|flash|fa2|fa3] [dtype=bf16]
//! attention_unfused b=8 h=16 n=4096 d=128 [m=4096] [causal=0|1] [dtype=bf16] [scores=fp32]
//! decode_attention b=8 hq=32 hkv=8 l=4096 d=128 [dtype=bf16] [impl=cudnn|flash|ideal]
//! copy bytes=1073741824          (an integer, optionally with KiB/MiB/GiB/KB/MB/GB: bytes=1GiB)
//! softmax rows=65536 cols=4096 [dtype=bf16] [impl=torch|ideal]
//! add elems=1048576 [dtype=bf16] [impl=torch|ideal]
//! silu_mul|layernorm|rmsnorm rows=4096 cols=4096 [dtype=bf16] [impl=torch|ideal]
//! ```
//!
//! `dtype` is one of `bf16` (default), `fp16`, `fp8`, `tf32`, `fp32`. Attention is self-attention
//! (queries = keys = `n`) unless `m` gives a different key/value length; `causal` defaults to 0
//! (`1`, `true`, `yes` or `0`, `false`, `no`, any case). `impl` defaults to what PyTorch
//! dispatches ([`Impl::default_for`]: cuBLAS, cuDNN for bf16/fp16 attention and decode, ATen's
//! kernels; attention in other types `fa2`, or `fa3` for fp8, decode `ideal`); `impl=ours_fa2`,
//! the name the CUDA suite gives its own kernel, is an alias of `fa2`. `scores` is the element type
//! of the score matrix S that unfused attention writes to HBM and its softmax reads back (`bf16`,
//! `fp16` or `fp32`; default: the type the op writes its outputs in, bf16 for bf16/fp8 — the CUDA
//! suite's unfused kernels keep S in fp32, so its specs say `scores=fp32`); P, the softmax output
//! that the second GEMM reads, is always of the operand dtype. Head dimensions are limited to 256 (the largest FlashAttention-2/3
//! support). Errors name the bad key or value; parsing never panics.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Errors from parsing an op spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpParseError {
    /// The spec is empty.
    #[error("empty op spec")]
    Empty,
    /// The first word is not an op name.
    #[error("unknown op `{0}`; expected one of gemm, bmm, attention, attention_unfused, decode_attention, copy, softmax, add, silu_mul, layernorm, rmsnorm")]
    UnknownOp(String),
    /// A word is not of the form `key=value`.
    #[error("{op}: `{token}` is not a key=value pair")]
    NotKeyValue {
        /// The op name.
        op: String,
        /// The offending word.
        token: String,
    },
    /// A key the op does not take.
    #[error("{op}: unknown key `{key}` (accepted keys: {accepted})")]
    UnknownKey {
        /// The op name.
        op: String,
        /// The key.
        key: String,
        /// The keys this op takes.
        accepted: String,
    },
    /// A key given twice.
    #[error("{op}: key `{key}` given twice")]
    DuplicateKey {
        /// The op name.
        op: String,
        /// The key.
        key: String,
    },
    /// A required key is missing.
    #[error("{op}: missing key `{key}`")]
    MissingKey {
        /// The op name.
        op: String,
        /// The key.
        key: String,
    },
    /// A value does not parse or is out of range.
    #[error("{op}: bad value `{value}` for `{key}`: {expected}")]
    BadValue {
        /// The op name.
        op: String,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: String,
    },
}

/// Element datatype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// bfloat16 (2 bytes).
    Bf16,
    /// IEEE half (2 bytes).
    Fp16,
    /// 8-bit float (1 byte).
    Fp8,
    /// TensorFloat-32, stored as fp32 (4 bytes), multiplied on tensor cores.
    Tf32,
    /// fp32 (4 bytes), multiplied on CUDA cores.
    Fp32,
}

impl Dtype {
    /// Bytes per element.
    pub fn bytes(self) -> f64 {
        match self {
            Dtype::Bf16 | Dtype::Fp16 => 2.0,
            Dtype::Fp8 => 1.0,
            Dtype::Tf32 | Dtype::Fp32 => 4.0,
        }
    }

    /// Bytes per element of an op's output. fp8 GEMMs and attention write bf16, as cuBLASLt's
    /// fp8 GEMMs and FlashAttention-3's fp8 forward do; every other dtype writes itself.
    pub fn out_bytes(self) -> f64 {
        match self {
            Dtype::Fp8 => 2.0,
            d => d.bytes(),
        }
    }

    /// The type an op's outputs are written in (see [`Dtype::out_bytes`]): bf16 for fp8,
    /// otherwise the dtype itself.
    pub fn out_dtype(self) -> Dtype {
        match self {
            Dtype::Fp8 => Dtype::Bf16,
            d => d,
        }
    }

    /// The key of [`cascade_arch::GpuSpec::tensor_flops_per_clk_per_sm`] giving this dtype's
    /// dense matrix rate (`fp32_fma` for fp32: CUDA cores).
    pub fn spec_key(self) -> &'static str {
        match self {
            Dtype::Bf16 => "bf16",
            Dtype::Fp16 => "fp16",
            Dtype::Fp8 => "fp8",
            Dtype::Tf32 => "tf32",
            Dtype::Fp32 => "fp32_fma",
        }
    }

    /// Whether tensor cores multiply this dtype (all but fp32).
    pub fn on_tensor_cores(self) -> bool {
        self != Dtype::Fp32
    }

    /// The spec spelling.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bf16 => "bf16",
            Dtype::Fp16 => "fp16",
            Dtype::Fp8 => "fp8",
            Dtype::Tf32 => "tf32",
            Dtype::Fp32 => "fp32",
        }
    }
}

/// Which implementation of an op is modelled: the kernel a library launches (what PyTorch
/// dispatches on an H100/H200 with its defaults: [`Impl::default_for`]) or the best mapping the
/// model can find (`ideal`). The choice is part of the op, printed with it and in every report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impl {
    /// cuBLAS/cuBLASLt (GEMMs): its wgmma kernels when every leading dimension is 16-byte
    /// aligned, otherwise its `align1` `mma.sync` kernel with element-wide loads.
    Cublas,
    /// ATen's own kernels (softmax, norms, elementwise): one row per warp or per block.
    Torch,
    /// PyTorch's flash SDPA backend: FlashAttention-2 with its tile traits and split-KV
    /// heuristic.
    Flash,
    /// cuDNN's fused SDPA (`cudnn_generated_fort_native_sdpa_*`): on sm90 a one-warpgroup
    /// `wgmma` kernel with 64 × 128 tiles for prefill, an `mma.sync` (`wmma`) 16 × 128 kernel with
    /// a split-KV reduction for decode.
    Cudnn,
    /// FlashAttention-2 class (`mma.sync`, softmax not overlapped), best tile found.
    Fa2,
    /// FlashAttention-3 class (`wgmma`, softmax overlapped by ping-pong), best tile found.
    Fa3,
    /// The fastest mapping the model finds (no library's choice).
    Ideal,
}

/// The attention implementations were the first [`Impl`]s; the old name stays.
pub type AttnImpl = Impl;

impl Impl {
    /// The spec spelling.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Cublas => "cublas",
            Impl::Torch => "torch",
            Impl::Flash => "flash",
            Impl::Cudnn => "cudnn",
            Impl::Fa2 => "fa2",
            Impl::Fa3 => "fa3",
            Impl::Ideal => "ideal",
        }
    }

    /// What PyTorch 2.11 dispatches for an op (`op` is the spec's op name): cuBLAS for GEMMs;
    /// cuDNN for SDPA prefill and GQA decode on sm90 (measured: `scripts/gpu/
    /// default_dispatch.py` on the H200 profiled `F.scaled_dot_product_attention` with default
    /// settings launching `cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_*` for
    /// prefill and `..._sm80_flash_fprop_wmma_f16_knob_35_16x128x128_*` for decode); ATen's
    /// kernels for softmax, norms and elementwise ops.
    pub fn default_for(op: &str) -> Impl {
        match op {
            "gemm" | "bmm" => Impl::Cublas,
            "attention" | "decode_attention" => Impl::Cudnn,
            _ => Impl::Torch,
        }
    }

    /// The implementations an op accepts.
    pub fn accepted(op: &str) -> &'static [Impl] {
        match op {
            "gemm" | "bmm" => &[Impl::Cublas, Impl::Ideal],
            "attention" => &[Impl::Cudnn, Impl::Flash, Impl::Fa2, Impl::Fa3],
            "decode_attention" => &[Impl::Cudnn, Impl::Flash, Impl::Ideal],
            _ => &[Impl::Torch, Impl::Ideal],
        }
    }
}

/// Elementwise and row-wise ops as eager PyTorch runs them (one kernel each, SiLU·mul two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOp {
    /// `a + b` (`vectorized_elementwise_kernel` with `CUDAFunctor_add`).
    Add,
    /// `relu(a)` (`vectorized_elementwise_kernel`, `clamp_min`): OPT's FFN activation.
    Relu,
    /// `gelu(a)`, the erf form (`GeluCUDAKernelImpl`): GPT-style FFN activation.
    Gelu,
    /// `silu(a) * b`: a SiLU kernel, then a multiply kernel (eager PyTorch does not fuse them).
    SiluMul,
    /// `F.layer_norm` over the last dimension (`vectorized_layer_norm_kernel`).
    LayerNorm,
    /// `F.rms_norm` over the last dimension (the same kernel, RMS variant).
    RmsNorm,
    /// Rotary embeddings as Hugging Face's eager `apply_rotary_pos_emb` runs them on a strided
    /// view of the QKV projection (`rows` = tokens × heads, `cols` = head dimension):
    /// `x·cos`, `−x₂`, `cat(−x₂, x₁)`, `·sin`, `+` — five kernels.
    Rope,
    /// A copy out of a strided view (`k.transpose(1, 2)` into the KV cache):
    /// `direct_copy_kernel` through PyTorch's non-vectorized path.
    StridedCopy,
    /// An MoE router's top-`k` of each row of routing probabilities (`rows` tokens × `cols`
    /// experts), renormalised over the chosen experts, as vLLM's fused-MoE path runs it:
    /// `topk_softmax`'s selection (fp32 weights and int32 expert ids out) and
    /// `moe_align_block_size` (the tokens sorted by expert for the grouped GEMMs).
    TopK { k: u32 },
    /// An MoE layer's weighted combine: each token's `k` expert outputs summed (`rows` tokens
    /// × `cols` model dimension), vLLM's `moe_sum` (the gate weights are applied in the down
    /// projection's epilogue).
    MoeCombine { k: u32 },
}

/// One kernel of a [`RowOp`]: its name, elements read and written per element of the op,
/// and FP32-pipe and MUFU operations per element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowKernel {
    pub name: &'static str,
    pub reads: f64,
    pub writes: f64,
    pub fp32_ops: f64,
    pub sfu_ops: f64,
    /// Elements read per element from an operand every CTA shares (a broadcast `cos`/`sin`
    /// table): L2 traffic, fetched from HBM once.
    pub broadcast: f64,
    /// Whether each lane moves one element per access (PyTorch's non-vectorized
    /// `elementwise_kernel<128, 4>`, taken when an operand is strided or broadcast) rather than
    /// 16 bytes (`vectorized_elementwise_kernel`).
    pub per_element: bool,
}

impl RowOp {
    /// The kernels eager PyTorch launches (kernel names from `reports/crosscheck/h200/
    /// dev_kernels.csv`): `add` one binary kernel; SiLU·mul a unary SiLU kernel writing a
    /// temporary, then a binary multiply; the norms one `vectorized_layer_norm_kernel` that
    /// reads each row once from memory (its second pass re-reads the row from L1/L2) and writes
    /// it once. Per element: convert and add (1); SiLU `x / (1 + exp(−x))`: negate, add,
    /// multiply, convert (3) and exp and reciprocal (2 MUFU); layer norm's Welford update and
    /// normalization (8); RMS norm's square-accumulate and scale (5). MoE's top-k reads each
    /// row of `cols` probabilities and writes `k` fp32 weights and int32 ids (8 bytes each, as
    /// elements of `elem_bytes`), then sorts the ids (a kernel whose traffic is the ids); the
    /// combine reads `k` rows per row it writes.
    pub fn kernels(self, cols: u64, elem_bytes: f64) -> Vec<RowKernel> {
        const fn k(name: &'static str, reads: f64, fp32_ops: f64, sfu_ops: f64) -> RowKernel {
            RowKernel {
                name,
                reads,
                writes: 1.0,
                fp32_ops,
                sfu_ops,
                broadcast: 0.0,
                per_element: false,
            }
        }
        let k_ = |name: &'static str, reads: f64| k(name, reads, 1.0, 0.0);
        // A non-vectorized kernel: `reads` and `writes` per element of the op, `broadcast`
        // reads of a shared table.
        const fn s(name: &'static str, reads: f64, writes: f64, broadcast: f64) -> RowKernel {
            RowKernel {
                name,
                reads,
                writes,
                fp32_ops: writes,
                sfu_ops: 0.0,
                broadcast,
                per_element: true,
            }
        }
        const ADD: &[RowKernel] = &[k("add", 2.0, 1.0, 0.0)];
        // ReLU: a compare-select and the conversions (2); GELU `x·½(1 + erf(x/√2))`: multiply,
        // add, multiply, multiply and the conversions (6) and erf (1 MUFU-class op).
        const RELU: &[RowKernel] = &[k("relu", 1.0, 2.0, 0.0)];
        const GELU: &[RowKernel] = &[k("gelu", 1.0, 6.0, 1.0)];
        const SILU_MUL: &[RowKernel] = &[k("silu", 1.0, 3.0, 2.0), k("mul", 2.0, 1.0, 0.0)];
        const LAYER_NORM: &[RowKernel] = &[k("layernorm", 1.0, 8.0, 0.0)];
        const RMS_NORM: &[RowKernel] = &[k("rmsnorm", 1.0, 5.0, 0.0)];
        // x·cos reads the strided view and the broadcast table; −x₂ half of the view; cat both
        // halves; ·sin the (contiguous) rotated copy and the table: each non-vectorized. The add
        // of two contiguous tensors is vectorized.
        const ROPE: &[RowKernel] = &[
            s("rope_mul_cos", 1.0, 1.0, 1.0),
            s("rope_neg", 0.5, 0.5, 0.0),
            s("rope_cat", 1.0, 1.0, 0.0),
            s("rope_mul_sin", 1.0, 1.0, 1.0),
            k("rope_add", 2.0, 1.0, 0.0),
        ];
        const STRIDED_COPY: &[RowKernel] = &[s("strided_copy", 1.0, 1.0, 0.0)];
        let per_row = |elems: f64| elems / cols.max(1) as f64;
        match self {
            RowOp::Add => ADD.to_vec(),
            RowOp::Relu => RELU.to_vec(),
            RowOp::Gelu => GELU.to_vec(),
            RowOp::SiluMul => SILU_MUL.to_vec(),
            RowOp::LayerNorm => LAYER_NORM.to_vec(),
            RowOp::RmsNorm => RMS_NORM.to_vec(),
            RowOp::Rope => ROPE.to_vec(),
            RowOp::StridedCopy => STRIDED_COPY.to_vec(),
            RowOp::TopK { k } => {
                let ids = per_row(f64::from(k) * 4.0 / elem_bytes);
                vec![
                    RowKernel {
                        writes: 2.0 * ids,
                        fp32_ops: f64::from(k),
                        ..k_("topk_softmax", 1.0)
                    },
                    RowKernel {
                        reads: ids,
                        writes: ids,
                        ..k_("moe_align_block_size", 0.0)
                    },
                ]
            }
            RowOp::MoeCombine { k } => vec![RowKernel {
                fp32_ops: f64::from(k),
                ..k_("moe_sum", f64::from(k))
            }],
        }
    }

    /// Useful operations per element (the counts above, SiLU·mul's 4 without the conversions).
    pub fn flops_per_elem(self) -> f64 {
        match self {
            RowOp::Add => 1.0,
            RowOp::Relu => 1.0,
            RowOp::Gelu => 5.0,
            RowOp::SiluMul => 4.0,
            RowOp::LayerNorm => 8.0,
            RowOp::RmsNorm => 5.0,
            RowOp::Rope => 4.0,
            RowOp::StridedCopy => 0.0,
            RowOp::TopK { .. } => 0.0,
            RowOp::MoeCombine { k } => f64::from(k),
        }
    }

    /// The spec spelling.
    pub fn name(self) -> &'static str {
        match self {
            RowOp::Add => "add",
            RowOp::Relu => "relu",
            RowOp::Gelu => "gelu",
            RowOp::SiluMul => "silu_mul",
            RowOp::LayerNorm => "layernorm",
            RowOp::RmsNorm => "rmsnorm",
            RowOp::Rope => "rope",
            RowOp::StridedCopy => "strided_copy",
            RowOp::TopK { .. } => "topk",
            RowOp::MoeCombine { .. } => "moe_combine",
        }
    }
}

/// One GPU operation (one or more kernels).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GpuOp {
    /// `C[m,n] = A[m,k]·B[k,n]`, row-major (cuBLAS's kernels, or the best searched mapping).
    Gemm {
        /// Rows of A and C.
        m: u64,
        /// Columns of B and C.
        n: u64,
        /// Reduction length.
        k: u64,
        /// Operand dtype.
        dtype: Dtype,
        /// Implementation ([`Impl::accepted`]).
        imp: Impl,
    },
    /// `batch` independent GEMMs, each with its own A and B (MoE experts: `C[e] = A[e]·W[e]`).
    Bmm {
        /// Number of GEMMs.
        batch: u64,
        /// Rows of each A and C.
        m: u64,
        /// Columns of each B and C.
        n: u64,
        /// Reduction length.
        k: u64,
        /// Operand dtype.
        dtype: Dtype,
        /// Implementation ([`Impl::accepted`]).
        imp: Impl,
    },
    /// Fused attention forward (FlashAttention): `O = softmax(Q·Kᵀ/√d)·V` per (batch, head).
    Attention {
        /// Batch.
        b: u64,
        /// Heads.
        h: u64,
        /// Query length.
        n: u64,
        /// Key/value length (= `n` for self-attention).
        m: u64,
        /// Head dimension.
        d: u64,
        /// Causal mask (aligned to the bottom-right corner when `m != n`).
        causal: bool,
        /// Implementation.
        imp: AttnImpl,
        /// Operand dtype.
        dtype: Dtype,
    },
    /// Unfused attention: `S = Q·Kᵀ` to HBM, softmax, `O = P·V` (three kernels).
    AttentionUnfused {
        /// Element type of the scores S written by the first GEMM and read by the softmax.
        scores: Dtype,
        /// Batch.
        b: u64,
        /// Heads.
        h: u64,
        /// Query length.
        n: u64,
        /// Key/value length.
        m: u64,
        /// Head dimension.
        d: u64,
        /// Causal mask (applied in the softmax; the GEMMs compute every score).
        causal: bool,
        /// Operand dtype.
        dtype: Dtype,
    },
    /// Decode attention with grouped-query heads: one query per (batch, query head) against a
    /// KV cache of `l` positions per (batch, KV head).
    DecodeAttention {
        /// Batch.
        b: u64,
        /// Query heads.
        hq: u64,
        /// Key/value heads (divides `hq`).
        hkv: u64,
        /// KV-cache length.
        l: u64,
        /// Head dimension.
        d: u64,
        /// Operand dtype.
        dtype: Dtype,
        /// Implementation ([`Impl::accepted`]).
        imp: Impl,
    },
    /// Device-to-device copy of `bytes` bytes.
    Copy {
        /// Bytes copied.
        bytes: u64,
    },
    /// Row softmax of a `rows × cols` matrix.
    Softmax {
        /// Rows.
        rows: u64,
        /// Columns (softmax length).
        cols: u64,
        /// Element dtype.
        dtype: Dtype,
        /// Implementation ([`Impl::accepted`]).
        imp: Impl,
    },
    /// An elementwise or row-wise op over a `rows × cols` matrix (`add elems=N` is one row).
    Rowwise {
        /// Which op.
        kind: RowOp,
        /// Rows (normalized independently).
        rows: u64,
        /// Columns (the normalized dimension).
        cols: u64,
        /// Element dtype.
        dtype: Dtype,
        /// Implementation ([`Impl::accepted`]).
        imp: Impl,
    },
}

/// The largest element count ([`GpuOp::counts`]) the GPU models take: 2^53, up to which
/// every count and product of counts they form is exact in `f64` and fits in `u64`.
pub const MAX_COUNT: f64 = 9_007_199_254_740_992.0;

/// Largest head dimension accepted (FlashAttention-2/3 support head dimensions up to 256).
pub const MAX_HEAD_DIM: u64 = 256;

struct Fields<'a> {
    op: &'a str,
    map: BTreeMap<&'a str, &'a str>,
}

impl<'a> Fields<'a> {
    fn bad(&self, key: &str, value: &str, expected: &str) -> OpParseError {
        OpParseError::BadValue {
            op: self.op.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }

    fn raw(&self, key: &str) -> Result<&'a str, OpParseError> {
        self.map
            .get(key)
            .copied()
            .ok_or_else(|| OpParseError::MissingKey {
                op: self.op.to_string(),
                key: key.to_string(),
            })
    }

    fn pos_int(&self, key: &str, value: &str) -> Result<u64, OpParseError> {
        const EXPECTED: &str = "expected a positive integer";
        if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
            return Err(self.bad(key, value, EXPECTED));
        }
        match value.parse::<u64>() {
            Ok(0) => Err(self.bad(key, value, "must be > 0")),
            Ok(v) => Ok(v),
            Err(_) => Err(self.bad(key, value, "integer too large")),
        }
    }

    fn int(&self, key: &str) -> Result<u64, OpParseError> {
        let v = self.raw(key)?;
        self.pos_int(key, v)
    }

    fn opt_int(&self, key: &str) -> Result<Option<u64>, OpParseError> {
        match self.map.get(key) {
            Some(v) => self.pos_int(key, v).map(Some),
            None => Ok(None),
        }
    }

    fn bytes(&self, key: &str) -> Result<u64, OpParseError> {
        let v = self.raw(key)?;
        const UNITS: [(&str, u64); 6] = [
            ("KiB", 1 << 10),
            ("MiB", 1 << 20),
            ("GiB", 1 << 30),
            ("KB", 1_000),
            ("MB", 1_000_000),
            ("GB", 1_000_000_000),
        ];
        for (suffix, mul) in UNITS {
            if let Some(num) = v.strip_suffix(suffix) {
                let n = self.pos_int(key, num).map_err(|_| {
                    self.bad(
                        key,
                        v,
                        "expected a positive integer, optionally followed by KiB, MiB, GiB, KB, MB or GB",
                    )
                })?;
                return n
                    .checked_mul(mul)
                    .ok_or_else(|| self.bad(key, v, "integer too large"));
            }
        }
        self.pos_int(key, v).map_err(|e| match e {
            OpParseError::BadValue { expected, .. } if expected.starts_with("expected") => self
                .bad(
                key,
                v,
                "expected a positive integer, optionally followed by KiB, MiB, GiB, KB, MB or GB",
            ),
            e => e,
        })
    }

    fn dtype(&self) -> Result<Dtype, OpParseError> {
        match self.map.get("dtype") {
            None => Ok(Dtype::Bf16),
            Some(&v) => match v {
                "bf16" => Ok(Dtype::Bf16),
                "fp16" => Ok(Dtype::Fp16),
                "fp8" => Ok(Dtype::Fp8),
                "tf32" => Ok(Dtype::Tf32),
                "fp32" => Ok(Dtype::Fp32),
                _ => Err(self.bad("dtype", v, "expected one of bf16, fp16, fp8, tf32, fp32")),
            },
        }
    }

    /// The `scores` key of unfused attention (default: the output type of `dtype`).
    fn scores(&self, dtype: Dtype) -> Result<Dtype, OpParseError> {
        match self.map.get("scores") {
            None => Ok(dtype.out_dtype()),
            Some(&"bf16") => Ok(Dtype::Bf16),
            Some(&"fp16") => Ok(Dtype::Fp16),
            Some(&"fp32") => Ok(Dtype::Fp32),
            Some(&v) => Err(self.bad("scores", v, "expected one of bf16, fp16, fp32")),
        }
    }

    /// A boolean key: `1`, `true` or `yes` (any case) for true; `0`, `false` or `no` for
    /// false; absent is false.
    fn flag(&self, key: &str) -> Result<bool, OpParseError> {
        let Some(&v) = self.map.get(key) else {
            return Ok(false);
        };
        match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" => Ok(false),
            _ => Err(self.bad(key, v, "expected 1, true or yes, or 0, false or no")),
        }
    }

    /// The `impl` key: one of [`Impl::accepted`] for this op (default [`Impl::default_for`]);
    /// `ours_fa2`, the CUDA suite's name for its own kernel, is `fa2`.
    fn imp(&self) -> Result<Impl, OpParseError> {
        let accepted = Impl::accepted(self.op);
        let default = self.default_imp();
        let Some(&v) = self.map.get("impl") else {
            return Ok(default);
        };
        let v2 = if v == "ours_fa2" && self.op == "attention" {
            "fa2"
        } else {
            v
        };
        match accepted.iter().find(|i| i.name() == v2) {
            Some(Impl::Cudnn | Impl::Flash) if !self.sdpa_dtype() => Err(self.bad(
                "impl",
                v,
                "cuDNN's and FlashAttention-2's fused attention (PyTorch's SDPA) take bf16 or fp16 only",
            )),
            Some(&i) => Ok(i),
            None => {
                let names: Vec<&str> = accepted.iter().map(|i| i.name()).collect();
                Err(self.bad(
                    "impl",
                    v,
                    &format!(
                        "expected one of {} (default {})",
                        names.join(", "),
                        default.name()
                    ),
                ))
            }
        }
    }

    /// Whether the dtype is one PyTorch's SDPA backends (cuDNN, flash) take: bf16 or fp16.
    fn sdpa_dtype(&self) -> bool {
        matches!(self.dtype(), Ok(Dtype::Bf16 | Dtype::Fp16))
    }

    /// The default implementation: [`Impl::default_for`], except attention in a type PyTorch's
    /// SDPA backends do not take (fp32, tf32: PyTorch falls back to its math or efficient
    /// kernels, which are not modelled, so the FlashAttention-2-class search stands in; fp8:
    /// FlashAttention-3 class, which takes fp8) and decode in such a type (the search).
    fn default_imp(&self) -> Impl {
        match self.op {
            "attention" if !self.sdpa_dtype() => {
                if matches!(self.dtype(), Ok(Dtype::Fp8)) {
                    Impl::Fa3
                } else {
                    Impl::Fa2
                }
            }
            "decode_attention" if !self.sdpa_dtype() => Impl::Ideal,
            op => Impl::default_for(op),
        }
    }

    fn head_dim(&self) -> Result<u64, OpParseError> {
        let d = self.int("d")?;
        if d > MAX_HEAD_DIM {
            let v = self.raw("d")?;
            return Err(self.bad("d", v, "head dimension must be at most 256"));
        }
        Ok(d)
    }
}

impl GpuOp {
    /// Parses a one-line spec (see the module documentation for the grammar).
    pub fn parse(spec: &str) -> Result<GpuOp, OpParseError> {
        let mut words = spec.split_whitespace();
        let op = words.next().ok_or(OpParseError::Empty)?;
        let accepted: &[&str] = match op {
            "gemm" => &["m", "n", "k", "dtype", "impl"],
            "bmm" => &["batch", "m", "n", "k", "dtype", "impl"],
            "attention" => &["b", "h", "n", "m", "d", "causal", "impl", "dtype"],
            "attention_unfused" => &["b", "h", "n", "m", "d", "causal", "dtype", "scores"],
            "decode_attention" => &["b", "hq", "hkv", "l", "d", "dtype", "impl"],
            "copy" => &["bytes"],
            "softmax" => &["rows", "cols", "dtype", "impl"],
            "add" => &["elems", "dtype", "impl"],
            "silu_mul" | "layernorm" | "rmsnorm" | "rope" | "strided_copy" | "relu" | "gelu" => {
                &["rows", "cols", "dtype", "impl"]
            }
            "topk" | "moe_combine" => &["rows", "cols", "k", "dtype", "impl"],
            _ => return Err(OpParseError::UnknownOp(op.to_string())),
        };
        let mut map = BTreeMap::new();
        for token in words {
            let (key, value) = match token.split_once('=') {
                Some((k, v)) if !k.is_empty() => (k, v),
                _ => {
                    return Err(OpParseError::NotKeyValue {
                        op: op.to_string(),
                        token: token.to_string(),
                    })
                }
            };
            if !accepted.contains(&key) {
                return Err(OpParseError::UnknownKey {
                    op: op.to_string(),
                    key: key.to_string(),
                    accepted: accepted.join(", "),
                });
            }
            if map.insert(key, value).is_some() {
                return Err(OpParseError::DuplicateKey {
                    op: op.to_string(),
                    key: key.to_string(),
                });
            }
        }
        let f = Fields { op, map };
        let imp = f.imp()?;
        Ok(match op {
            "gemm" => GpuOp::Gemm {
                m: f.int("m")?,
                n: f.int("n")?,
                k: f.int("k")?,
                dtype: f.dtype()?,
                imp,
            },
            "bmm" => GpuOp::Bmm {
                batch: f.int("batch")?,
                m: f.int("m")?,
                n: f.int("n")?,
                k: f.int("k")?,
                dtype: f.dtype()?,
                imp,
            },
            "attention" => {
                let n = f.int("n")?;
                GpuOp::Attention {
                    b: f.int("b")?,
                    h: f.int("h")?,
                    n,
                    m: f.opt_int("m")?.unwrap_or(n),
                    d: f.head_dim()?,
                    causal: f.flag("causal")?,
                    imp,
                    dtype: f.dtype()?,
                }
            }
            "attention_unfused" => {
                let n = f.int("n")?;
                let dtype = f.dtype()?;
                GpuOp::AttentionUnfused {
                    scores: f.scores(dtype)?,
                    b: f.int("b")?,
                    h: f.int("h")?,
                    n,
                    m: f.opt_int("m")?.unwrap_or(n),
                    d: f.head_dim()?,
                    causal: f.flag("causal")?,
                    dtype,
                }
            }
            "decode_attention" => {
                let hq = f.int("hq")?;
                let hkv = f.int("hkv")?;
                if hkv > hq || hq % hkv != 0 {
                    let v = f.raw("hkv")?;
                    return Err(f.bad("hkv", v, "must divide hq"));
                }
                GpuOp::DecodeAttention {
                    b: f.int("b")?,
                    hq,
                    hkv,
                    l: f.int("l")?,
                    d: f.head_dim()?,
                    dtype: f.dtype()?,
                    imp,
                }
            }
            "copy" => GpuOp::Copy {
                bytes: f.bytes("bytes")?,
            },
            "softmax" => GpuOp::Softmax {
                rows: f.int("rows")?,
                cols: f.int("cols")?,
                dtype: f.dtype()?,
                imp,
            },
            "add" => GpuOp::Rowwise {
                kind: RowOp::Add,
                rows: 1,
                cols: f.int("elems")?,
                dtype: f.dtype()?,
                imp,
            },
            "silu_mul" | "layernorm" | "rmsnorm" | "rope" | "strided_copy" | "relu" | "gelu" => {
                GpuOp::Rowwise {
                    kind: match op {
                        "silu_mul" => RowOp::SiluMul,
                        "relu" => RowOp::Relu,
                        "gelu" => RowOp::Gelu,
                        "layernorm" => RowOp::LayerNorm,
                        "rope" => RowOp::Rope,
                        "strided_copy" => RowOp::StridedCopy,
                        _ => RowOp::RmsNorm,
                    },
                    rows: f.int("rows")?,
                    cols: f.int("cols")?,
                    dtype: f.dtype()?,
                    imp,
                }
            }
            "topk" | "moe_combine" => {
                let k = f.int("k")?;
                let cols = f.int("cols")?;
                let raw = f.raw("k")?;
                if op == "topk" && k > cols {
                    return Err(f.bad("k", raw, "top-k of a row needs k ≤ cols"));
                }
                let k = u32::try_from(k).map_err(|_| f.bad("k", raw, "at most 2^32 - 1"))?;
                GpuOp::Rowwise {
                    kind: if op == "topk" {
                        RowOp::TopK { k }
                    } else {
                        RowOp::MoeCombine { k }
                    },
                    rows: f.int("rows")?,
                    cols,
                    dtype: f.dtype()?,
                    imp,
                }
            }
            _ => unreachable!("op names were checked above"),
        })
    }

    /// The spec's op name (`gemm`, `attention`, …).
    pub fn name(&self) -> &'static str {
        match self {
            GpuOp::Gemm { .. } => "gemm",
            GpuOp::Bmm { .. } => "bmm",
            GpuOp::Attention { .. } => "attention",
            GpuOp::AttentionUnfused { .. } => "attention_unfused",
            GpuOp::DecodeAttention { .. } => "decode_attention",
            GpuOp::Copy { .. } => "copy",
            GpuOp::Softmax { .. } => "softmax",
            GpuOp::Rowwise { kind, .. } => kind.name(),
        }
    }

    /// The implementation modelled (`None` for unfused attention and copies: one each).
    pub fn imp(&self) -> Option<Impl> {
        match *self {
            GpuOp::Gemm { imp, .. }
            | GpuOp::Bmm { imp, .. }
            | GpuOp::Attention { imp, .. }
            | GpuOp::DecodeAttention { imp, .. }
            | GpuOp::Softmax { imp, .. }
            | GpuOp::Rowwise { imp, .. } => Some(imp),
            GpuOp::AttentionUnfused { .. } | GpuOp::Copy { .. } => None,
        }
    }

    /// The op with another implementation (unchanged where it has none).
    pub fn with_imp(mut self, new: Impl) -> GpuOp {
        match &mut self {
            GpuOp::Gemm { imp, .. }
            | GpuOp::Bmm { imp, .. }
            | GpuOp::Attention { imp, .. }
            | GpuOp::DecodeAttention { imp, .. }
            | GpuOp::Softmax { imp, .. }
            | GpuOp::Rowwise { imp, .. } => *imp = new,
            GpuOp::AttentionUnfused { .. } | GpuOp::Copy { .. } => {}
        }
        self
    }

    /// The widest global access (bytes, at most 16) that every GEMM operand's leading
    /// dimension allows: row-major `A[m,k]`, `B[k,n]`, `C[m,n]` have leading dimensions `k`,
    /// `n` and `n`; a row starts on a multiple of the access only if `ld × element bytes` is.
    /// 16 for other ops.
    pub fn vector_bytes(&self) -> u32 {
        let widest = |ld: u64, e: f64| {
            let bytes = (ld as f64 * e) as u64;
            (0..=4)
                .rev()
                .map(|p| 1u32 << p)
                .find(|&v| bytes.is_multiple_of(u64::from(v)))
                .unwrap_or(1)
        };
        match *self {
            GpuOp::Gemm { n, k, dtype, .. } | GpuOp::Bmm { n, k, dtype, .. } => {
                widest(k, dtype.bytes())
                    .min(widest(n, dtype.bytes()))
                    .min(widest(n, dtype.out_bytes()))
            }
            _ => 16,
        }
    }

    /// Whether cuBLAS runs this GEMM with narrow loads: `impl=cublas`, bf16 or fp16 operands
    /// (its recorded `align1`/`align2` kernels), a leading dimension not 16-byte aligned.
    pub fn cublas_narrow(&self) -> bool {
        self.imp() == Some(Impl::Cublas)
            && matches!(self.dtype(), Dtype::Bf16 | Dtype::Fp16)
            && self.vector_bytes() < 16
    }

    /// The op's datatype (`bf16` for copies, whose bytes have no type).
    pub fn dtype(&self) -> Dtype {
        match *self {
            GpuOp::Gemm { dtype, .. }
            | GpuOp::Bmm { dtype, .. }
            | GpuOp::Attention { dtype, .. }
            | GpuOp::AttentionUnfused { dtype, .. }
            | GpuOp::DecodeAttention { dtype, .. }
            | GpuOp::Softmax { dtype, .. }
            | GpuOp::Rowwise { dtype, .. } => dtype,
            GpuOp::Copy { .. } => Dtype::Bf16,
        }
    }

    /// The element counts the models multiply out (operand and output sizes, score matrices,
    /// softmax rows), each with its formula: all must stay within [`MAX_COUNT`].
    pub fn counts(&self) -> Vec<(&'static str, f64)> {
        let f = |x: u64| x as f64;
        match *self {
            GpuOp::Gemm { m, n, k, .. } => {
                vec![
                    ("m·k (A)", f(m) * f(k)),
                    ("k·n (B)", f(k) * f(n)),
                    ("m·n (C)", f(m) * f(n)),
                ]
            }
            GpuOp::Bmm { batch, m, n, k, .. } => vec![
                ("batch·m·k (A)", f(batch) * f(m) * f(k)),
                ("batch·k·n (B)", f(batch) * f(k) * f(n)),
                ("batch·m·n (C)", f(batch) * f(m) * f(n)),
            ],
            GpuOp::Attention { b, h, n, m, d, .. } => vec![
                ("b·h·n·d (Q, O)", f(b) * f(h) * f(n) * f(d)),
                ("b·h·m·d (K, V)", f(b) * f(h) * f(m) * f(d)),
                ("b·h·n·m (scores)", f(b) * f(h) * f(n) * f(m)),
            ],
            GpuOp::AttentionUnfused { b, h, n, m, d, .. } => vec![
                ("b·h·n·d (Q, O)", f(b) * f(h) * f(n) * f(d)),
                ("b·h·m·d (K, V)", f(b) * f(h) * f(m) * f(d)),
                ("b·h·n·m (scores)", f(b) * f(h) * f(n) * f(m)),
            ],
            GpuOp::DecodeAttention {
                b, hq, hkv, l, d, ..
            } => vec![
                ("b·hq·d (Q, O)", f(b) * f(hq) * f(d)),
                ("b·hkv·l·d (K, V)", f(b) * f(hkv) * f(l) * f(d)),
                ("b·hq·l (scores)", f(b) * f(hq) * f(l)),
            ],
            GpuOp::Copy { bytes } => vec![("bytes", f(bytes))],
            GpuOp::Softmax { rows, cols, .. } | GpuOp::Rowwise { rows, cols, .. } => {
                vec![("rows·cols", f(rows) * f(cols))]
            }
        }
    }

    /// Useful floating-point operations: `2mnk` per GEMM; `4·b·h·n·m·d` for attention (two
    /// matrix products), halved when causal (the FlashAttention benchmarks' convention); decode
    /// `4·b·hq·l·d`; softmax 5 per element (max, subtract, exp, sum, scale); copies 0. Softmax
    /// work inside attention is not counted (the usual TFLOP/s convention).
    pub fn flops(&self) -> f64 {
        let f = |x: u64| x as f64;
        match *self {
            GpuOp::Gemm { m, n, k, .. } => 2.0 * f(m) * f(n) * f(k),
            GpuOp::Bmm { batch, m, n, k, .. } => 2.0 * f(batch) * f(m) * f(n) * f(k),
            GpuOp::Attention {
                b,
                h,
                n,
                m,
                d,
                causal,
                ..
            }
            | GpuOp::AttentionUnfused {
                b,
                h,
                n,
                m,
                d,
                causal,
                ..
            } => {
                let full = 4.0 * f(b) * f(h) * f(n) * f(m) * f(d);
                if causal {
                    full / 2.0
                } else {
                    full
                }
            }
            GpuOp::DecodeAttention { b, hq, l, d, .. } => 4.0 * f(b) * f(hq) * f(l) * f(d),
            GpuOp::Copy { .. } => 0.0,
            GpuOp::Softmax { rows, cols, .. } => 5.0 * f(rows) * f(cols),
            GpuOp::Rowwise {
                kind, rows, cols, ..
            } => kind.flops_per_elem() * f(rows) * f(cols),
        }
    }

    /// Minimum device-memory traffic: every input read once and every output written once
    /// (outputs of fp8 ops are bf16, see [`Dtype::out_bytes`]). Unfused attention has the same
    /// minimum as fused attention; its extra traffic shows in the estimates.
    pub fn min_bytes(&self) -> f64 {
        let f = |x: u64| x as f64;
        match *self {
            GpuOp::Gemm { m, n, k, dtype, .. } => {
                (f(m) * f(k) + f(k) * f(n)) * dtype.bytes() + f(m) * f(n) * dtype.out_bytes()
            }
            GpuOp::Bmm {
                batch,
                m,
                n,
                k,
                dtype,
                ..
            } => {
                f(batch)
                    * ((f(m) * f(k) + f(k) * f(n)) * dtype.bytes()
                        + f(m) * f(n) * dtype.out_bytes())
            }
            GpuOp::Attention {
                b,
                h,
                n,
                m,
                d,
                dtype,
                ..
            }
            | GpuOp::AttentionUnfused {
                b,
                h,
                n,
                m,
                d,
                dtype,
                ..
            } => {
                let bh = f(b) * f(h);
                bh * f(d) * ((f(n) + 2.0 * f(m)) * dtype.bytes() + f(n) * dtype.out_bytes())
            }
            GpuOp::DecodeAttention {
                b,
                hq,
                hkv,
                l,
                d,
                dtype,
                ..
            } => {
                f(b) * f(d)
                    * (f(hq) * dtype.bytes()
                        + 2.0 * f(hkv) * f(l) * dtype.bytes()
                        + f(hq) * dtype.out_bytes())
            }
            GpuOp::Copy { bytes } => 2.0 * f(bytes),
            GpuOp::Softmax {
                rows, cols, dtype, ..
            } => f(rows) * f(cols) * 2.0 * dtype.bytes(),
            // Inputs once, the output once (SiLU·mul's temporary is not in the minimum), and
            // the norms' weights (layer norm: weight and bias).
            GpuOp::Rowwise {
                kind,
                rows,
                cols,
                dtype,
                ..
            } => {
                let e = f(rows) * f(cols);
                let weights = match kind {
                    RowOp::Add
                    | RowOp::Relu
                    | RowOp::Gelu
                    | RowOp::SiluMul
                    | RowOp::Rope
                    | RowOp::StridedCopy
                    | RowOp::TopK { .. }
                    | RowOp::MoeCombine { .. } => 0.0,
                    RowOp::LayerNorm => 2.0 * f(cols),
                    RowOp::RmsNorm => f(cols),
                };
                match kind {
                    // The probabilities once; k weights and ids (4 bytes each) per row.
                    RowOp::TopK { k } => e * dtype.bytes() + f(rows) * f64::from(k) * 8.0,
                    // k rows in per row out.
                    RowOp::MoeCombine { k } => (f64::from(k) + 1.0) * e * dtype.bytes(),
                    _ => {
                        let ins = if matches!(kind, RowOp::Add | RowOp::SiluMul) {
                            2.0
                        } else {
                            1.0
                        };
                        ((ins + 1.0) * e + weights) * dtype.bytes()
                    }
                }
            }
        }
    }
}

impl fmt::Display for GpuOp {
    /// The canonical spec, which [`GpuOp::parse`] reads back to an equal op.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_keys(f)?;
        // The implementation is always written (attention writes it among its keys), so the
        // library whose kernel is modelled shows wherever the op does.
        match self.imp() {
            Some(i) if !matches!(self, GpuOp::Attention { .. }) => write!(f, " impl={}", i.name()),
            _ => Ok(()),
        }
    }
}

impl GpuOp {
    fn fmt_keys(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GpuOp::Gemm { m, n, k, dtype, .. } => {
                write!(f, "gemm m={m} n={n} k={k} dtype={}", dtype.name())
            }
            GpuOp::Bmm {
                batch,
                m,
                n,
                k,
                dtype,
                ..
            } => write!(
                f,
                "bmm batch={batch} m={m} n={n} k={k} dtype={}",
                dtype.name()
            ),
            GpuOp::Attention {
                b,
                h,
                n,
                m,
                d,
                causal,
                imp,
                dtype,
            } => {
                write!(f, "attention b={b} h={h} n={n} ")?;
                if m != n {
                    write!(f, "m={m} ")?;
                }
                write!(
                    f,
                    "d={d} causal={} impl={} dtype={}",
                    u8::from(causal),
                    imp.name(),
                    dtype.name()
                )
            }
            GpuOp::AttentionUnfused {
                b,
                h,
                n,
                m,
                d,
                causal,
                dtype,
                scores,
            } => {
                write!(f, "attention_unfused b={b} h={h} n={n} ")?;
                if m != n {
                    write!(f, "m={m} ")?;
                }
                write!(
                    f,
                    "d={d} causal={} dtype={}",
                    u8::from(causal),
                    dtype.name()
                )?;
                if scores != dtype.out_dtype() {
                    write!(f, " scores={}", scores.name())?;
                }
                Ok(())
            }
            GpuOp::DecodeAttention {
                b,
                hq,
                hkv,
                l,
                d,
                dtype,
                ..
            } => write!(
                f,
                "decode_attention b={b} hq={hq} hkv={hkv} l={l} d={d} dtype={}",
                dtype.name()
            ),
            GpuOp::Copy { bytes } => write!(f, "copy bytes={bytes}"),
            GpuOp::Softmax {
                rows, cols, dtype, ..
            } => {
                write!(f, "softmax rows={rows} cols={cols} dtype={}", dtype.name())
            }
            GpuOp::Rowwise {
                kind: RowOp::Add,
                rows,
                cols,
                dtype,
                ..
            } => write!(f, "add elems={} dtype={}", rows * cols, dtype.name()),
            GpuOp::Rowwise {
                kind: RowOp::TopK { k } | RowOp::MoeCombine { k },
                rows,
                cols,
                dtype,
                ..
            } => write!(
                f,
                "{} rows={rows} cols={cols} k={k} dtype={}",
                self.name(),
                dtype.name()
            ),
            GpuOp::Rowwise {
                kind,
                rows,
                cols,
                dtype,
                ..
            } => write!(
                f,
                "{} rows={rows} cols={cols} dtype={}",
                kind.name(),
                dtype.name()
            ),
        }
    }
}

impl std::str::FromStr for GpuOp {
    type Err = OpParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GpuOp::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> GpuOp {
        GpuOp::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        GpuOp::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_op() {
        assert_eq!(
            p("gemm m=4096 n=4096 k=4096 dtype=bf16"),
            GpuOp::Gemm {
                m: 4096,
                n: 4096,
                k: 4096,
                dtype: Dtype::Bf16,
                imp: Impl::Cublas
            }
        );
        assert_eq!(
            p("gemm k=3 m=1 n=2"),
            GpuOp::Gemm {
                m: 1,
                n: 2,
                k: 3,
                dtype: Dtype::Bf16,
                imp: Impl::Cublas
            }
        );
        assert_eq!(
            p("bmm batch=8 m=512 n=14336 k=4096 dtype=fp8"),
            GpuOp::Bmm {
                batch: 8,
                m: 512,
                n: 14336,
                k: 4096,
                dtype: Dtype::Fp8,
                imp: Impl::Cublas
            }
        );
        assert_eq!(
            p("attention b=8 h=16 n=4096 d=128 causal=1 impl=fa3"),
            GpuOp::Attention {
                b: 8,
                h: 16,
                n: 4096,
                m: 4096,
                d: 128,
                causal: true,
                imp: AttnImpl::Fa3,
                dtype: Dtype::Bf16
            }
        );
        match p("attention b=1 h=2 n=16 m=64 d=64") {
            GpuOp::Attention { m, causal, imp, .. } => {
                // PyTorch's default on sm90 is cuDNN's fused attention.
                assert_eq!((m, causal, imp), (64, false, AttnImpl::Cudnn));
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            p("attention_unfused b=1 h=2 n=512 d=64 dtype=fp16"),
            GpuOp::AttentionUnfused {
                m: 512,
                dtype: Dtype::Fp16,
                ..
            }
        ));
        assert_eq!(
            p("decode_attention b=4 hq=32 hkv=8 l=1024 d=128"),
            GpuOp::DecodeAttention {
                b: 4,
                hq: 32,
                hkv: 8,
                l: 1024,
                d: 128,
                dtype: Dtype::Bf16,
                imp: Impl::Cudnn
            }
        );
        assert_eq!(p("copy bytes=1048576"), GpuOp::Copy { bytes: 1 << 20 });
        assert_eq!(p("copy bytes=1GiB"), GpuOp::Copy { bytes: 1 << 30 });
        assert_eq!(p("copy bytes=2MB"), GpuOp::Copy { bytes: 2_000_000 });
        assert_eq!(
            p("softmax rows=10 cols=20 dtype=fp32"),
            GpuOp::Softmax {
                rows: 10,
                cols: 20,
                dtype: Dtype::Fp32,
                imp: Impl::Torch
            }
        );
        assert_eq!(p("  gemm   m=1\tn=2 k=3  dtype=tf32 ").dtype(), Dtype::Tf32);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "gemm m=1 n=2 k=3 dtype=fp8 impl=cublas",
            "gemm m=1 n=2 k=3 dtype=fp8 impl=ideal",
            "bmm batch=8 m=16 n=14336 k=4096 dtype=bf16 impl=cublas",
            "attention b=8 h=16 n=4096 d=128 causal=1 impl=fa3 dtype=bf16",
            "attention b=1 h=1 n=16 m=4096 d=64 causal=0 impl=fa2 dtype=fp16",
            "attention b=1 h=1 n=16 d=64 causal=0 impl=cudnn dtype=bf16",
            "attention_unfused b=1 h=2 n=512 d=64 causal=1 dtype=bf16",
            "attention_unfused b=1 h=32 n=1024 d=128 causal=0 dtype=bf16 scores=fp32",
            "attention_unfused b=1 h=2 n=64 d=64 causal=0 dtype=fp8 scores=fp16",
            "decode_attention b=1 hq=32 hkv=8 l=1024 d=128 dtype=bf16 impl=flash",
            "decode_attention b=1 hq=32 hkv=8 l=1024 d=128 dtype=fp32 impl=ideal",
            "copy bytes=1073741824",
            "softmax rows=10 cols=20 dtype=bf16 impl=torch",
            "add elems=1048576 dtype=bf16 impl=torch",
            "silu_mul rows=16 cols=14336 dtype=fp16 impl=torch",
            "layernorm rows=4096 cols=768 dtype=bf16 impl=ideal",
            "rmsnorm rows=1 cols=4096 dtype=fp32 impl=torch",
        ] {
            let op = p(s);
            assert_eq!(op.to_string(), s);
            assert_eq!(p(&op.to_string()), op);
        }
    }

    #[test]
    fn moe_routing_and_combine_ops() {
        let t = p("topk rows=1024 cols=8 k=2");
        assert_eq!(
            t.to_string(),
            "topk rows=1024 cols=8 k=2 dtype=bf16 impl=torch"
        );
        let GpuOp::Rowwise { kind, .. } = t else {
            panic!("{t:?}")
        };
        assert_eq!(kind, RowOp::TopK { k: 2 });
        // The probabilities once, 2 fp32 weights and 2 int32 ids a row.
        assert_eq!(t.min_bytes(), 1024.0 * 8.0 * 2.0 + 1024.0 * 2.0 * 8.0);
        let ks = kind.kernels(8, 2.0);
        assert_eq!(ks.len(), 2);
        // Per element of the 8-wide row: 2 weights + 2 ids of 4 bytes = 16 B = 8 bf16 elements.
        assert!((ks[0].writes - 1.0).abs() < 1e-12, "{}", ks[0].writes);
        let c = p("moe_combine rows=16 cols=4096 k=2");
        assert_eq!(c.min_bytes(), 3.0 * 16.0 * 4096.0 * 2.0);
        assert_eq!(c.flops(), 2.0 * 16.0 * 4096.0);
        assert!(GpuOp::parse("topk rows=4 cols=8 k=9")
            .unwrap_err()
            .to_string()
            .contains("k ≤ cols"));
        assert!(GpuOp::parse("topk rows=4 cols=8").is_err());
    }

    #[test]
    fn rowwise_ops_count_their_kernels_work_and_bytes() {
        let op = p("silu_mul rows=4 cols=8");
        let GpuOp::Rowwise { kind, .. } = op else {
            panic!("{op:?}")
        };
        assert_eq!(
            kind.kernels(8, 2.0)
                .iter()
                .map(|k| k.name)
                .collect::<Vec<_>>(),
            ["silu", "mul"]
        );
        assert_eq!(op.flops(), 4.0 * 32.0);
        // a and b read, out written, 2 bytes each (the temporary is not in the minimum).
        assert_eq!(op.min_bytes(), 3.0 * 32.0 * 2.0);
        assert_eq!(
            p("rmsnorm rows=4 cols=8").min_bytes(),
            (2.0 * 32.0 + 8.0) * 2.0
        );
        assert_eq!(p("add elems=10").min_bytes(), 60.0);
        assert!(err("add rows=1").contains("accepted keys: elems, dtype"));
        assert!(err("layernorm rows=0 cols=8").contains("rows"));
    }

    #[test]
    fn suite_spellings() {
        // The CUDA suite's own FlashAttention-2 kernel is an alias of fa2 (mma.sync).
        assert_eq!(
            p("attention b=1 h=32 n=1024 d=128 causal=1 impl=ours_fa2"),
            p("attention b=1 h=32 n=1024 d=128 causal=1 impl=fa2")
        );
        // Score type: defaults to the output type, fp32 on request.
        match p("attention_unfused b=1 h=32 n=1024 d=128") {
            GpuOp::AttentionUnfused { scores, .. } => assert_eq!(scores, Dtype::Bf16),
            o => panic!("{o:?}"),
        }
        match p("attention_unfused b=1 h=2 n=8 d=8 dtype=fp8") {
            GpuOp::AttentionUnfused { scores, .. } => assert_eq!(scores, Dtype::Bf16),
            o => panic!("{o:?}"),
        }
        match p("attention_unfused b=1 h=32 n=1024 d=128 scores=fp32") {
            GpuOp::AttentionUnfused { scores, dtype, .. } => {
                assert_eq!((scores, dtype), (Dtype::Fp32, Dtype::Bf16))
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(
            err("attention_unfused b=1 h=1 n=8 d=8 scores=fp8"),
            "attention_unfused: bad value `fp8` for `scores`: expected one of bf16, fp16, fp32"
        );
        assert!(err("attention b=1 h=1 n=8 d=8 scores=fp32").contains("unknown key `scores`"));
    }

    #[test]
    fn errors_name_the_key_or_value() {
        assert_eq!(err(""), "empty op spec");
        assert_eq!(err("   "), "empty op spec");
        assert!(err("gemmm m=1").starts_with("unknown op `gemmm`"));
        assert_eq!(err("gemm m=1 n=2"), "gemm: missing key `k`");
        assert_eq!(
            err("gemm m=1 n=2 k=3 x=4"),
            "gemm: unknown key `x` (accepted keys: m, n, k, dtype, impl)"
        );
        assert_eq!(err("gemm m=1 m=2 n=2 k=3"), "gemm: key `m` given twice");
        assert_eq!(
            err("gemm m=abc n=2 k=3"),
            "gemm: bad value `abc` for `m`: expected a positive integer"
        );
        assert_eq!(
            err("gemm m=0 n=2 k=3"),
            "gemm: bad value `0` for `m`: must be > 0"
        );
        assert_eq!(
            err("gemm m=-1 n=2 k=3"),
            "gemm: bad value `-1` for `m`: expected a positive integer"
        );
        assert_eq!(
            err("gemm m=99999999999999999999999 n=2 k=3"),
            "gemm: bad value `99999999999999999999999` for `m`: integer too large"
        );
        assert_eq!(err("gemm m=1 n=2 k"), "gemm: `k` is not a key=value pair");
        assert_eq!(err("gemm =1 n=2 k=3"), "gemm: `=1` is not a key=value pair");
        assert_eq!(
            err("gemm m=1 n=2 k=3 dtype=int8"),
            "gemm: bad value `int8` for `dtype`: expected one of bf16, fp16, fp8, tf32, fp32"
        );
        assert_eq!(
            err("attention b=1 h=1 n=8 d=8 causal=2"),
            "attention: bad value `2` for `causal`: expected 1, true or yes, or 0, false or no"
        );
        assert_eq!(
            err("attention b=1 h=1 n=8 d=8 impl=fa1"),
            "attention: bad value `fa1` for `impl`: expected one of cudnn, flash, fa2, fa3 (default cudnn)"
        );
        assert_eq!(
            err("attention b=1 h=1 n=8 d=512"),
            "attention: bad value `512` for `d`: head dimension must be at most 256"
        );
        assert_eq!(
            err("decode_attention b=1 hq=32 hkv=5 l=8 d=8"),
            "decode_attention: bad value `5` for `hkv`: must divide hq"
        );
        assert!(err("copy bytes=1.5GiB").contains("optionally followed by KiB"));
        assert!(err("copy bytes=GiB").contains("for `bytes`"));
        assert_eq!(
            err("copy bytes=1 dtype=bf16"),
            "copy: unknown key `dtype` (accepted keys: bytes)"
        );
        assert!(err("copy bytes=99999999999GiB").contains("too large"));
        assert_eq!(err("softmax rows=1"), "softmax: missing key `cols`");
    }

    #[test]
    fn causal_reads_words_and_digits() {
        for (v, want) in [
            ("1", true),
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("yes", true),
            ("Yes", true),
            ("0", false),
            ("false", false),
            ("False", false),
            ("no", false),
            ("NO", false),
        ] {
            for op in ["attention", "attention_unfused"] {
                match p(&format!("{op} b=1 h=2 n=64 d=64 causal={v}")) {
                    GpuOp::Attention { causal, .. } | GpuOp::AttentionUnfused { causal, .. } => {
                        assert_eq!(causal, want, "{op} causal={v}")
                    }
                    o => panic!("{o:?}"),
                }
            }
        }
        for bad in ["2", "y", "truee", ""] {
            assert!(
                err(&format!("attention b=1 h=1 n=8 d=8 causal={bad}")).contains("for `causal`"),
                "{bad}"
            );
        }
    }

    #[test]
    fn flop_counts() {
        assert_eq!(p("gemm m=2 n=3 k=5").flops(), 60.0);
        assert_eq!(p("bmm batch=4 m=2 n=3 k=5").flops(), 240.0);
        let full = 4.0 * 8.0 * 16.0 * 4096.0 * 4096.0 * 128.0;
        assert_eq!(p("attention b=8 h=16 n=4096 d=128").flops(), full);
        assert_eq!(
            p("attention b=8 h=16 n=4096 d=128 causal=1 impl=fa3").flops(),
            full / 2.0
        );
        assert_eq!(p("attention_unfused b=8 h=16 n=4096 d=128").flops(), full);
        assert_eq!(
            p("decode_attention b=2 hq=32 hkv=8 l=1024 d=128").flops(),
            4.0 * 2.0 * 32.0 * 1024.0 * 128.0
        );
        assert_eq!(p("copy bytes=4096").flops(), 0.0);
        assert_eq!(p("softmax rows=2 cols=3").flops(), 30.0);
    }

    #[test]
    fn minimum_bytes() {
        assert_eq!(p("gemm m=2 n=3 k=5").min_bytes(), 2.0 * (10.0 + 15.0 + 6.0));
        assert_eq!(
            p("gemm m=2 n=3 k=5 dtype=fp8").min_bytes(),
            10.0 + 15.0 + 12.0
        );
        assert_eq!(p("copy bytes=1GiB").min_bytes(), 2.0 * (1u64 << 30) as f64);
        assert_eq!(
            p("attention b=1 h=1 n=4 d=2").min_bytes(),
            4.0 * 4.0 * 2.0 * 2.0
        );
        assert_eq!(
            p("decode_attention b=1 hq=4 hkv=2 l=10 d=2").min_bytes(),
            2.0 * (4.0 * 2.0 * 2.0 + 2.0 * 2.0 * 10.0 * 2.0)
        );
    }
}
