//! CPU float64 references for the measured kernels.
//!
//! Plain functions over `f32` inputs (the bf16 operands decoded exactly) that
//! return `f64` outputs. They compute only the requested output rows / heads,
//! so the suite can check large problems on a sampled subset of outputs
//! quickly. All tensors are row-major.

use rayon::prelude::*;

/// bf16 bit pattern -> f32 (exact).
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// f32 -> bf16 bit pattern, round to nearest even (NaN -> quiet NaN). Same
/// rounding as the device kernels.
pub fn f32_to_bf16(f: f32) -> u16 {
    let u = f.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return 0x7fc0;
    }
    let u = u.wrapping_add(0x7fff + ((u >> 16) & 1));
    (u >> 16) as u16
}

/// Decodes a slice of bf16 bit patterns.
pub fn bf16_slice_to_f32(v: &[u16]) -> Vec<f32> {
    v.iter().map(|&h| bf16_to_f32(h)).collect()
}

/// `‖out − ref‖₂ / ‖ref‖₂` in f64. NaN if any output is NaN or the lengths
/// differ; the absolute error norm if the reference is all zeros.
pub fn rel_err(out: &[f32], reference: &[f64]) -> f64 {
    if out.len() != reference.len() {
        return f64::NAN;
    }
    let mut num = 0.0f64;
    let mut den = 0.0f64;
    for (&o, &r) in out.iter().zip(reference) {
        let o = o as f64;
        if !o.is_finite() {
            return f64::NAN;
        }
        num += (o - r) * (o - r);
        den += r * r;
    }
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// Rows `rows` of `C = A · B` with `A: [m, k]`, `B: [k, n]` (only the listed
/// rows of `A` are read). Returns `rows.len() × n` values, f64 accumulation.
pub fn gemm_rows(a: &[f32], b: &[f32], k: usize, n: usize, rows: &[usize]) -> Vec<f64> {
    assert!(b.len() >= k * n, "B is smaller than k*n");
    let out: Vec<Vec<f64>> = rows
        .par_iter()
        .map(|&r| {
            let arow = &a[r * k..(r + 1) * k];
            let mut acc = vec![0.0f64; n];
            for (kk, &av) in arow.iter().enumerate() {
                if av == 0.0 {
                    continue;
                }
                let av = av as f64;
                let brow = &b[kk * n..(kk + 1) * n];
                for (c, &bv) in acc.iter_mut().zip(brow) {
                    *c += av * bv as f64;
                }
            }
            acc
        })
        .collect();
    out.concat()
}

/// Softmax attention for one head: `q, k, v: [n, d]`; returns the outputs of
/// query rows `rows` (`rows.len() × d`). `causal`: query `i` sees keys `0..=i`.
/// `scale` multiplies `q·k` before the softmax (usually `1/sqrt(d)`).
#[allow(clippy::too_many_arguments)]
pub fn attention_rows(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n: usize,
    d: usize,
    causal: bool,
    scale: f64,
    rows: &[usize],
) -> Vec<f64> {
    let out: Vec<Vec<f64>> = rows
        .par_iter()
        .map(|&i| {
            let keys = if causal { i + 1 } else { n };
            single_query(&q[i * d..(i + 1) * d], k, v, keys, d, scale)
        })
        .collect();
    out.concat()
}

/// GQA decode attention for one sequence: `q: [hq, d]` (one query token),
/// `k, v: [hkv, l, d]` (KV cache), query head `h` attends with KV head
/// `h / (hq / hkv)`. Returns `hq × d` outputs.
#[allow(clippy::too_many_arguments)]
pub fn decode_attention_heads(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    hq: usize,
    hkv: usize,
    l: usize,
    d: usize,
    scale: f64,
) -> Vec<f64> {
    assert!(
        hkv > 0 && hq.is_multiple_of(hkv),
        "hq must be a multiple of hkv"
    );
    let group = hq / hkv;
    let out: Vec<Vec<f64>> = (0..hq)
        .into_par_iter()
        .map(|h| {
            let kh = h / group;
            let kc = &k[kh * l * d..(kh + 1) * l * d];
            let vc = &v[kh * l * d..(kh + 1) * l * d];
            let qh = &q[h * d..(h + 1) * d];
            single_query(qh, kc, vc, l, d, scale)
        })
        .collect();
    out.concat()
}

/// One query row against `l` keys.
fn single_query(q: &[f32], k: &[f32], v: &[f32], l: usize, d: usize, scale: f64) -> Vec<f64> {
    let mut s: Vec<f64> = (0..l)
        .map(|j| {
            let kj = &k[j * d..(j + 1) * d];
            q.iter()
                .zip(kj)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
                * scale
        })
        .collect();
    softmax_in_place(&mut s);
    let mut o = vec![0.0f64; d];
    for (j, &p) in s.iter().enumerate() {
        let vj = &v[j * d..(j + 1) * d];
        for (oe, &ve) in o.iter_mut().zip(vj) {
            *oe += p * ve as f64;
        }
    }
    o
}

fn softmax_in_place(s: &mut [f64]) {
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for x in s.iter_mut() {
        *x = (*x - m).exp();
        sum += *x;
    }
    for x in s.iter_mut() {
        *x /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_round_trip_and_rounding() {
        for &x in &[0.0f32, 1.0, -2.5, 3.140625, 1e-3, -65504.0] {
            let h = f32_to_bf16(x);
            assert!((bf16_to_f32(h) - x).abs() <= x.abs() * 2f32.powi(-8));
        }
        // ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
        assert_eq!(f32_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
    }

    #[test]
    fn gemm_rows_small() {
        // A = [[1,2],[3,4],[5,6]], B = [[1,0,2],[0,1,3]]
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 2.0, 0.0, 1.0, 3.0];
        let c = gemm_rows(&a, &b, 2, 3, &[2, 0]);
        assert_eq!(c, vec![5.0, 6.0, 28.0, 1.0, 2.0, 8.0]);
    }

    #[test]
    fn attention_uniform_and_causal() {
        // all-zero q: uniform softmax -> mean of v rows (or prefix mean if causal)
        let n = 4;
        let d = 2;
        let q = vec![0.0f32; n * d];
        let k: Vec<f32> = (0..n * d).map(|i| i as f32).collect();
        let v: Vec<f32> = (0..n * d).map(|i| (i % 3) as f32).collect();
        let o = attention_rows(&q, &k, &v, n, d, false, 1.0, &[1]);
        let mean0 = (0..n).map(|j| v[j * d] as f64).sum::<f64>() / n as f64;
        assert!((o[0] - mean0).abs() < 1e-12);
        let oc = attention_rows(&q, &k, &v, n, d, true, 1.0, &[1]);
        assert!((oc[0] - (v[0] as f64 + v[2] as f64) / 2.0).abs() < 1e-12);
        // one dominant key
        let q = vec![10.0f32, 0.0];
        let k = vec![0.0f32, 0.0, 10.0, 0.0];
        let v = vec![1.0f32, 2.0, 3.0, 4.0];
        let o = attention_rows(&q, &k, &v, 2, 2, false, 1.0, &[0]);
        assert!((o[0] - 3.0).abs() < 1e-9 && (o[1] - 4.0).abs() < 1e-9);
    }

    #[test]
    fn decode_matches_attention_rows_per_head() {
        let (hq, hkv, l, d) = (4, 2, 5, 3);
        let q: Vec<f32> = (0..hq * d)
            .map(|i| ((i * 7) % 5) as f32 * 0.3 - 0.6)
            .collect();
        let k: Vec<f32> = (0..hkv * l * d)
            .map(|i| ((i * 3) % 7) as f32 * 0.2 - 0.5)
            .collect();
        let v: Vec<f32> = (0..hkv * l * d)
            .map(|i| ((i * 5) % 11) as f32 * 0.1)
            .collect();
        let o = decode_attention_heads(&q, &k, &v, hq, hkv, l, d, 0.5);
        for h in 0..hq {
            let kh = h / 2;
            // a length-1 "sequence" whose single query sees all l keys: put q in row 0 of an l-row q
            let mut qq = vec![0.0f32; l * d];
            qq[..d].copy_from_slice(&q[h * d..(h + 1) * d]);
            let r = attention_rows(
                &qq,
                &k[kh * l * d..(kh + 1) * l * d],
                &v[kh * l * d..(kh + 1) * l * d],
                l,
                d,
                false,
                0.5,
                &[0],
            );
            for e in 0..d {
                assert!((o[h * d + e] - r[e]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn rel_err_basics() {
        assert_eq!(rel_err(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert!(rel_err(&[f32::NAN, 2.0], &[1.0, 2.0]).is_nan());
        assert!((rel_err(&[2.0], &[1.0]) - 1.0).abs() < 1e-12);
    }
}
