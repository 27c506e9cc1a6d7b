//! `cascade infer`: a static batch's prefill and decode steps (see [`crate::infer`]), printed as
//! a summary with the ops of the prefill step and of the last decode step, or as JSON.

use crate::infer::{
    run_static_on, InferReport, Parallel, Request, ServeConfig, ServeReport, StaticRun, Step,
};
use crate::workload::Workload;
use anyhow::{anyhow, Result};

/// `--pim`: the PIM units `name` beside the xPU (a preset of [`cascade_arch::PIM_PRESETS`]),
/// or `none` to drop the architecture's.
pub fn set_pim(a: &mut cascade_arch::Architecture, name: Option<&str>) -> Result<()> {
    let Some(name) = name else { return Ok(()) };
    if name == "none" {
        a.pim = None;
        return Ok(());
    }
    if !cascade_arch::PIM_PRESETS.contains(&name) {
        anyhow::bail!(
            "--pim {name}: no PIM preset of that name (presets: {}, or none)",
            cascade_arch::PIM_PRESETS.join(", ")
        );
    }
    if a.gpu.is_none() {
        anyhow::bail!(
            "--pim {name}: `{}` has no [gpu] section; PIM units co-process with a GPU-like xPU",
            a.name
        );
    }
    let coprocess = a.pim.as_ref().is_none_or(|p| p.coprocess);
    a.pim = Some(cascade_arch::PimSpec {
        arch: name.to_string(),
        coprocess,
    });
    Ok(())
}

/// Runs the model and returns its report; shows progress on runs of many steps. With
/// `roofline`, every xPU op is priced at its roofline and PIM paths at their peak (Duplex's
/// simulator's assumptions, for cross-checks against such simulators).
pub fn infer(
    workload: &str,
    arch: &cascade_arch::Architecture,
    run: StaticRun,
    par: Parallel,
    link: Option<cascade_arch::Link>,
    tiers: Option<crate::infer::Tiers>,
    roofline: bool,
) -> Result<InferReport> {
    let w = Workload::load(workload)?;
    let progress = crate::progress::Progress::new("infer", run.generate).unit("steps");
    let mut on_step = |_done: u64, _total: u64| {
        let _s = progress.step();
    };
    let r = if roofline {
        if tiers.is_some() || arch.gpu.is_none() {
            anyhow::bail!("--roofline prices a GPU's (and its PIM units') ops; not with offloading or a spatial accelerator");
        }
        let opts = crate::infer::duplex::DuplexOptions {
            pim: arch.pim.is_none().then(|| "none".to_string()),
            roofline: true,
        };
        crate::infer::run_static_duplex(&w, arch, run, par, link, &opts, &mut on_step)
    } else {
        run_static_on(&w, arch, run, par, link, tiers, &mut on_step)
    }
    .map_err(|e| anyhow!("{}: {e}", w.name))?;
    progress.finish();
    Ok(r)
}

/// The text form: a summary, then one table per detailed step.
pub fn render(r: &InferReport) -> String {
    let mut s = String::new();
    let gb = |x: f64| x / 1e9;
    s += &format!(
        "{} on {}: batch {}, prompt {} tokens, {} generated per sequence\n",
        r.workload, r.arch, r.run.batch, r.run.prompt, r.run.generate
    );
    let p = &r.parallel;
    if p.devices > 1 {
        s += &format!(
            "  {} devices over {}: tensor-parallel {}, pipeline {}, data-parallel {}, expert-parallel {}\n",
            p.devices,
            r.link.as_deref().unwrap_or("no link"),
            p.tp,
            p.pp,
            p.dp(),
            p.ep
        );
    }
    let f = &r.footprint;
    s += &format!(
        "  memory on {} (each device): weights {:.2} GB + KV cache {:.2} GB ({} tokens) + activations {:.2} GB = {:.2} GB{}\n",
        f.level,
        gb(f.device_weights),
        gb(f.device_kv),
        f.kv_tokens,
        gb(f.activations),
        gb(f.total()),
        f.capacity.map_or(String::new(), |c| format!(" of {:.2} GB", gb(c)))
    );
    if let Some(t) = &r.tiers {
        s += &format!(
            "  weights on {}, KV cache on {}: host link {} ({:.1} GB/s){}; host {:.2} GB, SSD {:.2} GB\n",
            t.weights.name(),
            t.kv.name(),
            t.host_link.name,
            t.host_link.bandwidth.bytes_per_s() / 1e9,
            t.ssd.as_ref().map_or(String::new(), |d| format!(
                ", SSD {} ({:.2} GB/s sequential reads, flash model)",
                d.drive,
                d.read_bytes_per_s / 1e9
            )),
            f.host / 1e9,
            f.ssd / 1e9
        );
        s += &format!(
            "  over the host link {:.3e} B, from the SSD {:.3e} B\n",
            r.host_link_bytes, r.ssd_bytes
        );
    }
    s += &format!(
        "  time to first token  {:.4e} s ({}-bound)\n",
        r.ttft_s,
        r.prefill.bound()
    );
    if let Some(t) = &r.tbt {
        s += &format!(
            "  time between tokens  median {:.4e} s, p99 {:.4e} s (min {:.4e}, max {:.4e})\n",
            t.median_s, t.p99_s, t.min_s, t.max_s
        );
    }
    let counted = r.energy_counts;
    s += &format!(
        "  total {:.4e} s, {:.1} tokens/s, {:.4e} J per token ({counted}), HBM {:.3e} B\n",
        r.total_s, r.tokens_per_s, r.energy_per_token_j, r.hbm_bytes
    );
    if let Some(p) = &r.pim {
        let tokens = (r.run.batch * r.run.generate) as f64;
        s += &format!(
            "  PIM units {p}: energy per token {}\n",
            r.energy_by_unit_j
                .iter()
                .map(|(u, e)| format!("{u} {:.4e} J", e / tokens))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s += &step_table("prefill step", &r.prefill);
    if let Some(d) = &r.last_decode {
        s += &step_table(&format!("last decode step ({} keys)", d.shape.context), d);
    }
    s
}

fn step_table(title: &str, st: &Step) -> String {
    let mut s = format!(
        "{title}: {:.4e} s, HBM {:.3e} B ({} ops)\n",
        st.seconds,
        st.hbm_bytes,
        st.ops.iter().map(|o| o.times).sum::<u64>()
    );
    for o in &st.ops {
        s += &format!(
            "  {:<11} {:>3} × {:.4e} s  {:<7} {}\n",
            o.role,
            o.times,
            o.seconds,
            o.bound.name(),
            o.spec
        );
    }
    s
}

/// Serves `reqs`, showing progress by finished requests.
pub fn serve(
    workload: &str,
    arch: &cascade_arch::Architecture,
    par: Parallel,
    link: Option<cascade_arch::Link>,
    reqs: &[Request],
    cfg: &ServeConfig,
) -> Result<ServeReport> {
    let w = Workload::load(workload)?;
    let progress = crate::progress::Progress::new("serve", reqs.len() as u64).unit("requests");
    let mut seen = 0;
    let mut on_done = |done: u64, _total: u64| {
        while seen < done {
            let _s = progress.step();
            seen += 1;
        }
    };
    let r = crate::infer::serve(&w, arch, par, link, reqs, cfg, &mut on_done)
        .map_err(|e| anyhow!("{}: {e}", w.name))?;
    progress.finish();
    Ok(r)
}

/// The text form of a serving run.
pub fn render_serve(r: &ServeReport) -> String {
    let mut s = format!(
        "{} on {}: {} requests served{}\n",
        r.workload,
        r.arch,
        r.requests,
        if r.config.chunked {
            format!(
                ", chunked prefill ({} tokens a step)",
                r.config.token_budget
            )
        } else {
            String::new()
        }
    );
    let p = &r.parallel;
    if p.devices > 1 {
        s += &format!(
            "  {} devices over {}: tensor-parallel {}, expert-parallel {}\n",
            p.devices,
            r.link.as_deref().unwrap_or("no link"),
            p.tp,
            p.ep
        );
    }
    let lat = |name: &str, l: &crate::infer::Latencies| {
        format!(
            "  {name:<20} mean {:.4e} s, median {:.4e} s, p99 {:.4e} s (max {:.4e})\n",
            l.mean_s, l.median_s, l.p99_s, l.max_s
        )
    };
    s += &lat("time to first token", &r.ttft);
    if let Some(t) = &r.tbt {
        s += &lat("time between tokens", t);
    }
    s += &lat("request latency", &r.e2e);
    s += &format!(
        "  {} tokens in {:.4e} s: {:.1} tokens/s, {:.3} requests/s; {:.4e} J per token ({})\n",
        r.output_tokens,
        r.makespan_s,
        r.tokens_per_s,
        r.requests_per_s,
        r.energy_per_token_j,
        r.energy_counts
    );
    s += &format!(
        "  steps: {} prefill, {} decode, {} mixed; {} preemptions; KV cache peak {} of {} tokens\n",
        r.prefill_steps,
        r.decode_steps,
        r.mixed_steps,
        r.preemptions,
        r.peak_kv_tokens,
        r.kv_capacity_tokens
    );
    s
}

/// The placement of `--weights-on`/`--kv-on` (`None`: everything on the device), with the host
/// link, the host's memory and the SSD (its read rate from the flash model).
pub fn tiers(
    weights_on: &str,
    kv_on: &str,
    host_link: &str,
    host_memory: Option<&str>,
    ssd: Option<&str>,
) -> Result<Option<crate::infer::Tiers>> {
    use crate::infer::{tiers::SsdTier, Tier, Tiers};
    let weights = Tier::parse(weights_on, "weights").map_err(anyhow::Error::msg)?;
    let kv = Tier::parse(kv_on, "kv").map_err(anyhow::Error::msg)?;
    if weights == Tier::Device && kv == Tier::Device {
        if host_memory.is_some() || ssd.is_some() {
            anyhow::bail!("--host-memory and --ssd describe offloading tiers: give --weights-on or --kv-on too");
        }
        return Ok(None);
    }
    let link = cascade_arch::Link::load(host_link)?;
    let host_capacity = match host_memory {
        Some(m) => Some(
            m.parse::<cascade_arch::Bytes>()
                .map_err(|e| anyhow!("--host-memory {m}: {e}"))?
                .bytes(),
        ),
        None => None,
    };
    let ssd = match (weights, ssd) {
        (Tier::Ssd, Some(d)) => {
            let spec = if crate::flash::PRESETS.iter().any(|(n, _)| *n == d) {
                crate::flash::preset(d).map_err(anyhow::Error::msg)?
            } else {
                let text = std::fs::read_to_string(d).map_err(|e| anyhow!("--ssd {d}: {e}"))?;
                crate::flash::FlashSpec::from_toml(&text, d).map_err(anyhow::Error::msg)?
            };
            let rate = crate::infer::tiers::ssd_read_rate(&spec).map_err(anyhow::Error::msg)?;
            Some(SsdTier {
                drive: spec.name.clone(),
                capacity: spec.logical_bytes() as f64,
                read_bytes_per_s: rate,
            })
        }
        (Tier::Ssd, None) => anyhow::bail!(
            "--weights-on ssd needs --ssd (a flash preset such as ssd980pro, or a drive TOML)"
        ),
        (_, Some(_)) => anyhow::bail!("--ssd names the drive of --weights-on ssd"),
        _ => None,
    };
    let t = Tiers {
        weights,
        kv,
        host_link: link,
        host_capacity,
        ssd,
    };
    t.check().map_err(anyhow::Error::msg)?;
    Ok(Some(t))
}
