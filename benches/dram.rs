//! DRAM model speed (criterion): simulated accesses per second for a streaming and a random
//! trace through the H100's HBM3 (80 channels, per-bank refresh) and a random trace through
//! DDR5-4800, reported as accesses/s through criterion's throughput. The 1 GiB figure of the
//! issue is the ignored test `dram::tests::speed_one_gib_streaming_on_hbm3`.

use cascade::dram::{run_workload, DramSpec, Pattern, SimOptions, Workload};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut grp = c.benchmark_group("dram");
    grp.sample_size(10);
    let cases = [
        (
            "hbm3_h100_stream_32MiB",
            "hbm3_h100",
            Workload::new(Pattern::Streaming { bytes: 32 << 20 }),
        ),
        (
            "hbm3_h100_random_256k",
            "hbm3_h100",
            Workload::new(Pattern::Random {
                footprint: 16 << 30,
                requests: 256 << 10,
            })
            .read_fraction(0.75)
            .seed(1),
        ),
        (
            "ddr5_4800_random_64k",
            "ddr5_4800",
            Workload::new(Pattern::Random {
                footprint: 1 << 30,
                requests: 64 << 10,
            })
            .read_fraction(0.75)
            .seed(1),
        ),
    ];
    for (name, preset, w) in cases {
        let spec = DramSpec::preset(preset).unwrap();
        let opts = SimOptions::default();
        let accesses = run_workload(&spec, &w, &opts).unwrap().report;
        grp.throughput(Throughput::Elements(
            accesses.accesses + accesses.forwarded_reads,
        ));
        grp.bench_function(name, |b| {
            b.iter(|| black_box(run_workload(&spec, &w, &opts).unwrap().report.cycles))
        });
    }
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
