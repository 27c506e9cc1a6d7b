//! What a launch hands the device, checked before it goes: device ranges that carry their
//! length and element type ([`Span`]), the kernels' launches ([`Launch`]) planned into a grid
//! and an argument list only after every buffer is found large enough for what the kernel
//! touches at that grid, and the same checks for cuBLAS GEMMs, copies, fills and downloads.
//!
//! Everything here is a pure function of lengths, element types and shapes (no cudarc, no
//! GPU), so the unit tests below cover every refusal on any machine. A refusal is a
//! [`CudaError::Invalid`] naming the kernel, the buffer, what it holds and what the launch
//! needs; nothing is launched.

use std::marker::PhantomData;

use crate::kernels::dyn_smem;
use crate::CudaError;

/// Element type of device data (bf16 travels as `u16` bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    Bf16,
    F32,
    U32,
    U64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bf16 => 2,
            DType::F32 | DType::U32 => 4,
            DType::U64 => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::Bf16 => "bf16",
            DType::F32 => "f32",
            DType::U32 => "u32",
            DType::U64 => "u64",
        }
    }
}

/// A range of device memory: the elements of a named buffer from `offset` to its end.
///
/// Only a device buffer makes one (`gpu::DBuf::span`), so `[ptr, ptr + len · size)` lies
/// inside that live allocation, and the lifetime keeps the span from outliving the buffer.
/// [`Span::at`] moves the start on; past the end the span is empty (and every check that
/// needs an element refuses it).
#[derive(Clone, Copy, Debug)]
pub struct Span<'a> {
    name: &'static str,
    dtype: DType,
    /// Elements of the whole buffer.
    total: usize,
    /// First element of the span (may exceed `total`: the span is then empty).
    offset: usize,
    base: u64,
    _buf: PhantomData<&'a ()>,
}

impl<'a> Span<'a> {
    /// The whole of a buffer of `total` elements at device address `base`.
    ///
    /// # Safety
    /// `base` is the start of a device allocation of at least `total · dtype.size()` bytes
    /// that lives as long as `'a`.
    pub(crate) unsafe fn new(name: &'static str, dtype: DType, total: usize, base: u64) -> Self {
        Span {
            name,
            dtype,
            total,
            offset: 0,
            base,
            _buf: PhantomData,
        }
    }

    /// A span over no device memory, for the checks' tests.
    #[cfg(test)]
    pub(crate) fn detached(name: &'static str, dtype: DType, total: usize) -> Span<'static> {
        Span {
            name,
            dtype,
            total,
            offset: 0,
            base: 0,
            _buf: PhantomData,
        }
    }

    /// The elements from `offset` (counted from this span's start) to the buffer's end.
    pub fn at(self, offset: usize) -> Span<'a> {
        Span {
            offset: self.offset.saturating_add(offset),
            ..self
        }
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Elements from the start of the span to the end of the buffer.
    pub fn len(&self) -> usize {
        self.total.saturating_sub(self.offset)
    }
    /// Device address of the span's first element (the buffer's end when it is empty).
    pub(crate) fn ptr(&self) -> u64 {
        self.base + (self.offset.min(self.total) * self.dtype.size()) as u64
    }
    /// Bytes from the start of the span to the end of the buffer.
    pub fn bytes(&self) -> usize {
        self.len() * self.dtype.size()
    }

    fn holds(&self) -> String {
        let from = if self.offset == 0 {
            String::new()
        } else {
            format!(" from element {} of {}", self.offset, self.total)
        };
        format!(
            "buffer {} holds {} {} elements{from}",
            self.name,
            self.len(),
            self.dtype.name()
        )
    }

    /// Refuses the span unless it is of `dtype` and holds the elements `need` counts.
    pub(crate) fn need(&self, op: &str, dtype: DType, need: &Count) -> Result<(), CudaError> {
        if self.dtype != dtype {
            return invalid(format!(
                "{op}: buffer {} holds {} elements, the launch takes {}",
                self.name,
                self.dtype.name(),
                dtype.name()
            ));
        }
        match need.value {
            Some(n) if n <= self.len() => Ok(()),
            Some(n) => invalid(format!(
                "{op}: {}, the launch needs {} = {n}",
                self.holds(),
                need.formula
            )),
            None => invalid(format!("{op}: {} overflows", need.formula)),
        }
    }
}

/// A number of elements with how it is counted (`m·k = 64·4096`), for the error messages.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Count {
    formula: String,
    value: Option<usize>,
}

/// The product of `factors`, described as `names = f1·f2·…` (`names` like `"m·k"`).
pub(crate) fn count(names: &str, factors: &[usize]) -> Count {
    let value = factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f));
    let shown = factors
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("·");
    let formula = if factors.len() > 1 {
        format!("{names} = {shown}")
    } else {
        names.to_string()
    };
    Count { formula, value }
}

/// A count with a free-form formula (`127·ld + 128·ctas = …`).
fn count_of(formula: String, value: Option<usize>) -> Count {
    Count { formula, value }
}

fn invalid<T>(msg: String) -> Result<T, CudaError> {
    Err(CudaError::Invalid(msg))
}

fn require(cond: bool, msg: impl FnOnce() -> String) -> Result<(), CudaError> {
    if cond {
        Ok(())
    } else {
        Err(CudaError::Invalid(msg()))
    }
}

/// A kernel's `int` argument.
fn int(op: &str, name: &str, v: usize) -> Result<i32, CudaError> {
    i32::try_from(v).map_err(|_| {
        CudaError::Invalid(format!(
            "{op}: {name} = {v} does not fit the kernel's 32-bit int"
        ))
    })
}

/// A grid within CUDA's limits (x < 2³¹, y and z ≤ 65535; none empty).
fn grid(op: &str, x: usize, y: usize, z: usize) -> Result<(u32, u32, u32), CudaError> {
    let dim = |axis: &str, v: usize, max: usize| -> Result<u32, CudaError> {
        require(v >= 1 && v <= max, || {
            format!("{op}: grid {axis} = {v} is outside 1..={max} (grid {x} x {y} x {z})")
        })?;
        Ok(v as u32)
    };
    Ok((
        dim("x", x, i32::MAX as usize)?,
        dim("y", y, 65535)?,
        dim("z", z, 65535)?,
    ))
}

/// One kernel argument, in the order and of the width of the kernel's parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum KArg {
    /// A device pointer (`T*`).
    P(u64),
    /// `int` (also `u32`).
    I(i32),
    /// `long long`.
    L(i64),
    /// `float`.
    F(f32),
    /// `u64` (unsigned long long).
    U(u64),
}

/// A launch that passed its checks: kernel, geometry, dynamic shared memory, arguments.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Planned {
    pub kernel: &'static str,
    pub grid: (u32, u32, u32),
    pub block: u32,
    pub smem: u32,
    pub args: Vec<KArg>,
}

/// Blocks of 256 threads for a grid-stride loop over `n` elements: enough to cover them, at
/// most 32 per SM.
fn stride_blocks(n: usize, sm_count: usize) -> usize {
    n.div_ceil(256).clamp(1, sm_count.max(1) * 32)
}

/// A launch of one of our kernels (`kernels/*.cu`), in the kernel's own terms. Shapes are
/// element counts; `bh` is batch × heads.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Launch<'a> {
    /// `fill_rand_bf16`: `n` uniform values in `[-scale, scale)` at `p`.
    FillRand {
        p: Span<'a>,
        n: usize,
        seed: u64,
        scale: f32,
    },
    /// `count_nonfinite_{bf16,f32}` (by `p`'s type): adds the non-finite values among `n`
    /// elements of `p` to the counter `count`.
    CountNonfinite {
        p: Span<'a>,
        n: usize,
        count: Span<'a>,
    },
    /// `chase_init`: the pointer chain over `lines` 128-byte lines (a power of two) of `p`.
    ChaseInit { p: Span<'a>, lines: usize },
    /// `chase_u32`: one thread follows `steps` links of the chain `chase_init` wrote over
    /// `lines` lines of `p`, from line `start_line`; the last position goes to `out`.
    Chase {
        p: Span<'a>,
        lines: usize,
        steps: usize,
        start_line: usize,
        out: Span<'a>,
    },
    /// `noop_dyn_smem`: `ctas` CTAs, one word each into `out`.
    NoopDynSmem { out: Span<'a>, ctas: usize },
    /// `store_tile_bf16`: `ctas` 128 × 128 tiles side by side in `out` of row stride `ld`.
    StoreTile {
        out: Span<'a>,
        ld: usize,
        ctas: usize,
    },
    /// `gemm_bf16_nn_128x128`: row-major `c[m,n] = a[m,k] · b[k,n]`.
    Gemm {
        a: Span<'a>,
        b: Span<'a>,
        c: Span<'a>,
        m: usize,
        n: usize,
        k: usize,
    },
    /// `attn_scores_nt`: `s[bh,n,n] = scale · q[bh,n,d] · k[bh,n,d]ᵀ` (f32 scores).
    AttnScores {
        q: Span<'a>,
        k: Span<'a>,
        s: Span<'a>,
        bh: usize,
        n: usize,
        d: usize,
        scale: f32,
    },
    /// `softmax_rows`: `p[rows,n] = softmax(s[rows,n])` row by row.
    Softmax {
        s: Span<'a>,
        p: Span<'a>,
        rows: usize,
        n: usize,
    },
    /// `attn_pv_d{64,128}`: `o[bh,n,d] = p[bh,n,n] · v[bh,n,d]`.
    AttnPv {
        p: Span<'a>,
        v: Span<'a>,
        o: Span<'a>,
        bh: usize,
        n: usize,
        d: usize,
    },
    /// `fa2_fwd_d{64,128}`: fused attention `o[bh,n,d]` of `q`, `k`, `v`.
    Fa2 {
        q: Span<'a>,
        k: Span<'a>,
        v: Span<'a>,
        o: Span<'a>,
        bh: usize,
        n: usize,
        d: usize,
        causal: bool,
        scale_log2: f32,
    },
    /// `decode_splitkv_g4_d128`: partial attention of `q[b,hq,d]` over `chunk` keys of
    /// `k`/`v[b,hkv,l,d]` per split into `po[b,hq,nsplit,d]`, `pm`/`pl[b,hq,nsplit]`.
    DecodeSplit {
        q: Span<'a>,
        k: Span<'a>,
        v: Span<'a>,
        po: Span<'a>,
        pm: Span<'a>,
        pl: Span<'a>,
        b: usize,
        hq: usize,
        hkv: usize,
        l: usize,
        d: usize,
        chunk: usize,
        nsplit: usize,
        scale: f32,
    },
    /// `decode_combine_d128`: merges the splits into `out[b,hq,d]`.
    DecodeCombine {
        po: Span<'a>,
        pm: Span<'a>,
        pl: Span<'a>,
        out: Span<'a>,
        b: usize,
        hq: usize,
        d: usize,
        nsplit: usize,
    },
}

/// Keys of one split of the decode kernel at most (its shared score array, `DEC_CMAX`).
pub(crate) const DECODE_MAX_CHUNK: usize = 1024;

impl Launch<'_> {
    /// The kernel this launches.
    pub fn kernel(&self) -> &'static str {
        match *self {
            Launch::FillRand { .. } => "fill_rand_bf16",
            Launch::CountNonfinite { p, .. } => {
                if p.dtype() == DType::F32 {
                    "count_nonfinite_f32"
                } else {
                    "count_nonfinite_bf16"
                }
            }
            Launch::ChaseInit { .. } => "chase_init",
            Launch::Chase { .. } => "chase_u32",
            Launch::NoopDynSmem { .. } => "noop_dyn_smem",
            Launch::StoreTile { .. } => "store_tile_bf16",
            Launch::Gemm { .. } => "gemm_bf16_nn_128x128",
            Launch::AttnScores { .. } => "attn_scores_nt",
            Launch::Softmax { .. } => "softmax_rows",
            Launch::AttnPv { d, .. } => {
                if d == 64 {
                    "attn_pv_d64"
                } else {
                    "attn_pv_d128"
                }
            }
            Launch::Fa2 { d, .. } => {
                if d == 64 {
                    "fa2_fwd_d64"
                } else {
                    "fa2_fwd_d128"
                }
            }
            Launch::DecodeSplit { .. } => "decode_splitkv_g4_d128",
            Launch::DecodeCombine { .. } => "decode_combine_d128",
        }
    }

    /// Checks the launch and plans it: every buffer of the element type the kernel takes and
    /// holding every element the kernel touches at this grid, shapes the kernel supports,
    /// `int` arguments in range, the grid within CUDA's limits. `sm_count` sizes the
    /// grid-stride kernels' grids.
    pub fn plan(&self, sm_count: usize) -> Result<Planned, CudaError> {
        use DType::{Bf16, F32, U32, U64};
        use KArg::{F, I, L, P, U};
        let op = self.kernel();
        let planned = |grid, block, args| Planned {
            kernel: op,
            grid,
            block,
            smem: dyn_smem(op),
            args,
        };
        let d_in = |d: usize| {
            require(d == 64 || d == 128, || {
                format!("{op}: head dimension d = {d}, the kernels take 64 or 128")
            })
        };
        match *self {
            Launch::FillRand { p, n, seed, scale } => {
                p.need(op, Bf16, &count("n", &[n]))?;
                let g = grid(op, stride_blocks(n, sm_count), 1, 1)?;
                Ok(planned(
                    g,
                    256,
                    vec![P(p.ptr()), L(n as i64), U(seed), F(scale)],
                ))
            }
            Launch::CountNonfinite { p, n, count: c } => {
                require(matches!(p.dtype(), Bf16 | F32), || {
                    format!(
                        "{op}: buffer {} holds {} elements, the scan takes bf16 or f32",
                        p.name(),
                        p.dtype().name()
                    )
                })?;
                p.need(op, p.dtype(), &count("n", &[n]))?;
                c.need(op, U64, &count("1 counter", &[1]))?;
                let g = grid(op, stride_blocks(n, sm_count), 1, 1)?;
                Ok(planned(g, 256, vec![P(p.ptr()), L(n as i64), P(c.ptr())]))
            }
            Launch::ChaseInit { p, lines } => {
                require(lines.is_power_of_two() && lines <= 1 << 26, || {
                    format!("{op}: lines = {lines} is not a power of two up to 2^26")
                })?;
                p.need(op, U32, &count("32·lines", &[32, lines]))?;
                let g = grid(op, lines.div_ceil(256).min(65535), 1, 1)?;
                Ok(planned(
                    g,
                    256,
                    vec![P(p.ptr()), I(int(op, "lines", lines)?)],
                ))
            }
            Launch::Chase {
                p,
                lines,
                steps,
                start_line,
                out,
            } => {
                require(lines.is_power_of_two() && lines <= 1 << 26, || {
                    format!("{op}: lines = {lines} is not a power of two up to 2^26")
                })?;
                require(start_line < lines, || {
                    format!("{op}: start line {start_line} is not one of the {lines} lines")
                })?;
                p.need(op, U32, &count("32·lines", &[32, lines]))?;
                out.need(op, U32, &count("1 word", &[1]))?;
                let start = int(op, "start word", 32 * start_line)?;
                Ok(planned(
                    grid(op, 1, 1, 1)?,
                    1,
                    vec![
                        P(p.ptr()),
                        I(int(op, "steps", steps)?),
                        I(start),
                        P(out.ptr()),
                    ],
                ))
            }
            Launch::NoopDynSmem { out, ctas } => {
                out.need(op, U32, &count("ctas", &[ctas]))?;
                Ok(planned(grid(op, ctas, 1, 1)?, 256, vec![P(out.ptr())]))
            }
            Launch::StoreTile { out, ld, ctas } => {
                require(ld >= 128 * ctas, || {
                    format!(
                        "{op}: row stride ld = {ld} is under 128·ctas = {}",
                        128 * ctas
                    )
                })?;
                let need = ld
                    .checked_mul(127)
                    .and_then(|x| x.checked_add(128usize.checked_mul(ctas)?));
                out.need(
                    op,
                    Bf16,
                    &count_of(format!("127·ld + 128·ctas = 127·{ld} + 128·{ctas}"), need),
                )?;
                Ok(planned(
                    grid(op, ctas, 1, 1)?,
                    256,
                    vec![P(out.ptr()), I(int(op, "ld", ld)?)],
                ))
            }
            Launch::Gemm { a, b, c, m, n, k } => {
                require(
                    m > 0
                        && n > 0
                        && k > 0
                        && m.is_multiple_of(128)
                        && n.is_multiple_of(128)
                        && k.is_multiple_of(32),
                    || format!("{op} needs m%128 == n%128 == k%32 == 0 (got {m}x{n}x{k})"),
                )?;
                a.need(op, Bf16, &count("m·k", &[m, k]))?;
                b.need(op, Bf16, &count("k·n", &[k, n]))?;
                c.need(op, Bf16, &count("m·n", &[m, n]))?;
                let g = grid(op, n / 128, m / 128, 1)?;
                Ok(planned(
                    g,
                    256,
                    vec![
                        P(a.ptr()),
                        P(b.ptr()),
                        P(c.ptr()),
                        I(int(op, "m", m)?),
                        I(int(op, "n", n)?),
                        I(int(op, "k", k)?),
                        L(0),
                        L(0),
                        L(0),
                    ],
                ))
            }
            Launch::AttnScores {
                q,
                k,
                s,
                bh,
                n,
                d,
                scale,
            } => {
                d_in(d)?;
                require(n > 0 && n.is_multiple_of(128), || {
                    format!("{op} needs n%128 == 0 (n = {n})")
                })?;
                q.need(op, Bf16, &count("bh·n·d", &[bh, n, d]))?;
                k.need(op, Bf16, &count("bh·n·d", &[bh, n, d]))?;
                s.need(op, F32, &count("bh·n·n", &[bh, n, n]))?;
                let g = grid(op, n / 128, n / 128, bh)?;
                Ok(planned(
                    g,
                    256,
                    vec![
                        P(q.ptr()),
                        P(k.ptr()),
                        P(s.ptr()),
                        I(int(op, "n", n)?),
                        I(int(op, "d", d)?),
                        F(scale),
                    ],
                ))
            }
            Launch::Softmax { s, p, rows, n } => {
                require(n > 0 && n.is_multiple_of(4), || {
                    format!("{op} needs n%4 == 0 (n = {n})")
                })?;
                s.need(op, F32, &count("rows·n", &[rows, n]))?;
                p.need(op, Bf16, &count("rows·n", &[rows, n]))?;
                let g = grid(op, rows, 1, 1)?;
                Ok(planned(
                    g,
                    256,
                    vec![P(s.ptr()), P(p.ptr()), I(int(op, "n", n)?)],
                ))
            }
            Launch::AttnPv { p, v, o, bh, n, d } => {
                d_in(d)?;
                require(n > 0 && n.is_multiple_of(128), || {
                    format!("{op} needs n%128 == 0 (n = {n})")
                })?;
                p.need(op, Bf16, &count("bh·n·n", &[bh, n, n]))?;
                v.need(op, Bf16, &count("bh·n·d", &[bh, n, d]))?;
                o.need(op, Bf16, &count("bh·n·d", &[bh, n, d]))?;
                let g = grid(op, 1, n / 128, bh)?;
                Ok(planned(
                    g,
                    256,
                    vec![P(p.ptr()), P(v.ptr()), P(o.ptr()), I(int(op, "n", n)?)],
                ))
            }
            Launch::Fa2 {
                q,
                k,
                v,
                o,
                bh,
                n,
                d,
                causal,
                scale_log2,
            } => {
                d_in(d)?;
                require(n > 0 && n.is_multiple_of(64), || {
                    format!("{op} needs n%64 == 0 (n = {n})")
                })?;
                for (t, name) in [(q, "q"), (k, "k"), (v, "v"), (o, "o")] {
                    t.need(op, Bf16, &count("bh·n·d", &[bh, n, d]))
                        .map_err(|e| with_role(e, name))?;
                }
                let g = grid(op, n / 64, bh, 1)?;
                Ok(planned(
                    g,
                    128,
                    vec![
                        P(q.ptr()),
                        P(k.ptr()),
                        P(v.ptr()),
                        P(o.ptr()),
                        I(int(op, "n", n)?),
                        F(scale_log2),
                        I(causal as i32),
                    ],
                ))
            }
            Launch::DecodeSplit {
                q,
                k,
                v,
                po,
                pm,
                pl,
                b,
                hq,
                hkv,
                l,
                d,
                chunk,
                nsplit,
                scale,
            } => {
                require(d == 128 && hkv > 0 && hq == 4 * hkv, || {
                    format!("{op} needs d = 128 and hq = 4·hkv (hq = {hq}, hkv = {hkv}, d = {d})")
                })?;
                require(l > 0 && (1..=DECODE_MAX_CHUNK).contains(&chunk), || {
                    format!(
                        "{op}: chunk = {chunk} keys per split is outside 1..={DECODE_MAX_CHUNK} \
                         (its shared score array), or l = {l} is empty"
                    )
                })?;
                require(nsplit == l.div_ceil(chunk), || {
                    format!(
                        "{op}: nsplit = {nsplit} splits of {chunk} keys do not cover l = {l} \
                         exactly once (ceil(l/chunk) = {})",
                        l.div_ceil(chunk)
                    )
                })?;
                q.need(op, Bf16, &count("b·hq·d", &[b, hq, d]))?;
                k.need(op, Bf16, &count("b·hkv·l·d", &[b, hkv, l, d]))?;
                v.need(op, Bf16, &count("b·hkv·l·d", &[b, hkv, l, d]))?;
                po.need(op, F32, &count("b·hq·nsplit·d", &[b, hq, nsplit, d]))?;
                pm.need(op, F32, &count("b·hq·nsplit", &[b, hq, nsplit]))?;
                pl.need(op, F32, &count("b·hq·nsplit", &[b, hq, nsplit]))?;
                let g = grid(op, nsplit, hkv, b)?;
                Ok(planned(
                    g,
                    128,
                    vec![
                        P(q.ptr()),
                        P(k.ptr()),
                        P(v.ptr()),
                        P(po.ptr()),
                        P(pm.ptr()),
                        P(pl.ptr()),
                        I(int(op, "hq", hq)?),
                        I(int(op, "hkv", hkv)?),
                        I(int(op, "l", l)?),
                        I(int(op, "chunk", chunk)?),
                        I(int(op, "nsplit", nsplit)?),
                        F(scale),
                    ],
                ))
            }
            Launch::DecodeCombine {
                po,
                pm,
                pl,
                out,
                b,
                hq,
                d,
                nsplit,
            } => {
                require(d == 128 && nsplit > 0, || {
                    format!("{op} needs d = 128 and a split (d = {d}, nsplit = {nsplit})")
                })?;
                po.need(op, F32, &count("b·hq·nsplit·d", &[b, hq, nsplit, d]))?;
                pm.need(op, F32, &count("b·hq·nsplit", &[b, hq, nsplit]))?;
                pl.need(op, F32, &count("b·hq·nsplit", &[b, hq, nsplit]))?;
                out.need(op, Bf16, &count("b·hq·d", &[b, hq, d]))?;
                let g = grid(op, hq, b, 1)?;
                Ok(planned(
                    g,
                    128,
                    vec![
                        P(po.ptr()),
                        P(pm.ptr()),
                        P(pl.ptr()),
                        P(out.ptr()),
                        I(int(op, "hq", hq)?),
                        I(int(op, "nsplit", nsplit)?),
                    ],
                ))
            }
        }
    }
}

/// Adds the argument's role to a refusal about a buffer (FA2 takes four of the same shape).
fn with_role(e: CudaError, role: &str) -> CudaError {
    match e {
        CudaError::Invalid(m) => CudaError::Invalid(format!("{m} (argument {role})")),
        e => e,
    }
}

/// Checks a row-major bf16 `c[m,n] = a[m,k] · b[k,n]` of `batch` GEMMs at strides `m·k`,
/// `k·n`, `m·n` for cuBLAS: every size in cuBLAS's 32-bit range, every buffer large enough.
pub(crate) fn check_cublas_gemm(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    a: &Span,
    b: &Span,
    c: &Span,
) -> Result<(), CudaError> {
    let op = "cublasGemmEx";
    for (name, v) in [("batch", batch), ("m", m), ("n", n), ("k", k)] {
        require(v >= 1, || format!("{op}: {name} = 0"))?;
        int(op, name, v)?;
    }
    a.need(op, DType::Bf16, &count("batch·m·k", &[batch, m, k]))?;
    b.need(op, DType::Bf16, &count("batch·k·n", &[batch, k, n]))?;
    c.need(op, DType::Bf16, &count("batch·m·n", &[batch, m, n]))?;
    Ok(())
}

/// Checks a copy of `bytes` bytes from `src` to `dst`.
pub(crate) fn check_copy(dst: &Span, src: &Span, bytes: usize) -> Result<(), CudaError> {
    for s in [dst, src] {
        require(s.bytes() >= bytes, || {
            format!(
                "cuMemcpyDtoDAsync: {} ({} bytes), the copy moves {bytes} bytes",
                s.holds(),
                s.bytes()
            )
        })?;
    }
    Ok(())
}

/// Checks an access to `n` elements of `dtype` at the start of `s` (`what`: the operation).
pub(crate) fn check_elems(what: &str, s: &Span, dtype: DType, n: usize) -> Result<(), CudaError> {
    s.need(what, dtype, &count("n", &[n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::FAMILIES;
    use DType::*;

    fn s(name: &'static str, dtype: DType, len: usize) -> Span<'static> {
        Span::detached(name, dtype, len)
    }

    fn refusal(r: Result<Planned, CudaError>) -> String {
        match r {
            Err(CudaError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// One launch of every kernel, each buffer exactly as large as the launch needs.
    fn exact() -> Vec<Launch<'static>> {
        let (m, n, k) = (256usize, 384, 64);
        let (bh, sn, d) = (3usize, 256, 128);
        let (b, hq, hkv, l, chunk) = (2usize, 8, 2, 1000usize, 256);
        let nsplit = l.div_ceil(chunk);
        vec![
            Launch::FillRand {
                p: s("x", Bf16, 1000),
                n: 1000,
                seed: 1,
                scale: 1.0,
            },
            Launch::CountNonfinite {
                p: s("x", Bf16, 1000),
                n: 1000,
                count: s("counter", U64, 1),
            },
            Launch::CountNonfinite {
                p: s("S", F32, 1000),
                n: 1000,
                count: s("counter", U64, 1),
            },
            Launch::ChaseInit {
                p: s("chain", U32, 32 * 64),
                lines: 64,
            },
            Launch::Chase {
                p: s("chain", U32, 32 * 64),
                lines: 64,
                steps: 100,
                start_line: 63,
                out: s("out", U32, 1),
            },
            Launch::NoopDynSmem {
                out: s("out", U32, 5),
                ctas: 5,
            },
            Launch::StoreTile {
                out: s("tiles", Bf16, 127 * 384 + 128 * 3),
                ld: 384,
                ctas: 3,
            },
            Launch::Gemm {
                a: s("A", Bf16, m * k),
                b: s("B", Bf16, k * n),
                c: s("C", Bf16, m * n),
                m,
                n,
                k,
            },
            Launch::AttnScores {
                q: s("Q", Bf16, bh * sn * d),
                k: s("K", Bf16, bh * sn * d),
                s: s("S", F32, bh * sn * sn),
                bh,
                n: sn,
                d,
                scale: 0.1,
            },
            Launch::Softmax {
                s: s("S", F32, bh * sn * sn),
                p: s("P", Bf16, bh * sn * sn),
                rows: bh * sn,
                n: sn,
            },
            Launch::AttnPv {
                p: s("P", Bf16, bh * sn * sn),
                v: s("V", Bf16, bh * sn * 64),
                o: s("O", Bf16, bh * sn * 64),
                bh,
                n: sn,
                d: 64,
            },
            Launch::AttnPv {
                p: s("P", Bf16, bh * sn * sn),
                v: s("V", Bf16, bh * sn * d),
                o: s("O", Bf16, bh * sn * d),
                bh,
                n: sn,
                d,
            },
            Launch::Fa2 {
                q: s("Q", Bf16, bh * sn * 64),
                k: s("K", Bf16, bh * sn * 64),
                v: s("V", Bf16, bh * sn * 64),
                o: s("O", Bf16, bh * sn * 64),
                bh,
                n: sn,
                d: 64,
                causal: true,
                scale_log2: 0.2,
            },
            Launch::Fa2 {
                q: s("Q", Bf16, bh * sn * d),
                k: s("K", Bf16, bh * sn * d),
                v: s("V", Bf16, bh * sn * d),
                o: s("O", Bf16, bh * sn * d),
                bh,
                n: sn,
                d,
                causal: false,
                scale_log2: 0.2,
            },
            Launch::DecodeSplit {
                q: s("q", Bf16, b * hq * 128),
                k: s("Kcache", Bf16, b * hkv * l * 128),
                v: s("Vcache", Bf16, b * hkv * l * 128),
                po: s("po", F32, b * hq * nsplit * 128),
                pm: s("pm", F32, b * hq * nsplit),
                pl: s("pl", F32, b * hq * nsplit),
                b,
                hq,
                hkv,
                l,
                d: 128,
                chunk,
                nsplit,
                scale: 0.1,
            },
            Launch::DecodeCombine {
                po: s("po", F32, b * hq * nsplit * 128),
                pm: s("pm", F32, b * hq * nsplit),
                pl: s("pl", F32, b * hq * nsplit),
                out: s("out", Bf16, b * hq * 128),
                b,
                hq,
                d: 128,
                nsplit,
            },
        ]
    }

    /// The same launch with buffer `i` (in the order the variant lists them) one element
    /// short, or of another element type.
    fn each_buffer(
        l: &Launch<'static>,
        f: impl Fn(Span<'static>) -> Span<'static>,
    ) -> Vec<Launch<'static>> {
        let mut out = Vec::new();
        macro_rules! vary {
            ($($field:ident),+) => {{
                $(
                    let mut c = *l;
                    if let Some(sp) = field_mut(&mut c, stringify!($field)) {
                        *sp = f(*sp);
                        out.push(c);
                    }
                )+
            }};
        }
        vary!(p, count, out, a, b, c, q, k, v, o, s, po, pm, pl);
        out
    }

    /// The span field `name` of a launch, if it has one.
    fn field_mut<'l>(l: &'l mut Launch<'static>, name: &str) -> Option<&'l mut Span<'static>> {
        use Launch::*;
        match (l, name) {
            (FillRand { p, .. }, "p")
            | (CountNonfinite { p, .. }, "p")
            | (ChaseInit { p, .. }, "p")
            | (Chase { p, .. }, "p")
            | (Softmax { p, .. }, "p")
            | (AttnPv { p, .. }, "p") => Some(p),
            (CountNonfinite { count, .. }, "count") => Some(count),
            (Chase { out, .. }, "out")
            | (NoopDynSmem { out, .. }, "out")
            | (StoreTile { out, .. }, "out")
            | (DecodeCombine { out, .. }, "out") => Some(out),
            (Gemm { a, .. }, "a") => Some(a),
            (Gemm { b, .. }, "b") => Some(b),
            (Gemm { c, .. }, "c") => Some(c),
            (AttnScores { q, .. }, "q") | (Fa2 { q, .. }, "q") | (DecodeSplit { q, .. }, "q") => {
                Some(q)
            }
            (AttnScores { k, .. }, "k") | (Fa2 { k, .. }, "k") | (DecodeSplit { k, .. }, "k") => {
                Some(k)
            }
            (AttnPv { v, .. }, "v") | (Fa2 { v, .. }, "v") | (DecodeSplit { v, .. }, "v") => {
                Some(v)
            }
            (AttnPv { o, .. }, "o") | (Fa2 { o, .. }, "o") => Some(o),
            (AttnScores { s, .. }, "s") | (Softmax { s, .. }, "s") => Some(s),
            (DecodeSplit { po, .. }, "po") | (DecodeCombine { po, .. }, "po") => Some(po),
            (DecodeSplit { pm, .. }, "pm") | (DecodeCombine { pm, .. }, "pm") => Some(pm),
            (DecodeSplit { pl, .. }, "pl") | (DecodeCombine { pl, .. }, "pl") => Some(pl),
            _ => None,
        }
    }

    #[test]
    fn exactly_sized_buffers_pass_and_every_kernel_is_covered() {
        let mut kernels = std::collections::BTreeSet::new();
        for l in exact() {
            let p = l
                .plan(132)
                .unwrap_or_else(|e| panic!("{}: {e}", l.kernel()));
            assert_eq!(p.kernel, l.kernel());
            assert_eq!(p.smem, dyn_smem(p.kernel));
            kernels.insert(p.kernel);
        }
        let all: std::collections::BTreeSet<_> = FAMILIES
            .iter()
            .flat_map(|f| f.kernels.iter().copied())
            .collect();
        assert_eq!(kernels, all, "a Launch for every kernel of every family");
    }

    #[test]
    fn a_buffer_one_element_short_is_refused_naming_it() {
        let mut refused = 0;
        for l in exact() {
            let short = |sp: Span<'static>| Span::detached(sp.name(), sp.dtype(), sp.len() - 1);
            for bad in each_buffer(&l, short) {
                let m = refusal(bad.plan(132));
                assert!(m.starts_with(bad.kernel()), "{m}");
                assert!(m.contains("buffer "), "{m}");
                assert!(m.contains("the launch needs"), "{m}");
                refused += 1;
            }
        }
        // every buffer of every launch above: 1 + 2 + 2 + 1 + 2 + 1 + 1 (utilities),
        // 3 (GEMM), 3 + 2 + 3 + 3 (unfused), 4 + 4 (FA2), 6 + 4 (decode)
        assert_eq!(refused, 42);
    }

    #[test]
    fn a_buffer_of_another_type_is_refused() {
        for l in exact() {
            let retyped = |sp: Span<'static>| {
                let other = if sp.dtype() == U32 { F32 } else { U32 };
                Span::detached(sp.name(), other, sp.len() * 4)
            };
            for bad in each_buffer(&l, retyped) {
                let m = refusal(bad.plan(132));
                assert!(
                    m.contains("elements, the launch takes") || m.contains("the scan takes"),
                    "{m}"
                );
            }
        }
    }

    #[test]
    fn refusals_name_buffer_sizes_and_shapes() {
        let m = refusal(
            Launch::Gemm {
                a: s("A", Bf16, 128 * 64 - 1),
                b: s("B", Bf16, 64 * 128),
                c: s("C", Bf16, 128 * 128),
                m: 128,
                n: 128,
                k: 64,
            }
            .plan(132),
        );
        assert_eq!(
            m,
            "gemm_bf16_nn_128x128: buffer A holds 8191 bf16 elements, the launch needs \
             m·k = 128·64 = 8192"
        );
        // a rotation set past the end of its buffer
        let a = s("A", Bf16, 4 * 8192);
        let m = refusal(
            Launch::Gemm {
                a: a.at(4 * 8192 - 100),
                b: s("B", Bf16, 64 * 128),
                c: s("C", Bf16, 128 * 128),
                m: 128,
                n: 128,
                k: 64,
            }
            .plan(132),
        );
        assert!(
            m.contains("buffer A holds 100 bf16 elements from element 32668 of 32768"),
            "{m}"
        );
        assert_eq!(a.at(40000).len(), 0);
        assert_eq!(a.at(40000).ptr(), (4 * 8192 * 2) as u64);
        let m = refusal(
            Launch::Gemm {
                a: s("A", Bf16, 1 << 20),
                b: s("B", Bf16, 1 << 20),
                c: s("C", Bf16, 1 << 20),
                m: 100,
                n: 128,
                k: 64,
            }
            .plan(132),
        );
        assert!(
            m.contains("m%128 == n%128 == k%32 == 0 (got 100x128x64)"),
            "{m}"
        );
        let m = refusal(
            Launch::Fa2 {
                q: s("Q", Bf16, 1 << 20),
                k: s("K", Bf16, 1 << 20),
                v: s("V", Bf16, 100),
                o: s("O", Bf16, 1 << 20),
                bh: 2,
                n: 128,
                d: 64,
                causal: false,
                scale_log2: 1.0,
            }
            .plan(132),
        );
        assert!(m.ends_with("(argument v)"), "{m}");
        let huge = usize::MAX / 2;
        let m = refusal(
            Launch::FillRand {
                p: s("x", Bf16, 10),
                n: huge,
                seed: 0,
                scale: 1.0,
            }
            .plan(132),
        );
        assert!(m.contains("holds 10 bf16"), "{m}");
        let m = refusal(
            Launch::Softmax {
                s: s("S", F32, 1 << 20),
                p: s("P", Bf16, 1 << 20),
                rows: usize::MAX / 4,
                n: 8,
            }
            .plan(132),
        );
        assert!(m.contains("rows·n = ") && m.ends_with("overflows"), "{m}");
    }

    #[test]
    fn shapes_grids_and_ints_outside_the_kernels_are_refused() {
        let e = exact();
        let find = |k: &str| *e.iter().find(|l| l.kernel() == k).unwrap();
        // the decode split's shared score array holds 1024 keys
        let mut l = find("decode_splitkv_g4_d128");
        if let Launch::DecodeSplit {
            chunk,
            nsplit,
            l: keys,
            ..
        } = &mut l
        {
            *chunk = 2048;
            *nsplit = keys.div_ceil(2048);
        }
        assert!(refusal(l.plan(132)).contains("outside 1..=1024"));
        let mut l = find("decode_splitkv_g4_d128");
        if let Launch::DecodeSplit { nsplit, .. } = &mut l {
            *nsplit += 1;
        }
        assert!(refusal(l.plan(132)).contains("do not cover l = 1000"));
        let mut l = find("decode_splitkv_g4_d128");
        if let Launch::DecodeSplit { hq, .. } = &mut l {
            *hq = 6;
        }
        assert!(refusal(l.plan(132)).contains("hq = 4·hkv"));
        let mut l = find("fa2_fwd_d64");
        if let Launch::Fa2 { d, .. } = &mut l {
            *d = 96;
        }
        assert!(refusal(l.plan(132)).contains("d = 96"));
        // grid y of the unfused P·V is n/128 ≤ 65535; z = bh ≤ 65535
        let big = 70_000 * 128;
        let m = refusal(
            Launch::AttnPv {
                p: s("P", Bf16, usize::MAX),
                v: s("V", Bf16, usize::MAX),
                o: s("O", Bf16, usize::MAX),
                bh: 1,
                n: big,
                d: 64,
            }
            .plan(132),
        );
        assert!(m.contains("grid y = 70000 is outside 1..=65535"), "{m}");
        let m = refusal(
            Launch::Gemm {
                a: s("A", Bf16, usize::MAX),
                b: s("B", Bf16, usize::MAX),
                c: s("C", Bf16, usize::MAX),
                m: 128,
                n: 1 << 31,
                k: 32,
            }
            .plan(132),
        );
        assert!(m.contains("n = 2147483648 does not fit"), "{m}");
        let m = refusal(
            Launch::NoopDynSmem {
                out: s("out", U32, 10),
                ctas: 0,
            }
            .plan(132),
        );
        assert!(m.contains("grid x = 0"), "{m}");
        let m = refusal(
            Launch::Chase {
                p: s("chain", U32, 32 * 64),
                lines: 64,
                steps: 1,
                start_line: 64,
                out: s("out", U32, 1),
            }
            .plan(132),
        );
        assert!(m.contains("start line 64"), "{m}");
        let m = refusal(
            Launch::StoreTile {
                out: s("t", Bf16, 1 << 20),
                ld: 128,
                ctas: 2,
            }
            .plan(132),
        );
        assert!(m.contains("ld = 128 is under 128·ctas = 256"), "{m}");
        let m = refusal(
            Launch::CountNonfinite {
                p: s("chain", U32, 100),
                n: 100,
                count: s("counter", U64, 1),
            }
            .plan(132),
        );
        assert!(m.contains("the scan takes bf16 or f32"), "{m}");
    }

    #[test]
    fn grids_follow_the_shapes() {
        for l in exact() {
            let p = l.plan(132).unwrap();
            let expect = match l {
                Launch::Gemm { m, n, .. } => (n / 128, m / 128, 1),
                Launch::AttnScores { bh, n, .. } => (n / 128, n / 128, bh),
                Launch::Softmax { rows, .. } => (rows, 1, 1),
                Launch::AttnPv { bh, n, .. } => (1, n / 128, bh),
                Launch::Fa2 { bh, n, .. } => (n / 64, bh, 1),
                Launch::DecodeSplit { b, hkv, nsplit, .. } => (nsplit, hkv, b),
                Launch::DecodeCombine { b, hq, .. } => (hq, b, 1),
                Launch::NoopDynSmem { ctas, .. } | Launch::StoreTile { ctas, .. } => (ctas, 1, 1),
                Launch::FillRand { n, .. } | Launch::CountNonfinite { n, .. } => {
                    (stride_blocks(n, 132), 1, 1)
                }
                Launch::ChaseInit { lines, .. } => (lines.div_ceil(256), 1, 1),
                Launch::Chase { .. } => (1, 1, 1),
            };
            let got = (p.grid.0 as usize, p.grid.1 as usize, p.grid.2 as usize);
            assert_eq!(got, expect, "{}", p.kernel);
        }
        assert_eq!(stride_blocks(1, 132), 1);
        assert_eq!(stride_blocks(1 << 30, 132), 132 * 32);
    }

    /// The argument list of every kernel's launch against the kernel's signature in
    /// `kernels/*.cu`: as many arguments, each of the parameter's width (pointers, `int` and
    /// `u32`, `long long`, `u64`, `float`).
    #[test]
    fn argument_lists_match_the_kernel_signatures() {
        let sources: String = FAMILIES
            .iter()
            .flat_map(|f| f.sources.iter().copied())
            .collect();
        for l in exact() {
            let p = l.plan(132).unwrap();
            // the definition: the occurrence on a `KERNEL` line
            let at = sources
                .match_indices(&format!(" {}(", p.kernel))
                .map(|(i, _)| i)
                .find(|&i| {
                    let line_start = sources[..i].rfind('\n').map_or(0, |j| j + 1);
                    sources[line_start..i].starts_with("KERNEL ")
                })
                .unwrap_or_else(|| panic!("no KERNEL definition of {}", p.kernel));
            let params = &sources[at + p.kernel.len() + 2..];
            let params = &params[..params.find(')').unwrap()];
            let kinds: Vec<&str> = params
                .split(',')
                .map(|param| {
                    let t = param.trim();
                    if t.contains('*') {
                        "P"
                    } else if t.starts_with("long long") {
                        "L"
                    } else if t.starts_with("u64") {
                        "U"
                    } else if t.starts_with("float") {
                        "F"
                    } else if t.starts_with("int") || t.starts_with("u32") {
                        "I"
                    } else {
                        panic!("{}: parameter type of `{t}`", p.kernel)
                    }
                })
                .collect();
            let ours: Vec<&str> = p
                .args
                .iter()
                .map(|a| match a {
                    KArg::P(_) => "P",
                    KArg::I(_) => "I",
                    KArg::L(_) => "L",
                    KArg::F(_) => "F",
                    KArg::U(_) => "U",
                })
                .collect();
            assert_eq!(ours, kinds, "{}({params})", p.kernel);
        }
    }

    #[test]
    fn cublas_copies_and_transfers_are_checked() {
        let (a, b, c) = (
            s("A", Bf16, 8 * 64 * 32),
            s("B", Bf16, 8 * 32 * 16),
            s("C", Bf16, 8 * 64 * 16),
        );
        check_cublas_gemm(8, 64, 16, 32, &a, &b, &c).unwrap();
        let m = match check_cublas_gemm(9, 64, 16, 32, &a, &b, &c) {
            Err(CudaError::Invalid(m)) => m,
            r => panic!("{r:?}"),
        };
        assert_eq!(
            m,
            "cublasGemmEx: buffer A holds 16384 bf16 elements, the launch needs \
             batch·m·k = 9·64·32 = 18432"
        );
        assert!(check_cublas_gemm(1, 64, 16, 0, &a, &b, &c).is_err());
        assert!(check_cublas_gemm(1, 1 << 31, 1, 1, &a, &b, &c).is_err());
        let f = s("C", F32, 1 << 20);
        assert!(check_cublas_gemm(1, 64, 16, 32, &a, &b, &f).is_err());

        let (dst, src) = (s("dst", Bf16, 512), s("src", Bf16, 1024));
        check_copy(&dst, &src, 1024).unwrap();
        check_copy(&dst.at(256), &src.at(256), 512).unwrap();
        assert!(check_copy(&dst.at(257), &src, 512).is_err());
        assert!(check_copy(&dst, &src, 1025).is_err());

        check_elems("download", &src, Bf16, 1024).unwrap();
        assert!(check_elems("download", &src.at(1), Bf16, 1024).is_err());
        assert!(check_elems("download", &src, U64, 1).is_err());
    }
}
