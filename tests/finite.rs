//! Property test of issue 9's acceptance point: random architecture values (inside and outside
//! their physical ranges) and random mappings (drawn from the mapper's space, then perturbed:
//! factors, bindings, spatial dimensions, spills) are either refused with a reason or replayed
//! by `simulate`'s loader into a finite, physical report: utilisation ≤ 1, every input read
//! and every output written off chip at least once (compulsory traffic), latency at or above
//! the compute bound (ops × cycles per op / PEs), energy finite and ≥ 0, nothing NaN, infinite
//! or null in the JSON.

use cascade::commands::map::replay;
use cascade::models::spatial::analytical::Analytical;
use cascade_arch::Architecture;
use cascade_einsum::{bind, library};
use cascade_mappings::mapping::GroupMapping;
use cascade_mappings::model::{GroupEval, GroupPlan, Keep, LoopP, TEMPORAL};
use cascade_mappings::problem::Role;
use cascade_mappings::search::{allowed_units, fuse_candidates};
use cascade_mappings::space::Space;
use cascade_mappings::{ArchP, Constraints, Mapping, Problem, Report};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::collections::BTreeMap;

/// A quantity string: mostly a realistic value, sometimes one far outside any range
/// (log-uniform over 10^±330, which includes 0, subnormals, inf and the like).
fn quantity(unit: &'static str, lo: f64, hi: f64) -> impl Strategy<Value = String> {
    prop_oneof![
        60 => (0.0f64..1.0).prop_map(move |x| format!("{} {unit}", lo * (hi / lo).powf(x))),
        1 => (-330i32..330, 1u32..10).prop_map(move |(e, m)| format!("{m}e{e} {unit}")),
        1 => Just(format!("0 {unit}")),
    ]
}

#[derive(Clone, Debug)]
struct ArchValues {
    clock: String,
    dram_bw: String,
    glb: String,
    rf: String,
    energy_dram: String,
    energy_mac: String,
}

fn arch_values() -> impl Strategy<Value = ArchValues> {
    (
        quantity("MHz", 100.0, 3000.0),
        quantity("GB/s", 1.0, 10_000.0),
        quantity("KiB", 1.0, 65_536.0),
        quantity("B", 2.0, 1024.0),
        quantity("pJ", 1.0, 1000.0),
        quantity("pJ", 1.0, 100.0),
    )
        .prop_map(
            |(clock, dram_bw, glb, rf, energy_dram, energy_mac)| ArchValues {
                clock,
                dram_bw,
                glb,
                rf,
                energy_dram,
                energy_mac,
            },
        )
}

fn arch_text(v: &ArchValues) -> String {
    let base = cascade_arch::preset_source("fusemax").unwrap();
    let mut t = base
        .replacen(
            "clock = \"940 MHz\"",
            &format!("clock = \"{}\"", v.clock),
            1,
        )
        .replacen(
            "bandwidth = \"400 GiB/s\"",
            &format!("bandwidth = \"{}\"", v.dram_bw),
            1,
        )
        .replacen(
            "capacity = \"16 MiB\"",
            &format!("capacity = \"{}\"", v.glb),
            1,
        )
        .replace("capacity = \"20 B\"", &format!("capacity = \"{}\"", v.rf));
    // The first energy of the file is the DRAM read; mac energies are the arrays' op costs.
    let at = t.find("read = \"").unwrap() + "read = \"".len();
    let end = at + t[at..].find('"').unwrap();
    t.replace_range(at..end, &v.energy_dram);
    t = t.replace(
        "energy = \"17.16 pJ\"",
        &format!("energy = \"{}\"", v.energy_mac),
    );
    t
}

/// A small instance: a GEMM of odd and even extents, or a 1-pass attention.
fn instance() -> impl Strategy<Value = (&'static str, Vec<(&'static str, u64)>)> {
    prop_oneof![
        (1u64..96, 1u64..96, 1u64..96)
            .prop_map(|(t, k, n)| ("gemm", vec![("T", t), ("K", k), ("N", n)])),
        (
            1u64..3,
            1u64..3,
            1u64..16,
            1u64..16,
            1u64..5,
            1u64..8,
            1u64..24
        )
            .prop_map(|(b, h, e, f, m1, m0, p)| (
                "attention_1pass",
                vec![
                    ("B", b),
                    ("H", h),
                    ("E", e),
                    ("F", f),
                    ("M", m1 * m0),
                    ("M0", m0),
                    ("P", p)
                ]
            )),
    ]
}

/// Random choices: a seed stream for the point's digits and a list of perturbations.
#[derive(Clone, Debug)]
struct Choices {
    fused: bool,
    digits: Vec<u16>,
    perturb: Vec<(u8, u16, u16)>,
}

fn choices() -> impl Strategy<Value = Choices> {
    (
        any::<bool>(),
        prop::collection::vec(any::<u16>(), 256),
        prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec((0u8..8, any::<u16>(), any::<u16>()), 1..3),
        ],
    )
        .prop_map(|(fused, digits, perturb)| Choices {
            fused,
            digits,
            perturb,
        })
}

/// A point of the space from the digits (any digit is valid modulo its radix).
fn plan_from(p: &Problem, a: &ArchP, space: &Space, digits: &[u16]) -> Option<GroupPlan> {
    let mut pt = space.zero(a);
    let mut d = digits.iter().copied().cycle();
    for (k, u) in space.units.iter().enumerate() {
        pt.binding[k] = (d.next().unwrap() as usize % u.len()) as u8;
    }
    let mut radix = Vec::new();
    space.radices(&mut radix);
    for (i, f) in pt.factors.iter_mut().enumerate() {
        *f = d.next().unwrap() % radix.get(i).copied().unwrap_or(1).max(1);
    }
    for x in pt.prio.iter_mut() {
        *x = d.next().unwrap() % 1000;
    }
    for b in pt.bypass.iter_mut() {
        *b = u64::from(d.next().unwrap()) | (u64::from(d.next().unwrap()) << 16);
    }
    pt.spill = u64::from(d.next().unwrap());
    let mut f = Vec::new();
    space.plan(p, &pt, &mut f)
}

/// Perturbs a plan the way a hand-edited mapping might: factors doubled, halved, bumped, set
/// above a fanout; loops dropped, duplicated or moved to another dimension; another binding.
fn perturb(a: &ArchP, g: &mut GroupPlan, (what, x, y): (u8, u16, u16)) {
    if g.loops.is_empty() {
        return;
    }
    let i = usize::from(x) % g.loops.len();
    let l = &mut g.loops[i];
    match what {
        0 => l.factor *= 2,
        1 => l.factor = (l.factor / 2).max(1),
        2 => l.factor += 1,
        3 => {
            if l.dim != TEMPORAL {
                l.factor = a.fanout(usize::from(l.node))[usize::from(l.dim)] + u64::from(y % 3);
            }
        }
        4 => {
            g.loops.remove(i);
        }
        5 => {
            let dup: LoopP = *l;
            g.loops.insert(i, dup);
        }
        6 => {
            if l.dim != TEMPORAL {
                let dims = a.fanout(usize::from(l.node)).len() as u8;
                l.dim = (l.dim + 1) % dims;
            }
        }
        _ => {
            let k = usize::from(y) % g.binding.len();
            g.binding[k] = usize::from(x) % a.units.len();
        }
    }
}

/// Compulsory traffic below the root: a cascade input kept (at a position the evaluation used)
/// at a level on the path of a unit that reads it is filled there at least once per element,
/// summed over the level's instances; no count is negative.
fn kept_inputs_are_filled(p: &Problem, a: &ArchP, groups: &[(GroupPlan, GroupEval)], toml: &str) {
    let nt = p.tensors.len();
    for (g, ev) in groups {
        for x in &ev.actions {
            assert!(
                [x.reads, x.fills, x.updates]
                    .iter()
                    .all(|v| v.is_finite() && *v >= 0.0),
                "{x:?}\n{toml}"
            );
        }
        for &(t, l, k) in &ev.keep {
            let (t, l) = (usize::from(t), usize::from(l));
            if l == 0 || !matches!(k, Keep::At(_)) || p.tensors[t].role != Role::Input {
                continue;
            }
            let read_below =
                g.einsums.iter().zip(&g.binding).any(|(&e, &u)| {
                    p.einsums[e].reads.contains(&t) && a.units[u].path.contains(&l)
                });
            if !read_below {
                continue;
            }
            let fills = ev.actions[l * nt + t].fills;
            assert!(
                fills >= p.tensors[t].elems as f64,
                "{} kept at {} is filled {fills} times, fewer than its {} elements\n{toml}",
                p.tensors[t].name,
                a.levels[l].name,
                p.tensors[t].elems
            );
        }
    }
}

struct Checked {
    refused: bool,
}

fn why_refused(m: &str) {
    if std::env::var_os("FINITE_DEBUG").is_some() {
        eprintln!("refused: {m}");
    }
}

fn run_case(v: &ArchValues, inst: &(&str, Vec<(&str, u64)>), c: &Choices) -> Checked {
    let text = arch_text(v);
    let arch = match Architecture::from_toml_str(&text, "finite.toml") {
        Ok(a) => a,
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("finite.toml:"), "{m}");
            why_refused(&m);
            return Checked { refused: true };
        }
    };
    let (name, ext) = inst;
    let cascade = library::load(name).unwrap().cascade;
    let extents: BTreeMap<String, u64> = ext.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let sh = bind(&cascade, &extents).unwrap();
    let p = Problem::new(&cascade, &sh, 2, None).unwrap();
    let a = ArchP::new(&arch, &p).unwrap();
    let groups: Vec<Vec<usize>> = if c.fused {
        vec![(0..p.einsums.len()).collect()]
    } else {
        (0..p.einsums.len()).map(|e| vec![e]).collect()
    };
    let mut mapped = Vec::new();
    for (gi, einsums) in groups.iter().enumerate() {
        let units = match allowed_units(&p, &a, einsums, &Constraints::default()) {
            Ok(u) => u,
            Err(e) => {
                why_refused(&e.to_string());
                return Checked { refused: true };
            }
        };
        let fuses = fuse_candidates(&a, &units);
        let fuse = fuses[usize::from(c.digits[gi % c.digits.len()]) % fuses.len()];
        let space = match Space::new(&p, &a, einsums, units, fuse, &Constraints::default()) {
            Ok(s) => s,
            Err(e) => {
                why_refused(&e.to_string());
                return Checked { refused: true };
            }
        };
        // The packed count of the space equals the byte-vector count to the bit.
        assert_eq!(
            space.size(&p).to_bits(),
            space.size_by_vectors(&p).to_bits(),
            "space size"
        );
        let digits: Vec<u16> = c.digits.iter().skip(gi * 7).copied().collect();
        let Some(mut g) = plan_from(&p, &a, &space, &digits) else {
            why_refused("no plan at this point");
            return Checked { refused: true };
        };
        for &q in &c.perturb {
            perturb(&a, &mut g, q);
        }
        let keep = g.keep.clone();
        let mut gm = GroupMapping::from_plan(&p, &a, &g, &keep);
        gm.derive_keep = g.derive_keep;
        mapped.push(gm);
    }
    let m = Mapping {
        cascade: name.to_string(),
        arch: arch.name.clone(),
        dtype_bytes: 2,
        extents: sh.extents().clone(),
        routing: None,
        groups: mapped,
    };
    // Through the saved form, as `simulate` loads it.
    let toml = m.to_toml().unwrap();
    let m = Mapping::from_toml_str(&toml, "m.toml").unwrap();
    let r = match replay(&m, &toml, "m.toml", &arch, &Analytical::default()) {
        Ok((p2, a2, groups)) => {
            kept_inputs_are_filled(&p2, &a2, &groups, &toml);
            Report::from_groups(&p2, &a2, &groups)
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("m.toml:"), "unlocated refusal: {msg}");
            assert!(!msg.contains("NaN") && !msg.contains("inf "), "{msg}");
            // The mapper's own plans pass the loader's checks: only the model may refuse them
            // (a tile that overflows a level, …), never the loop-nest validation.
            assert!(
                !c.perturb.is_empty() || msg.contains("cannot run:"),
                "the loader refuses a plan of the mapper's space: {msg}\n{toml}"
            );
            why_refused(&msg);
            return Checked { refused: true };
        }
    };
    let json = serde_json::to_string(&r).unwrap();
    for bad in ["null", "NaN", "inf"] {
        assert!(!json.contains(bad), "{bad} in {json}\n{toml}");
    }
    let why = || format!("{toml}\n{}", serde_json::to_string_pretty(&r).unwrap());
    assert!(r.latency_s.is_finite() && r.latency_s > 0.0, "{}", why());
    assert!(
        r.latency_cycles.is_finite() && r.latency_cycles >= 1.0,
        "{}",
        why()
    );
    assert!(r.energy_pj.is_finite() && r.energy_pj >= 0.0, "{}", why());
    if arch
        .compute
        .iter()
        .all(|u| u.ops.values().all(|o| o.energy.joules() > 0.0))
    {
        assert!(r.energy_pj > 0.0, "{}", why());
    }
    for (u, x) in &r.utilization {
        assert!(
            (0.0..=1.0 + 1e-9).contains(x),
            "utilisation of {u} is {x}\n{}",
            why()
        );
    }
    // Compulsory traffic: every cascade input read from the root, every output written to it,
    // at least once per element.
    let root = &a.levels[0].name;
    for t in &p.tensors {
        let (read, written) = r
            .traffic
            .iter()
            .filter(|x| &x.level == root && x.tensor == t.name)
            .fold((0.0, 0.0), |(rd, wr), x| {
                (rd + x.reads, wr + x.updates + x.fills)
            });
        match t.role {
            Role::Input => assert!(
                read >= t.elems as f64,
                "{} read {read} < {}\n{}",
                t.name,
                t.elems,
                why()
            ),
            Role::Output => assert!(
                written >= t.elems as f64,
                "{} written {written} < {}\n{}",
                t.name,
                t.elems,
                why()
            ),
            Role::Intermediate => {}
        }
    }
    // The compute bound: per unit, its Einsums' op cycles over its PEs.
    let mut busy = vec![0.0f64; a.units.len()];
    for g in &m.groups {
        for (e, u) in &g.bindings {
            let ep = &p.einsums[p.einsum_index(e).unwrap()];
            let u = a.unit_index(u).unwrap();
            let unit = &a.units[u];
            let mut raw: f64 = ep
                .ops
                .iter()
                .map(|&(k, n)| n as f64 * unit.op_cycles[k].unwrap_or(0.0))
                .sum();
            for &(x, y, n) in &ep.chains {
                if unit.chains.contains(&(x, y)) {
                    raw -= n as f64 * unit.op_cycles[x].unwrap_or(0.0);
                }
            }
            busy[u] += raw / unit.pes as f64;
        }
    }
    let bound = busy.iter().copied().fold(0.0, f64::max);
    assert!(
        r.latency_cycles >= bound * (1.0 - 1e-9),
        "latency {} cycles below the compute bound {bound}\n{}",
        r.latency_cycles,
        why()
    );
    Checked { refused: false }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_architectures_and_mappings_are_refused_or_physical(
        v in arch_values(),
        inst in instance(),
        c in choices(),
    ) {
        run_case(&v, &inst, &c);
    }
}

/// The generator is not vacuous: over a fixed sample, some cases are refused and most run.
#[test]
fn the_sample_has_both_outcomes() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strat = (arch_values(), instance(), choices());
    let (mut ran, mut refused) = (0, 0);
    for _ in 0..100 {
        let (v, inst, c) = strat.new_tree(&mut runner).unwrap().current();
        if run_case(&v, &inst, &c).refused {
            refused += 1;
        } else {
            ran += 1;
        }
    }
    eprintln!("ran {ran}, refused {refused}");
    assert!(ran >= 15 && refused >= 10, "ran {ran}, refused {refused}");
}
