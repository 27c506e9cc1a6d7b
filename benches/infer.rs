//! `cascade infer` speed (criterion): a whole 32-layer Llama-3-8B step on the H200 model, from a
//! fresh stepper (every op lowered and estimated; the GPU calibration, once per process, is done
//! before timing), and a decode step of a running generation (only its attention, over one more
//! key, is new). The target: a 32-layer step in < 50 ms of wall time on 2 cores. And a
//! 1,000-request continuous-batching run (Poisson arrivals, 4 per second, 512-token prompts
//! generating 128 tokens; target < 10 s on 2 cores), from a fresh server each time.

use cascade::infer::{poisson, serve, GpuStepper, Parallel, ServeConfig, StepShape};
use cascade::workload::{Phase, Workload};
use cascade_arch::Architecture;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let w = Workload::load("llama3_8b").unwrap();
    let a = Architecture::load("arch/presets/h200.toml").unwrap();
    let shape = |phase, batch, new_tokens, context| StepShape {
        phase,
        batch,
        new_tokens,
        context,
    };
    // The calibration of the preset's measured ceilings, once per process.
    GpuStepper::new(&w, &a).unwrap();
    let mut grp = c.benchmark_group("infer");
    grp.sample_size(10);
    grp.bench_function("llama3_8b_prefill_step_fresh_b1_l2048", |b| {
        b.iter(|| {
            let mut st = GpuStepper::new(&w, &a).unwrap();
            black_box(
                st.step(shape(Phase::Prefill, 1, 2048, 2048))
                    .unwrap()
                    .seconds,
            )
        })
    });
    grp.bench_function("llama3_8b_decode_step_fresh_b8_l2048", |b| {
        b.iter(|| {
            let mut st = GpuStepper::new(&w, &a).unwrap();
            black_box(st.step(shape(Phase::Decode, 8, 1, 2048)).unwrap().seconds)
        })
    });
    let mut st = GpuStepper::new(&w, &a).unwrap();
    let mut ctx = 2048;
    grp.bench_function("llama3_8b_decode_step_running_b8", |b| {
        b.iter(|| {
            ctx += 1;
            black_box(st.step(shape(Phase::Decode, 8, 1, ctx)).unwrap().seconds)
        })
    });
    let reqs = poisson(1000, 4.0, 512, 128, 0).unwrap();
    grp.bench_function("llama3_8b_serve_1000_requests_rate4", |b| {
        b.iter(|| {
            let r = serve(
                &w,
                &a,
                Parallel::ONE,
                None,
                &reqs,
                &ServeConfig::default(),
                &mut |_, _| {},
            )
            .unwrap();
            black_box(r.makespan_s)
        })
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
