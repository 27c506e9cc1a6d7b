//! Serving (`cascade infer --rate` / `--trace`, issue 12): admission by free KV blocks and
//! preemption, out-of-memory refusals, trace errors, the vLLM-style schedule against the steps
//! it is made of, chunked prefill, the pricing grid against exact pricing, determinism.

use cascade::infer::{
    parse_trace, poisson, serve, GpuStepper, Parallel, Request, ServeConfig, ServeReport, StepShape,
};
use cascade::workload::{Phase, Workload};
use cascade_arch::Architecture;

fn h200() -> Architecture {
    Architecture::load("arch/presets/h200.toml").unwrap()
}

fn llama() -> Workload {
    Workload::load("llama3_8b").unwrap()
}

fn run(reqs: &[Request], cfg: &ServeConfig) -> Result<ServeReport, String> {
    serve(
        &llama(),
        &h200(),
        Parallel::ONE,
        None,
        reqs,
        cfg,
        &mut |_, _| {},
    )
}

fn at_once(n: usize, prompt: u64, generate: u64) -> Vec<Request> {
    vec![
        Request {
            arrival_s: 0.0,
            prompt,
            generate,
        };
        n
    ]
}

#[test]
fn one_request_is_a_prefill_step_then_decode_steps() {
    let (w, a) = (llama(), h200());
    let cfg = ServeConfig {
        exact: true,
        ..Default::default()
    };
    let r = run(&at_once(1, 1000, 4), &cfg).unwrap();
    assert_eq!(
        (r.prefill_steps, r.decode_steps, r.output_tokens),
        (1, 3, 4)
    );
    let mut st = GpuStepper::new(&w, &a).unwrap();
    let shape = |phase, new_tokens, context| StepShape {
        phase,
        batch: 1,
        new_tokens,
        context,
    };
    // Decode steps are CUDA graphs: their three parts add up to the step exactly.
    let d: Vec<f64> = (1..4)
        .map(|i| st.step(shape(Phase::Decode, 1, 1000 + i)).unwrap().seconds)
        .collect();
    let tbt = r.tbt.as_ref().unwrap();
    assert!((tbt.min_s - d[0]).abs() < 1e-12, "{} {}", tbt.min_s, d[0]);
    assert!((tbt.max_s - d[2]).abs() < 1e-12, "{} {}", tbt.max_s, d[2]);
    // The prefill step is eager: its parts, each paced by the host, are within 2% of the
    // whole step's pacing.
    let p = st.step(shape(Phase::Prefill, 1000, 1000)).unwrap().seconds;
    assert!(
        (r.ttft.median_s / p - 1.0).abs() < 0.02,
        "{} {p}",
        r.ttft.median_s
    );
    assert!((r.e2e.max_s - r.ttft.max_s - d.iter().sum::<f64>()).abs() < 1e-9);
}

#[test]
fn a_full_kv_pool_holds_requests_back_and_preempts() {
    // 13% of 141 GB leaves about 2 GB for the KV cache after Llama-3-8B's 16 GB of weights:
    // some 15,000 tokens; 12 requests of 2,000 + 1,000 tokens cannot all run at once.
    let cfg = ServeConfig {
        memory_fraction: 0.13,
        ..Default::default()
    };
    let r = run(&at_once(12, 2000, 1000), &cfg).unwrap();
    assert!(r.kv_capacity_tokens < 20_000, "{}", r.kv_capacity_tokens);
    assert!(r.peak_kv_tokens <= r.kv_capacity_tokens);
    assert!(r.preemptions > 0, "{r:?}");
    assert_eq!(r.output_tokens, 12 * 1000);
    // Requests waited for blocks: the last first token comes long after the first.
    assert!(r.ttft.max_s > 10.0 * r.ttft.min_s, "{:?}", r.ttft);
    // With memory to spare, nothing is preempted, and the prompts are prefilled four at a time
    // (8,192 tokens a step).
    let roomy = run(&at_once(12, 2000, 1000), &ServeConfig::default()).unwrap();
    assert_eq!((roomy.preemptions, roomy.prefill_steps), (0, 3));
    assert!(roomy.makespan_s < r.makespan_s);
}

#[test]
fn what_cannot_fit_is_refused_naming_it() {
    let low = ServeConfig {
        memory_fraction: 0.1,
        ..Default::default()
    };
    let e = run(&at_once(1, 100, 10), &low).unwrap_err();
    assert!(
        e.contains("does not fit") && e.contains("leave no KV cache"),
        "{e}"
    );
    assert!(e.contains("`hbm` of h200"), "{e}");
    let e = run(&at_once(1, 600_000, 10), &ServeConfig::default()).unwrap_err();
    assert!(
        e.contains("request 0 needs a KV cache of 600010 tokens"),
        "{e}"
    );
    let e = run(&[], &ServeConfig::default()).unwrap_err();
    assert!(e.contains("no requests"), "{e}");
    let e = serve(
        &llama(),
        &h200(),
        Parallel {
            devices: 2,
            tp: 1,
            pp: 1,
            ep: 1,
        },
        cascade_arch::Link::preset("nvlink4").ok(),
        &at_once(1, 10, 10),
        &ServeConfig::default(),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(e.contains("data-parallel replicas are not modelled"), "{e}");
}

#[test]
fn traces_are_checked_with_their_location() {
    let ok = "[[request]]\narrival_s = 0.5\nprompt = 100\ngenerate = 10\n\n[[request]]\narrival_s = 0.1\nprompt = 20\ngenerate = 5\n";
    let v = parse_trace(ok, "t.toml").unwrap();
    // Sorted by arrival.
    assert_eq!(v[0].prompt, 20);
    let e = parse_trace(
        "[[request]]\narrival_s = 0.5\nprompt = 100\ngenrate = 10\n",
        "t.toml",
    )
    .unwrap_err();
    assert!(e.starts_with("t.toml:4:1:"), "{e}");
    assert!(e.contains("genrate"), "{e}");
    let e = parse_trace(
        "[[request]]\narrival_s = -1.0\nprompt = 100\ngenerate = 10\n",
        "t.toml",
    )
    .unwrap_err();
    assert!(e.contains("t.toml: request[0].arrival_s"), "{e}");
    let e = parse_trace(
        "[[request]]\narrival_s = 1.0\nprompt = 0\ngenerate = 10\n",
        "t.toml",
    )
    .unwrap_err();
    assert!(e.contains("request[0].prompt: must be ≥ 1"), "{e}");
    let e = parse_trace(
        "[[request]]\narrival_s = 1.0\nprompt = \"many\"\ngenerate = 10\n",
        "t.toml",
    )
    .unwrap_err();
    assert!(e.starts_with("t.toml:3:"), "{e}");
    assert!(poisson(10, 0.0, 1, 1, 0).unwrap_err().contains("--rate 0"));
    assert!(poisson(10, f64::NAN, 1, 1, 0).is_err());
}

#[test]
fn poisson_arrivals_keep_their_rate_and_seed() {
    let a = poisson(2000, 10.0, 100, 10, 7).unwrap();
    let last = a.last().unwrap().arrival_s;
    assert!((last / 200.0 - 1.0).abs() < 0.1, "{last}");
    assert!(a.windows(2).all(|w| w[0].arrival_s <= w[1].arrival_s));
    assert_eq!(a, poisson(2000, 10.0, 100, 10, 7).unwrap());
    assert_ne!(a, poisson(2000, 10.0, 100, 10, 8).unwrap());
}

#[test]
fn serving_is_deterministic() {
    let reqs = poisson(100, 20.0, 700, 50, 3).unwrap();
    let j = || serde_json::to_string(&run(&reqs, &ServeConfig::default()).unwrap()).unwrap();
    assert_eq!(j(), j());
}

#[test]
fn chunked_prefill_keeps_decodes_going() {
    // Long prompts arriving into a busy server: without chunking a prefill of several prompts
    // stalls every running request; chunks of 2,048 tokens a step bound the stall.
    let reqs = poisson(120, 12.0, 3000, 200, 5).unwrap();
    let plain = run(&reqs, &ServeConfig::default()).unwrap();
    let chunked = run(
        &reqs,
        &ServeConfig {
            chunked: true,
            token_budget: 2048,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(chunked.mixed_steps > 0 && plain.mixed_steps == 0);
    let (p, c) = (plain.tbt.unwrap(), chunked.tbt.unwrap());
    assert!(c.max_s < p.max_s, "chunked {c:?} plain {p:?}");
    assert_eq!(chunked.output_tokens, plain.output_tokens);
}

/// Requests of every prompt and output length (seeded), Poisson arrivals.
fn mixed_lengths(n: usize, rate: f64, seed: u64) -> Vec<Request> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut t = 0.0;
    (0..n)
        .map(|_| {
            let u: f64 = rng.random();
            t += -(1.0 - u).ln() / rate;
            Request {
                arrival_s: t,
                prompt: rng.random_range(50..3000),
                generate: rng.random_range(10..200),
            }
        })
        .collect()
}

/// The grid against exact pricing on the same trace. Means and the makespan, not medians: a
/// step a little shorter or longer moves where arrivals fall between steps, which shifts single
/// requests' waits both ways (one request's first token alone is within 3% either way).
#[test]
fn the_pricing_grid_stays_within_three_percent_of_exact_pricing() {
    for chunked in [false, true] {
        let reqs = mixed_lengths(60, 10.0, 11);
        let cfg = ServeConfig {
            chunked,
            token_budget: 2048,
            ..Default::default()
        };
        let fast = run(&reqs, &cfg).unwrap();
        let exact = run(
            &reqs,
            &ServeConfig {
                exact: true,
                ..cfg.clone()
            },
        )
        .unwrap();
        for (what, a, b) in [
            ("makespan", fast.makespan_s, exact.makespan_s),
            ("ttft mean", fast.ttft.mean_s, exact.ttft.mean_s),
            (
                "tbt mean",
                fast.tbt.as_ref().unwrap().mean_s,
                exact.tbt.as_ref().unwrap().mean_s,
            ),
            ("e2e mean", fast.e2e.mean_s, exact.e2e.mean_s),
            ("e2e p99", fast.e2e.p99_s, exact.e2e.p99_s),
        ] {
            assert!(
                (a / b - 1.0).abs() < 0.03,
                "{what} (chunked {chunked}): {a} vs {b}"
            );
        }
        assert!(
            fast.estimates < exact.estimates,
            "{} {}",
            fast.estimates,
            exact.estimates
        );
    }
}

// ---- The command line -------------------------------------------------------------------------

mod common;

#[test]
fn infer_flags_run_and_bad_ones_are_refused_without_a_panic() {
    use common::{cascade, stderr, stdout};
    let o = cascade(&[
        "infer",
        "--rate",
        "8",
        "--requests",
        "40",
        "--prompt",
        "300",
        "--generate",
        "20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("40 requests served"), "{out}");
    assert!(out.contains("time to first token"), "{out}");
    let o = cascade(&[
        "infer",
        "--generate",
        "2",
        "--devices",
        "2",
        "--tp",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["parallel"]["tp"], 2);
    assert_eq!(v["link"], "nvlink4");
    let trace = common::tmp_in(
        "serve",
        "bad.toml",
        "[[request]]\narrival_s = 0.0\nprompt = 10\ngenerat = 2\n",
    );
    for (args, want) in [
        (
            vec!["infer", "--weights-on", "gpu"],
            "--weights-on gpu: expected device, host or ssd",
        ),
        (
            vec!["infer", "--devices", "3", "--tp", "3"],
            "--tp 3: model.heads = 32",
        ),
        (vec!["infer", "--rate", "0"], "--rate 0"),
        (vec!["infer", "--trace", trace.as_str()], "bad.toml:4:1:"),
        (vec!["infer", "--trace", "no/such.toml"], "no/such.toml"),
        (
            vec!["infer", "--ssd", "ssd980pro"],
            "give --weights-on or --kv-on too",
        ),
        (
            vec!["infer", "--devices", "2", "--link", "nvlink9"],
            "nvlink9",
        ),
        (
            vec!["infer", "--weights-on", "host", "--host-memory", "lots"],
            "--host-memory lots",
        ),
        (
            vec![
                "infer",
                "--rate",
                "1",
                "--weights-on",
                "host",
                "--host-memory",
                "1 TiB",
            ],
            "not modelled for serving",
        ),
    ] {
        let o = cascade(&args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
}
