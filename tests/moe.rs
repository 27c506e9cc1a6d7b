//! MoE on the general core: the `moe` cascade mapped onto `fusemax_vpu` (the preset whose vector
//! unit compares, selects and takes rsqrt) with balanced and Zipf-skewed routing; the expert
//! Einsums' ops, op energy and compute follow the routed (token, expert) pairs computed here from
//! `Routing::zipf`; reports are finite and physical; a whole Mixtral-8x7B layer maps end to end
//! (prefill and decode) from the command line.

use cascade::models::spatial::analytical::evaluate;
use cascade::models::spatial::fusion::{map_cascade, Fusion, Mapped};
use cascade_einsum::{analyze, bind, library, AnalysisOptions, Routing};
use cascade_mappings::model::ArchP;
use cascade_mappings::{Problem, Report, Search};
use std::collections::BTreeMap;
use std::process::Command;

const ARCH: &str = "fusemax_vpu";
/// Top-k of the built-in `moe` cascade (`G[t,x] = topk[x,2] P[t,x]`).
const K: u64 = 2;

fn extents(t: u64, d: u64, x: u64, f: u64) -> BTreeMap<String, u64> {
    [("T", t), ("D", d), ("X", x), ("F", f)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect()
}

fn moe_problem(ext: &BTreeMap<String, u64>, routing: &Routing) -> Problem {
    let c = library::load("moe").unwrap().cascade;
    let sh = bind(&c, ext).unwrap();
    Problem::new(&c, &sh, 2, Some(routing.clone())).unwrap()
}

/// Ops of one kind of one Einsum of the problem (0 if it has none of that kind).
fn op(p: &Problem, einsum: &str, kind: &str) -> u64 {
    let e = &p.einsums[p.einsum_index(einsum).unwrap()];
    e.ops
        .iter()
        .filter(|(k, _)| p.op_kinds[*k] == kind)
        .map(|(_, n)| *n)
        .sum()
}

/// The expert Einsums' op counts, from the routing alone: each routed (token, expert) pair runs
/// the three SwiGLU GEMMs (D × F MACs each), the activation over F, and the weighted combine.
fn assert_ops_follow_routing(p: &Problem, ext: &BTreeMap<String, u64>, r: &Routing) {
    let (t, d, x, f) = (ext["T"], ext["D"], ext["X"], ext["F"]);
    let pairs: u64 = r.tokens_per_expert.iter().sum();
    for e in ["HG", "HU", "HO"] {
        assert_eq!(op(p, e, "mac"), pairs * d * f, "{e}");
    }
    // HA = silu(HG) * HU: silu counts exp + add + div + mul, then the product.
    for kind in ["exp", "add", "div"] {
        assert_eq!(op(p, "HA", kind), pairs * f, "HA {kind}");
    }
    assert_eq!(op(p, "HA", "mul"), 2 * pairs * f);
    assert_eq!(op(p, "OUT", "mac"), pairs * d);
    // Not routed: the router's GEMM and its top-k (K compares per candidate expert).
    assert_eq!(op(p, "RL", "mac"), t * d * x);
    assert_eq!(op(p, "G", "cmp"), t * x * K);
    // The analysis agrees: the dense space is X·T·F·D, the computed one the routed pairs'.
    let c = library::load("moe").unwrap().cascade;
    let sh = bind(&c, ext).unwrap();
    let an = analyze(
        &c,
        &sh,
        &AnalysisOptions {
            dtype_bytes: 2,
            routing: Some(r.clone()),
        },
    );
    let hg = an.einsum("HG").unwrap();
    assert_eq!(hg.iteration_points, x * t * f * d);
    assert_eq!(hg.computed_points, pairs * f * d);
    assert_eq!(hg.active_experts, Some(r.active_experts()));
}

/// Op energy per unit, from the problem's op counts and the mapping's bindings.
fn expected_unit_pj(p: &Problem, a: &ArchP, m: &Mapped) -> Vec<f64> {
    let mut pj = vec![0.0; a.units.len()];
    for (plan, _) in &m.groups {
        for (k, &e) in plan.einsums.iter().enumerate() {
            let u = plan.binding[k];
            for &(kind, n) in &p.einsums[e].ops {
                pj[u] += n as f64 * a.units[u].op_energy_pj[kind];
            }
        }
    }
    pj
}

/// Cycles each unit needs for its ops at full use of its PEs (the compute lower bound).
fn unit_busy(p: &Problem, a: &ArchP, m: &Mapped) -> Vec<f64> {
    let mut busy = vec![0.0; a.units.len()];
    for (plan, _) in &m.groups {
        for (k, &e) in plan.einsums.iter().enumerate() {
            let u = plan.binding[k];
            let unit = &a.units[u];
            for &(kind, n) in &p.einsums[e].ops {
                busy[u] += n as f64 * unit.op_cycles[kind].unwrap() / unit.pes as f64;
            }
            // A chained pair (`sub>exp`) issues as one op: the producer's cycles are saved.
            for &(x, y, n) in &p.einsums[e].chains {
                if unit.chains.contains(&(x, y)) {
                    busy[u] -= n as f64 * unit.op_cycles[x].unwrap() / unit.pes as f64;
                }
            }
        }
    }
    busy
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Finite, physical, and following the ops: utilisation ≤ 1, latency at least every unit's
/// busy time, every PE's share of the expert MACs and the off-chip time; op energy per unit as
/// the op counts say.
fn assert_physical(p: &Problem, a: &ArchP, m: &Mapped) {
    let r: &Report = &m.report;
    for v in [r.latency_s, r.latency_cycles, r.energy_pj, r.off_chip_bytes] {
        assert!(v.is_finite() && v > 0.0, "{v}");
    }
    assert!(close(r.latency_s, r.latency_cycles / a.clock_hz));
    for (u, v) in &r.utilization {
        assert!((0.0..=1.0 + 1e-9).contains(v), "{u}: {v}");
    }
    let busy = unit_busy(p, a, m);
    for (u, b) in busy.iter().enumerate() {
        assert!(
            r.latency_cycles >= b * (1.0 - 1e-9),
            "{}: {b}",
            a.units[u].name
        );
        assert!(close(r.utilization[&a.units[u].name], b / r.latency_cycles));
    }
    let pes: u64 = a.units.iter().map(|u| u.pes).sum();
    let expert_macs: u64 = ["HG", "HU", "HO"].iter().map(|e| op(p, e, "mac")).sum();
    assert!(r.latency_cycles >= expert_macs as f64 / pes as f64);
    // HBM: 3.35 TB/s, one shared port (the preset's figure).
    let hbm_bytes_per_cycle = 3.35e12 / a.clock_hz;
    assert!(r.latency_cycles >= r.off_chip_bytes / hbm_bytes_per_cycle * (1.0 - 1e-9));
    let want = expected_unit_pj(p, a, m);
    for (u, pj) in want.iter().enumerate() {
        let got = r.component_pj(&a.units[u].name);
        assert!(close(got, *pj), "{}: {got} vs {pj}", a.units[u].name);
    }
    for g in &r.groups {
        assert!(g.compute_cycles <= g.cycles * (1.0 + 1e-9));
    }
}

fn map(p: &Problem, a: &ArchP, budget: u64) -> Mapped {
    map_cascade(p, a, &Fusion::Search, &Search::default().budget(budget)).unwrap()
}

#[test]
fn the_vector_unit_runs_every_op_of_a_mixtral_layer() {
    let arch = cascade_arch::preset(ARCH).unwrap();
    let vec = arch.compute.iter().find(|u| u.name == "vec").unwrap();
    for op in [
        "mac", "add", "sub", "mul", "max", "min", "cmp", "exp", "div", "rsqrt",
    ] {
        assert!(vec.supports(op), "vec lacks {op}");
    }
    // The 2D array stays FuseMax's: no divide, compare or rsqrt, so the router's top-k, the
    // softmax divisions and the norms' rsqrt must bind to the vector unit.
    let pe2d = arch.compute.iter().find(|u| u.name == "pe2d").unwrap();
    for op in ["div", "cmp", "rsqrt"] {
        assert!(!pe2d.supports(op), "pe2d supports {op}");
    }
    assert_eq!(arch.unit_pes(0), 256 * 256);
    assert_eq!(arch.unit_pes(1), 256);
}

#[test]
fn balanced_routing_expert_ops_and_report_follow_the_routed_pairs() {
    let ext = extents(256, 64, 8, 128);
    let r = Routing::zipf("X", 8, 256, K, 0.0);
    // Balanced: 256 tokens × top-2 over 8 experts = 64 each.
    assert_eq!(r.tokens_per_expert, vec![64; 8]);
    let p = moe_problem(&ext, &r);
    assert_ops_follow_routing(&p, &ext, &r);
    let a = ArchP::new(&cascade_arch::preset(ARCH).unwrap(), &p).unwrap();
    let m = map(&p, &a, 300);
    assert_physical(&p, &a, &m);
    // G's top-k compares only run where `cmp` is supported: on the vector unit.
    let vec = a.unit_index("vec").unwrap();
    let g = p.einsum_index("G").unwrap();
    for (plan, _) in &m.groups {
        if let Some(k) = plan.einsums.iter().position(|&e| e == g) {
            assert_eq!(plan.binding[k], vec);
        }
    }
}

#[test]
fn zipf_routing_expert_ops_follow_the_skewed_tokens_per_expert() {
    let ext = extents(256, 64, 8, 128);
    let r = Routing::zipf("X", 8, 256, K, 1.0);
    let pairs: u64 = r.tokens_per_expert.iter().sum();
    assert_eq!(pairs, 256 * K);
    // Skewed: the first expert gets the most tokens, well above the balanced 64.
    assert_eq!(r.max_tokens(), r.tokens_per_expert[0]);
    assert!(r.tokens_per_expert[0] > 2 * 64, "{:?}", r.tokens_per_expert);
    let p = moe_problem(&ext, &r);
    assert_ops_follow_routing(&p, &ext, &r);
    let a = ArchP::new(&cascade_arch::preset(ARCH).unwrap(), &p).unwrap();
    let m = map(&p, &a, 300);
    assert_physical(&p, &a, &m);

    // Decode-sized: 4 tokens × top-2 over 8 experts with Zipf 1.0 leave experts idle.
    let ext = extents(4, 64, 8, 128);
    let r = Routing::zipf("X", 8, 4, K, 1.0);
    assert_eq!(r.tokens_per_expert.iter().sum::<u64>(), 4 * K);
    assert!(r.active_experts() < 8, "{:?}", r.tokens_per_expert);
    let p = moe_problem(&ext, &r);
    assert_ops_follow_routing(&p, &ext, &r);
    let a = ArchP::new(&cascade_arch::preset(ARCH).unwrap(), &p).unwrap();
    let m = map(&p, &a, 300);
    assert_physical(&p, &a, &m);
    // Idle experts' weights stay in DRAM: each expert matrix is read from DRAM at least once
    // for every active expert and never for an idle one.
    let rep = Report::from_groups(&p, &a, &m.groups);
    let active = r.active_experts() as f64;
    let one_expert = (64 * 128 * 2) as f64;
    for w in ["WG", "WU", "WD"] {
        let t = rep.traffic_of("hbm", w).unwrap();
        assert!(
            t.read_bytes >= active * one_expert * (1.0 - 1e-9),
            "{w}: {} B read",
            t.read_bytes
        );
        let once = active * one_expert;
        assert!(
            (t.read_bytes / once - (t.read_bytes / once).round()).abs() < 1e-6,
            "{w}: {} B is not a whole number of reads of the {active} active experts' weights",
            t.read_bytes
        );
    }
}

#[test]
fn one_mapping_replayed_with_fewer_routed_pairs_does_proportionally_less_expert_work() {
    let ext = extents(256, 64, 8, 128);
    let full = Routing::zipf("X", 8, 256, K, 1.0);
    // The same skew with an expert capacity of 1.25 × the balanced load (tokens over
    // capacity dropped, as Switch/GShard-style routers do): fewer routed pairs.
    let cap = 5 * 256 * K / 8 / 4;
    let capped = Routing {
        expert_rank: "X".into(),
        tokens: 256,
        tokens_per_expert: full.tokens_per_expert.iter().map(|&n| n.min(cap)).collect(),
    };
    let (n_full, n_cap): (u64, u64) = (
        full.tokens_per_expert.iter().sum(),
        capped.tokens_per_expert.iter().sum(),
    );
    assert!(n_cap < n_full, "{n_cap} {n_full}");
    let arch = cascade_arch::preset(ARCH).unwrap();
    let p = moe_problem(&ext, &full);
    let a = ArchP::new(&arch, &p).unwrap();
    let m = map(&p, &a, 300);
    let q = moe_problem(&ext, &capped);
    let b = ArchP::new(&arch, &q).unwrap();
    assert_ops_follow_routing(&q, &ext, &capped);
    let mut groups = Vec::new();
    for (plan, ev) in &m.groups {
        let ev2 = evaluate(&q, &b, plan).unwrap();
        assert!(ev2.compute_cycles <= ev.compute_cycles * (1.0 + 1e-12));
        groups.push((plan.clone(), ev2));
    }
    let r2 = Report::from_groups(&q, &b, &groups);
    // Op energy: the routed Einsums' share scales by n_cap / n_full exactly; the router's
    // does not change.
    let routed = ["HG", "HU", "HA", "HO", "OUT"];
    let share = |p: &Problem, a: &ArchP, m: &[(usize, usize)]| -> (f64, f64) {
        let (mut r, mut o) = (0.0, 0.0);
        for &(e, u) in m {
            let pj: f64 = p.einsums[e]
                .ops
                .iter()
                .map(|&(k, n)| n as f64 * a.units[u].op_energy_pj[k])
                .sum();
            if routed.contains(&p.einsums[e].name.as_str()) {
                r += pj;
            } else {
                o += pj;
            }
        }
        (r, o)
    };
    let bound: Vec<(usize, usize)> = m
        .groups
        .iter()
        .flat_map(|(g, _)| g.einsums.iter().copied().zip(g.binding.iter().copied()))
        .collect();
    let (routed_full, other_full) = share(&p, &a, &bound);
    let (routed_cap, other_cap) = share(&q, &b, &bound);
    assert!(close(other_full, other_cap));
    assert!(close(
        routed_cap,
        routed_full * n_cap as f64 / n_full as f64
    ));
    let units_pj = |r: &Report| r.component_pj("pe2d") + r.component_pj("vec");
    assert!(close(units_pj(&m.report), routed_full + other_full));
    assert!(close(units_pj(&r2), routed_cap + other_cap));
    // Fewer pairs: strictly less compute, and no more off-chip traffic.
    let compute = |r: &Report| r.groups.iter().map(|g| g.compute_cycles).sum::<f64>();
    assert!(compute(&r2) < compute(&m.report));
    assert!(r2.off_chip_bytes <= m.report.off_chip_bytes * (1.0 + 1e-12));
}

fn cascade(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .expect("run cascade");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn map_cascade_moe_with_skew_carries_the_zipf_routing() {
    let (ok, out, err) = cascade(&[
        "map",
        "--cascade",
        "moe",
        "--set",
        "T=16",
        "--set",
        "D=32",
        "--set",
        "X=8",
        "--set",
        "F=64",
        "--skew",
        "1.0",
        "--arch",
        ARCH,
        "--budget",
        "200",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let inst = &v["instances"][0]["result"]["Ok"];
    let tpe: Vec<u64> = inst["mapping"]["routing"]["tokens_per_expert"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(tpe, Routing::zipf("X", 8, 16, K, 1.0).tokens_per_expert);
    assert!(inst["report"]["latency_s"].as_f64().unwrap() > 0.0);
}

/// `cascade map --workload mixtral_8x7b --arch fusemax_vpu` maps all six cascades of the layer.
fn mixtral_layer_maps(phase: &str) {
    let (ok, out, err) = cascade(&[
        "map",
        "--workload",
        "mixtral_8x7b",
        "--arch",
        ARCH,
        "--budget",
        "2000",
        "--phase",
        phase,
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let insts = v["instances"].as_array().unwrap();
    let roles: Vec<&str> = insts.iter().map(|i| i["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        [
            "attn_norm",
            "qkv_proj",
            "attention",
            "o_proj",
            "ffn_norm",
            "moe"
        ]
    );
    for i in insts {
        assert!(i["result"]["Ok"].is_object(), "{phase}: {i}");
    }
    // Every expert's weights (3 × D × F bf16 each) are read from HBM at least once: with batch 8
    // (prefill: 8 × 2048 tokens) and balanced top-2 routing every expert gets tokens.
    let moe = &insts[5]["result"]["Ok"]["report"];
    let weights = 8.0 * 3.0 * 4096.0 * 14336.0 * 2.0;
    let off_chip = moe["off_chip_bytes"].as_f64().unwrap();
    assert!(off_chip >= weights, "{phase}: {off_chip} < {weights}");
    let secs = moe["latency_s"].as_f64().unwrap();
    assert!(secs >= off_chip / 3.35e12 * (1.0 - 1e-9), "{phase}: {secs}");
    // The text output says so too.
    let (ok, text, err) = cascade(&[
        "map",
        "--workload",
        "mixtral_8x7b",
        "--arch",
        ARCH,
        "--budget",
        "2000",
        "--phase",
        phase,
    ]);
    assert!(ok, "{err}");
    assert!(!text.contains("not mapped"), "{text}");
    assert!(text.contains("(6 of 6 cascades)"), "{text}");
}

#[test]
fn a_whole_mixtral_layer_maps_in_prefill() {
    mixtral_layer_maps("prefill");
}

#[test]
fn a_whole_mixtral_layer_maps_in_decode() {
    mixtral_layer_maps("decode");
}
