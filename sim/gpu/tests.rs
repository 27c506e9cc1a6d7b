//! Tests across the GPU models.

use super::*;
use cascade_arch::GpuSpec;

fn h100() -> GpuSpec {
    cascade_arch::preset("h100").unwrap().gpu.unwrap()
}

fn op(s: &str) -> GpuOp {
    GpuOp::parse(s).unwrap()
}

#[test]
fn compute_bound_gemm_8192() {
    let spec = h100();
    let e = estimate(&op("gemm m=8192 n=8192 k=8192"), &spec);
    let ideal = 2.0 * 8192f64.powi(3) / (989.4e12 * InstrClass::Wgmma.efficiency());
    // (the measured cuBLAS ceiling: 801.8 TFLOP/s)
    assert_eq!(e.bound, Bound::Compute, "{e:#?}");
    assert!(
        e.seconds >= ideal && e.seconds <= 1.08 * ideal,
        "{} vs ideal {ideal}",
        e.seconds
    );
    assert_eq!(e.mapping[0].instr, InstrClass::Wgmma);
}

#[test]
fn copy_1gib_is_memory_bound() {
    let spec = h100();
    let e = estimate(&op("copy bytes=1GiB"), &spec);
    // The measured copy ceiling (3003 GB/s, calibrated) is the achievable HBM bandwidth.
    let ideal = 2.0 * (1u64 << 30) as f64 / GpuParams::new(&spec).hbm_bw;
    assert_eq!(e.bound, Bound::Memory);
    assert!(
        e.seconds >= ideal && e.seconds <= 1.02 * ideal,
        "{} vs {ideal}",
        e.seconds
    );
    assert!((e.hbm_bytes - 2.0 * (1u64 << 30) as f64).abs() < 1.0);
}

#[test]
fn decode_gemm_is_memory_bound() {
    let spec = h100();
    for s in [
        "gemm m=1 n=4096 k=4096",
        "gemm m=1 n=14336 k=4096",
        "gemm m=16 n=4096 k=14336",
    ] {
        let o = op(s);
        let e = estimate(&o, &spec);
        assert_eq!(e.bound, Bound::Memory, "{s}: {e:#?}");
        // Never faster than the compulsory bytes at full HBM bandwidth.
        assert!(e.seconds > o.min_bytes() / 3.35e12, "{s}");
    }
}

#[test]
fn fa3_beats_fa2_and_causal_is_faster() {
    let spec = h100();
    let t = |s: &str| estimate(&op(s), &spec).seconds;
    let fa2 = t("attention b=2 h=16 n=4096 d=128 impl=fa2");
    let fa3 = t("attention b=2 h=16 n=4096 d=128 impl=fa3");
    let fa3c = t("attention b=2 h=16 n=4096 d=128 impl=fa3 causal=1");
    let unfused = t("attention_unfused b=2 h=16 n=4096 d=128");
    assert!(fa3 < fa2, "{fa3} {fa2}");
    assert!(fa3c < fa3, "{fa3c} {fa3}");
    assert!(fa2 < unfused, "{fa2} {unfused}");
}

#[test]
fn estimate_is_deterministic() {
    let spec = h100();
    for s in [
        "gemm m=4096 n=4096 k=4096",
        "bmm batch=8 m=64 n=14336 k=4096",
        "attention b=2 h=16 n=4096 d=128 causal=1 impl=fa3",
        "decode_attention b=8 hq=32 hkv=8 l=4096 d=128",
    ] {
        let a = estimate(&op(s), &spec);
        let b = estimate(&op(s), &spec);
        assert_eq!(a, b, "{s}");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let c1 = simulate(&op(s), &a.mapping, &spec).unwrap();
        let c2 = simulate(&op(s), &a.mapping, &spec).unwrap();
        assert_eq!(c1, c2, "{s}");
    }
}

#[test]
fn explicit_mappings_and_errors() {
    let spec = h100();
    let g = op("gemm m=4096 n=4096 k=4096");
    let m = GpuMapping {
        kernel: KernelKind::Gemm,
        cta_tile_m: 128,
        cta_tile_n: 256,
        cta_tile_k: 64,
        stages: 4,
        warps: 8,
        split_k: 1,
        swizzle: 8,
        instr: InstrClass::Wgmma,
        epilogue: Epilogue::Staged,
    };
    let e = predict(&g, std::slice::from_ref(&m), &spec).unwrap();
    assert_eq!(e.kernels.len(), 1);
    assert_eq!(e.kernels[0].ctas, 32 * 16);
    // mma.sync is slower than wgmma for the same tiles.
    let mma = GpuMapping {
        instr: InstrClass::MmaSync,
        ..m.clone()
    };
    assert!(predict(&g, &[mma], &spec).unwrap().seconds > e.seconds);
    // Too many stages for shared memory.
    let big = GpuMapping {
        cta_tile_m: 256,
        stages: 8,
        ..m.clone()
    };
    let err = predict(&g, &[big], &spec).unwrap_err().to_string();
    assert!(
        err.contains("stages") && err.contains("shared memory"),
        "{err}"
    );
    // A split-K GEMM needs its reduction kernel's mapping.
    let split = GpuMapping {
        split_k: 4,
        ..m.clone()
    };
    let err = predict(&g, &[split], &spec).unwrap_err().to_string();
    assert!(err.contains("splitk_reduce"), "{err}");
    // wgmma tiles come in 64-row warpgroup slices.
    let odd = GpuMapping {
        cta_tile_m: 96,
        ..m.clone()
    };
    let err = predict(&g, &[odd], &spec).unwrap_err().to_string();
    assert!(err.contains("cta_tile_m"), "{err}");
    // fp32 cannot use tensor cores.
    let err = predict(&op("gemm m=64 n=64 k=64 dtype=fp32"), &[m], &spec)
        .unwrap_err()
        .to_string();
    assert!(err.contains("instr"), "{err}");
    // Serialized estimates carry the mapping.
    let json = serde_json::to_string(&e).unwrap();
    assert!(json.contains("\"cta_tile_n\":256"), "{json}");
    assert!(json.contains("\"bound\":\"compute\""), "{json}");
}

#[test]
fn analytical_and_cycle_models_agree_on_the_suite() {
    let spec = h100();
    let mut worst = (0.0f64, "");
    let mut lines = Vec::new();
    for &s in SUITE {
        let o = op(s);
        let a = estimate(&o, &spec);
        let c = simulate(&o, &a.mapping, &spec).unwrap();
        let err = (a.seconds - c.seconds).abs() / a.seconds;
        assert!(c.events <= 2_000_000, "{s}: {} events", c.events);
        lines.push(format!(
            "{s:58} analytical {:10.3} us  cycle {:10.3} us  err {:5.2}%  {:?}  events {}",
            a.seconds * 1e6,
            c.seconds * 1e6,
            100.0 * err,
            a.bound,
            c.events
        ));
        if err > worst.0 {
            worst = (err, s);
        }
    }
    println!("{}", lines.join("\n"));
    println!(
        "max |analytical - cycle| / analytical = {:.2}% ({})",
        100.0 * worst.0,
        worst.1
    );
    // 5% held until the search took cuBLAS's 96- and 160-column tiles: the 1024³ GEMM's best
    // mapping is then 128 × 96 (88 CTAs, the last column of tiles ragged), where the two
    // models differ by 5.5%.
    assert!(worst.0 <= 0.06, "{worst:?}\n{}", lines.join("\n"));
}

/// Analytical vs cycle-level over many (not only the best) mappings of every suite op.
#[test]
#[ignore]
fn sweep_mappings() {
    use super::mapping::kernel_kinds;
    use super::search::candidates;
    let spec = h100();
    let hw = GpuParams::new(&spec);
    let mut errs: Vec<(f64, String)> = Vec::new();
    for &s in SUITE {
        let o = op(s);
        let best = estimate(&o, &spec);
        for (ki, (_, kind)) in kernel_kinds(&o, best.mapping[0].split_k).iter().enumerate() {
            let cands = candidates(&o, *kind);
            let step = (cands.len() / 25).max(1);
            for m in cands.iter().step_by(step) {
                let mut maps = best.mapping.clone();
                maps[ki] = m.clone();
                let Ok(plans) = super::plan::plan_op(&o, &maps, &hw) else {
                    continue;
                };
                let a = super::analytical::estimate_plans(&o, &plans, &hw);
                let c = super::cycle::simulate_plans(&plans, &hw);
                let e = (a.seconds - c.seconds) / a.seconds;
                errs.push((
                    e,
                    format!(
                        "{s} | k{ki} {m:?} | a {:.3} c {:.3}",
                        a.seconds * 1e6,
                        c.seconds * 1e6
                    ),
                ));
            }
        }
    }
    errs.sort_by(|a, b| a.0.abs().total_cmp(&b.0.abs()));
    let n = errs.len();
    let over5 = errs.iter().filter(|e| e.0.abs() > 0.05).count();
    let over10 = errs.iter().filter(|e| e.0.abs() > 0.10).count();
    for e in errs.iter().rev().take(25) {
        println!("{:+.3} {}", e.0, e.1);
    }
    println!(
        "n {n} median {:.4} p90 {:.4} p99 {:.4} >5% {over5} >10% {over10}",
        errs[n / 2].0.abs(),
        errs[n * 9 / 10].0.abs(),
        errs[n * 99 / 100].0.abs()
    );
}

#[test]
fn odd_shapes_and_dtypes_estimate_without_panicking() {
    let spec = h100();
    for s in [
        "gemm m=1 n=1 k=1",
        "gemm m=100 n=300 k=70 dtype=fp8",
        "gemm m=256 n=256 k=256 dtype=tf32",
        "gemm m=256 n=256 k=256 dtype=fp32",
        "bmm batch=3 m=5 n=7 k=9 dtype=fp16",
        "attention b=1 h=1 n=1 d=1",
        "attention b=1 h=2 n=1000 m=100 d=80 causal=1 impl=fa3",
        "attention b=1 h=2 n=100 m=1000 d=256 causal=1 impl=fa2 dtype=fp8",
        "attention_unfused b=1 h=1 n=3 d=5 causal=1",
        "decode_attention b=1 hq=1 hkv=1 l=1 d=1",
        "decode_attention b=3 hq=64 hkv=1 l=100 d=256 dtype=fp32",
        "copy bytes=1",
        "softmax rows=1 cols=1",
        "softmax rows=3 cols=1000000 dtype=fp32",
    ] {
        let o = op(s);
        let e = try_estimate(&o, &spec).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert!(e.seconds.is_finite() && e.seconds > 0.0, "{s}");
        let c = simulate(&o, &e.mapping, &spec).unwrap();
        let err = (c.seconds - e.seconds).abs() / e.seconds;
        assert!(
            err < 0.15,
            "{s}: analytical {} cycle {}",
            e.seconds,
            c.seconds
        );
    }
}

/// Prints modelled TFLOP/s next to published H100 figures (REFERENCES.md) for inspection;
/// nothing here is asserted or fitted.
#[test]
#[ignore]
fn print_published_comparisons() {
    let spec = h100();
    for (imp, d, causal) in [
        ("fa2", 128, 0),
        ("fa2", 64, 0),
        ("fa3", 128, 0),
        ("fa3", 128, 1),
    ] {
        let mut row = format!("{imp} hd{d} causal={causal}:");
        for n in [512u64, 1024, 2048, 4096, 8192, 16384] {
            let (b, h) = (16384 / n, 2048 / d);
            let s =
                format!("attention b={b} h={h} n={n} d={d} causal={causal} impl={imp} dtype=fp16");
            let e = estimate(&op(&s), &spec);
            row += &format!(" {:.0}", e.flops_per_s() / 1e12);
        }
        println!("{row}");
    }
    for n in [512u64, 1024, 2048, 4096, 8192] {
        let e = estimate(&op(&format!("gemm m={n} n={n} k={n}")), &spec);
        println!(
            "gemm {n}: {:.0} TFLOP/s {:?}",
            e.flops_per_s() / 1e12,
            e.mapping[0]
        );
    }
    for s in [
        "copy bytes=1GiB",
        "gemm m=1 n=14336 k=4096",
        "decode_attention b=64 hq=32 hkv=8 l=8192 d=128",
    ] {
        let e = estimate(&op(s), &spec);
        println!(
            "{s}: {:.2} us, {:.2} TB/s of minimum bytes",
            e.seconds * 1e6,
            e.min_bytes / e.seconds / 1e12
        );
    }
}

#[test]
fn ops_whose_tensors_exceed_device_memory_are_refused() {
    let spec = h100();
    // 2 × 200000² bf16 inputs = 160 GB > 80 GB of HBM3.
    let big = op("gemm m=200000 n=200000 k=200000");
    let e = try_estimate(&big, &spec).unwrap_err();
    assert!(matches!(e, GpuError::DeviceMemory { .. }), "{e}");
    assert!(e.to_string().contains("gpu.hbm"), "{e}");
    // The explicit-mapping models refuse it too, before lowering.
    let small = try_estimate(&op("gemm m=4096 n=4096 k=4096"), &spec).unwrap();
    assert!(matches!(
        predict(&big, &small.mapping, &spec),
        Err(GpuError::DeviceMemory { .. })
    ));
    assert!(matches!(
        simulate(&big, &small.mapping, &spec),
        Err(GpuError::DeviceMemory { .. })
    ));
    // A smaller device memory refuses what the larger one accepts (3 × 16384² × 2 B = 1.6 GB).
    let mut tiny = spec.clone();
    tiny.hbm = "1 GB".parse().unwrap();
    assert!(try_estimate(&op("gemm m=16384 n=16384 k=16384"), &tiny).is_err());
    assert!(try_estimate(&op("gemm m=16384 n=16384 k=16384"), &spec).is_ok());
}

/// The library kernels on the H200 (`library.rs`): the analytical model and the cycle-level
/// simulation agree within 5% on each, except two known disagreements (docs/gpu-h200-notes.md),
/// bounded here so that they cannot grow unnoticed: cuDNN's causal prefill, where the
/// analytical model's memory-bound tail of unequal CTAs (`imbalance_makespan` added to the
/// memory time) gives 18–24% more than the simulation; and FA2's causal prefill in lockstep,
/// where the simulation starts an SM's next CTAs when the longest resident one ends and the
/// analytical model exposes each wave's fill and drain without that wait (6.5%).
#[test]
fn analytical_and_cycle_models_agree_on_the_library_kernels() {
    let spec = cascade_arch::preset("h200").unwrap().gpu.unwrap();
    let cases: [(&str, f64); 12] = [
        ("gemm m=4096 n=4095 k=4096", 0.05),
        ("gemm m=2049 n=2049 k=2049", 0.05),
        ("gemm m=4096 n=4098 k=4096", 0.05),
        ("attention b=1 h=32 n=4096 d=128 causal=0", 0.05),
        ("attention b=1 h=32 n=4096 d=128 causal=1 impl=flash", 0.07),
        ("attention b=8 h=16 n=1024 d=64 impl=flash", 0.05),
        ("decode_attention b=1 hq=32 hkv=8 l=4096 d=128", 0.05),
        (
            "decode_attention b=8 hq=64 hkv=8 l=8192 d=128 impl=flash",
            0.05,
        ),
        ("layernorm rows=16384 cols=4096", 0.05),
        ("rmsnorm rows=1 cols=4096", 0.05),
        ("softmax rows=4096 cols=4096", 0.05),
        // The known disagreement.
        ("attention b=1 h=32 n=4096 d=128 causal=1", 0.30),
    ];
    for (s, tol) in cases {
        let o = op(s);
        let a = estimate(&o, &spec);
        let c = simulate(&o, &a.mapping, &spec).unwrap();
        let err = (a.seconds - c.seconds).abs() / a.seconds;
        assert!(
            err <= tol,
            "{s}: analytical {:.3} us, cycle {:.3} us ({:.1}%)",
            a.seconds * 1e6,
            c.seconds * 1e6,
            err * 100.0
        );
    }
}

/// Prints every cycle-level result of the suite and the library cases on the H100 and H200
/// bit for bit (`to_bits`), for diffing a refactoring of the simulation before and after:
/// `cargo test --lib gpu::tests::dump_cycle_bits -- --ignored --nocapture`.
#[test]
#[ignore]
fn dump_cycle_bits() {
    let extra = [
        "gemm m=4096 n=4095 k=4096",
        "attention b=1 h=32 n=4096 d=128 causal=1 impl=flash",
        "decode_attention b=8 hq=64 hkv=8 l=8192 d=128 impl=flash",
        "layernorm rows=16384 cols=4096",
        "rmsnorm rows=1 cols=4096",
        "attention b=1 h=32 n=4096 d=128 causal=1",
    ];
    for preset in ["h100", "h200"] {
        let spec = cascade_arch::preset(preset).unwrap().gpu.unwrap();
        for s in SUITE.iter().copied().chain(extra) {
            let o = op(s);
            let a = estimate(&o, &spec);
            let c = simulate(&o, &a.mapping, &spec).unwrap();
            println!(
                "{preset} | {s} | {:#018x} {}",
                c.seconds.to_bits(),
                c.events
            );
            for k in &c.kernels {
                println!(
                    "  {} {:#018x} {:#018x} {} {} {:#018x} {:#018x}",
                    k.name,
                    k.seconds.to_bits(),
                    k.cycles.to_bits(),
                    k.ctas,
                    k.events,
                    k.hbm_bytes.to_bits(),
                    k.l2_bytes.to_bits()
                );
            }
        }
    }
}

/// `hw::FA2_UNEVEN_CAUSAL_STEP` reproduces what it was measured from: the 448- over the
/// 512-token FA2 causal kernel (b = 40, h = 16, d = 64) of `uneven_attention_ncu.csv`, by event
/// medians, within 2%; and it touches only uneven causal flash grids.
#[test]
fn fa2_uneven_causal_factor_reproduces_its_measurement() {
    let text = std::fs::read_to_string("reports/crosscheck/h200/uneven_attention_ncu.csv").unwrap();
    let median = |n: &str| -> f64 {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(&format!("flash,40,16,{n},1,")))
            .and_then(|l| l.split(',').nth(5))
            .unwrap()
            .parse()
            .unwrap()
    };
    let measured = median("448") / median("512");
    let spec = cascade_arch::preset("h200").unwrap().gpu.unwrap();
    let t = |s: &str| super::estimate(&GpuOp::parse(s).unwrap(), &spec).seconds;
    let model = t("attention b=40 h=16 n=448 d=64 causal=1 impl=flash")
        / t("attention b=40 h=16 n=512 d=64 causal=1 impl=flash");
    assert!(
        (model / measured - 1.0).abs() < 0.02,
        "model {model:.3} vs measured {measured:.3}"
    );
    // Even causal grids and uneven non-causal ones keep the plain step.
    let plain = super::hw::FA2_UNEVEN_CAUSAL_STEP;
    assert!(plain > 1.0);
    let ratio_even = t("attention b=40 h=16 n=384 d=64 causal=1 impl=flash")
        / t("attention b=40 h=16 n=512 d=64 causal=1 impl=flash");
    assert!(ratio_even < 0.8, "{ratio_even}");
    let nc = t("attention b=56 h=12 n=192 d=64 causal=0 impl=flash")
        / t("attention b=56 h=12 n=256 d=64 causal=0 impl=flash");
    assert!(nc < 1.1, "{nc}");
}

fn h200() -> GpuSpec {
    cascade_arch::preset("h200").unwrap().gpu.unwrap()
}

/// The loaded round trip interpolates the chains measured by `scripts/gpu/chase_load.cu`:
/// nothing with one chain per SM or fewer, the measured points exactly, linear between them,
/// and a load offered in larger loads counts as proportionally more chains.
#[test]
fn the_loaded_round_trip_follows_the_measured_chains() {
    let hw = GpuParams::new(&h200());
    let at = |k: f64, bytes: f64| hw.loaded_round_trip_s(k, bytes);
    assert_eq!(at(0.5, 2048.0), 0.0);
    assert_eq!(at(1.0, 2048.0), 0.0);
    assert!((at(10.0, 2048.0) - 387.5e-9).abs() < 1e-15);
    assert!((at(7.0, 2048.0) - 0.5 * (176.3e-9 + 276.9e-9)).abs() < 1e-15);
    assert!((at(5.0, 4096.0) - at(10.0, 2048.0)).abs() < 1e-15);
    let mut last = 0.0;
    for i in 0..=40 {
        let v = at(f64::from(i) * 0.5, 2048.0);
        assert!(v >= last, "{i}: {v} < {last}");
        last = v;
    }
    // The H100's HBM is slower: the same chains load it more.
    let h100 = GpuParams::new(&h100());
    assert!(h100.loaded_round_trip_s(8.0, 2048.0) > at(8.0, 2048.0));
}

/// `hw::LOADED_ROUND_TRIP` is the recorded measurement: each `write = 1` row's round trip less
/// the one-chain row's.
#[test]
fn the_loaded_round_trip_is_the_recorded_measurement() {
    let text = std::fs::read_to_string("reports/crosscheck/h200/chase_load.csv").unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (k, w, hop) = (col("ctas_per_sm"), col("write"), col("hop_ns_mean"));
    let rows: Vec<(f64, f64)> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[w] == "1")
        .map(|f| (f[k].parse().unwrap(), f[hop].parse().unwrap()))
        .collect();
    assert_eq!(rows.len(), hw::LOADED_ROUND_TRIP.len());
    for ((k, ns), (tk, ts)) in rows.iter().zip(hw::LOADED_ROUND_TRIP) {
        assert_eq!(k, tk);
        assert!(
            ((ns - rows[0].1) * 1e-9 - ts).abs() < 0.06e-9,
            "{k}: {ns} ns"
        );
    }
}

/// Torch's norm kernels hold 16 rows per SM (Nsight Compute: 27 and 32 registers, 128
/// threads), and their time has no step where a wave of 10 would end (1,320 rows): measured
/// 9.89 and 10.02 µs at 1,320 and 1,408 rows (RMS norm, 4,096 columns, `norm_occupancy_ncu.csv`).
/// Their round trips lengthen with the rows resident: many rows take longer per row than one
/// wave, and a last partial wave runs at the lighter load.
#[test]
fn norms_hold_sixteen_rows_per_sm_and_their_round_trips_grow_with_them() {
    let spec = h200();
    let hw = GpuParams::new(&spec);
    for kind in ["rmsnorm", "layernorm"] {
        let e = |rows: u64| estimate(&op(&format!("{kind} rows={rows} cols=4096")), &spec);
        let plans = plan::plan_op(
            &op(&format!("{kind} rows=4096 cols=4096")),
            &e(4096).mapping,
            &hw,
        )
        .unwrap();
        assert_eq!(plans[0].occupancy, 16, "{kind}");
        let rc = plans[0].row_chain.expect("a norm carries its row chain");
        assert_eq!(
            rc.extra_s(&hw, 1.0),
            0.0,
            "{kind}: a lone row is the measured one"
        );
        assert!(rc.extra_s(&hw, 8.0) > 0.0 && rc.extra_s(&hw, 16.0) > rc.extra_s(&hw, 8.0));
        let (a, b) = (e(1320).seconds, e(1408).seconds);
        assert!(
            b / a < 1.06,
            "{kind}: {a:e} s at 1,320 rows, {b:e} at 1,408"
        );
        // A last wave of one row per SM adds less than a full one: it runs at the lone
        // row's round trips.
        let (one, two) = (e(132 * 16).seconds, e(2 * 132 * 16).seconds);
        let sliver = e(132 * 16 + 132).seconds;
        assert!(
            sliver - one < 0.8 * (two - one),
            "{kind}: {one:e}, {sliver:e}, {two:e} s"
        );
    }
    // The second pass re-reads from L2 once the resident rows overflow L1: 16 rows of 8,192
    // bf16 columns (256 KiB) do not fit beside 16 KiB of reserved shared memory; 16 of 4,096 do.
    let chain = |cols: u64| {
        let s = format!("rmsnorm rows=4096 cols={cols}");
        let e = estimate(&op(&s), &spec);
        plan::plan_op(&op(&s), &e.mapping, &hw).unwrap()[0]
            .row_chain
            .unwrap()
    };
    let (wide, narrow) = (chain(8192), chain(4096));
    assert_eq!(wide.l1_bytes, 240.0 * 1024.0);
    let fits = |rc: plan::RowChain| plan::RowChain {
        l1_bytes: f64::INFINITY,
        ..rc
    };
    let more = wide.extra_s(&hw, 16.0) - fits(wide).extra_s(&hw, 16.0);
    assert!(more > 0.5 * hw.l2_latency_s, "{more:e}");
    assert_eq!(wide.extra_s(&hw, 15.0), fits(wide).extra_s(&hw, 15.0));
    assert_eq!(narrow.extra_s(&hw, 16.0), fits(narrow).extra_s(&hw, 16.0));
}
