//! Model evaluations per second (criterion): one evaluation of a GEMM mapping and of
//! FuseMax's Mapping 1 for 1-pass attention, and whole searches (rayon over restarts)
//! reported as evaluations/s via criterion's throughput.

use cascade::spatial::analytical::{evaluate, Analytical};
use cascade_einsum::{bind, library};
use cascade_mappings::model::{ArchP, GroupPlan, NONE};
use cascade_mappings::{search_group, Problem, Search};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::hint::black_box;

fn problem(cascade: &str, e: &[(&str, u64)]) -> Problem {
    let c = library::load(cascade).unwrap().cascade;
    let ext: BTreeMap<String, u64> = e.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let sh = bind(&c, &ext).unwrap();
    Problem::new(&c, &sh, 2, None)
}

fn gemm() -> (Problem, ArchP, GroupPlan) {
    let p = problem("gemm", &[("T", 4096), ("K", 4096), ("N", 4096)]);
    let a = ArchP::new(&cascade_arch::preset("fusemax").unwrap(), &p).unwrap();
    let r = |n: &str| p.rank_index(n).unwrap();
    let mut spatial: Vec<Vec<(usize, u64)>> = a
        .units
        .iter()
        .map(|u| vec![(NONE, 1); u.dims.len()])
        .collect();
    let u2 = a.unit_index("pe2d").unwrap();
    spatial[u2] = vec![(r("T"), 256), (r("N"), 256)];
    let plan = GroupPlan {
        einsums: vec![0],
        loops: vec![(r("T"), 16), (r("N"), 16)],
        spatial,
        binding: vec![u2],
        spill: 0,
        keep: vec![],
    };
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
    let (p, a, g) = gemm();
    let mut grp = c.benchmark_group("evaluate");
    grp.throughput(Throughput::Elements(1));
    grp.bench_function("gemm_4096", |b| {
        b.iter(|| evaluate(black_box(&p), &a, black_box(&g)).unwrap().cycles)
    });
    let (pa, aa, ga) = attention();
    grp.bench_function("attention_1pass_16k", |b| {
        b.iter(|| {
            evaluate(black_box(&pa), &aa, black_box(&ga))
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
    grp.bench_function("gemm_4096", |b| {
        b.iter(|| {
            (0..n)
                .into_par_iter()
                .map(|_| evaluate(&p, &a, &g).unwrap().cycles)
                .sum::<f64>()
        })
    });
    grp.finish();

    let mut grp = c.benchmark_group("search");
    grp.sample_size(10);
    for (name, p, a) in [("gemm_4096", &p, &a), ("attention_1pass_16k", &pa, &aa)] {
        let s = Search::default().budget(100_000).restarts(4).patience(1000);
        let n = search_group(
            p,
            a,
            &(0..p.einsums.len()).collect::<Vec<_>>(),
            &Analytical,
            &s,
        )
        .unwrap()
        .evaluations;
        grp.throughput(Throughput::Elements(n));
        grp.bench_function(name, |b| {
            b.iter(|| {
                search_group(
                    p,
                    a,
                    &(0..p.einsums.len()).collect::<Vec<_>>(),
                    &Analytical,
                    &s,
                )
                .unwrap()
                .evaluations
            })
        });
    }
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
