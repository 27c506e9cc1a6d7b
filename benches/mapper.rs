//! Model evaluations per second (criterion): a GEMM on a 3-level architecture with per-PE
//! register files (DRAM → global buffer → 256×256 register files → MACs, the fusemax preset's
//! 2D path) and FuseMax's Mapping 1 of 1-pass attention (12 Einsums on two arrays), one core and
//! all cores; and whole searches, reported as evaluations/s through criterion's throughput.

use cascade::models::spatial::analytical::Analytical;
use cascade_einsum::{bind, library};
use cascade_mappings::model::{ArchP, CostModel, GroupPlan};
use cascade_mappings::{search_group, Problem, Search};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::hint::black_box;

fn problem(cascade: &str, e: &[(&str, u64)]) -> Problem {
    let c = library::load(cascade).unwrap().cascade;
    let ext: BTreeMap<String, u64> = e.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let sh = bind(&c, &ext).unwrap();
    Problem::new(&c, &sh, 2, None).unwrap()
}

/// A GEMM 4096³ on the fusemax preset's 2D array, mapped by a short search.
fn gemm() -> (Problem, ArchP, GroupPlan) {
    let p = problem("gemm", &[("T", 4096), ("K", 4096), ("N", 4096)]);
    let a = ArchP::new(&cascade_arch::preset("fusemax").unwrap(), &p).unwrap();
    let s = Search::default().budget(2_000).restarts(2);
    let plan = search_group(&p, &a, &[0], &Analytical::default(), &s)
        .unwrap()
        .plan;
    (p, a, plan)
}

fn attention() -> (Problem, ArchP, GroupPlan) {
    let seq = 16384;
    let p = problem(
        "attention_1pass",
        &[
            ("B", 64),
            ("H", 12),
            ("E", 64),
            ("F", 64),
            ("M", seq),
            ("P", seq),
            ("M0", 256),
        ],
    );
    let a = ArchP::new(&cascade_arch::preset("fusemax").unwrap(), &p).unwrap();
    let g = cascade::reproduce::fusemax_mapping_1(&p, &a, 64).unwrap();
    (p, a, g)
}

fn bench(c: &mut Criterion) {
    let model = Analytical::default();
    let (p, a, g) = gemm();
    let mut grp = c.benchmark_group("evaluate");
    grp.throughput(Throughput::Elements(1));
    grp.bench_function("gemm_4096_3level", |b| {
        b.iter(|| {
            model
                .score(black_box(&p), &a, black_box(&g))
                .unwrap()
                .cycles
        })
    });
    let (pa, aa, ga) = attention();
    grp.bench_function("attention_1pass_16k", |b| {
        b.iter(|| {
            model
                .score(black_box(&pa), &aa, black_box(&ga))
                .unwrap()
                .cycles
        })
    });
    grp.finish();

    // Independent evaluations on every core (rayon): the mapper's raw model throughput.
    let mut grp = c.benchmark_group("evaluate_parallel");
    grp.sample_size(10);
    let n = 200_000u64;
    grp.throughput(Throughput::Elements(n));
    grp.bench_function("gemm_4096_3level", |b| {
        b.iter(|| {
            (0..n)
                .into_par_iter()
                .map(|_| model.score(&p, &a, &g).unwrap().cycles)
                .sum::<f64>()
        })
    });
    grp.finish();

    let mut grp = c.benchmark_group("search");
    grp.sample_size(10);
    for (name, p, a) in [
        ("gemm_4096_3level", &p, &a),
        ("attention_1pass_16k", &pa, &aa),
    ] {
        let s = Search::default().budget(50_000).restarts(4).patience(1000);
        let all: Vec<usize> = (0..p.einsums.len()).collect();
        let n = search_group(p, a, &all, &model, &s).unwrap().evaluations;
        grp.throughput(Throughput::Elements(n));
        grp.bench_function(name, |b| {
            b.iter(|| search_group(p, a, &all, &model, &s).unwrap().evaluations)
        });
    }
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
