//! Impossible or meaningless inputs are refused end-to-end with the reason, located in the file
//! (issue 9, "Hardening"): architecture values outside their physical range, mappings that
//! cannot run as written (spatial factors above a fanout, a rank unrolled twice over one
//! dimension, factors that do not cover a rank or pad it by 2× or more, Einsums mapped twice
//! or never, unknown names, tiles that overflow a level), and constraints naming things that
//! exist nowhere or that apply to no cascade mapped.

use std::process::Output;

mod common;
use common::{cascade, stderr, stdout};

fn tmp(name: &str, text: &str) -> String {
    common::tmp_in("validity", name, text)
}

/// The command fails (exit 1, nothing on stdout) with one `error: FILE:LINE:COL: …` line whose
/// message holds `want`.
fn refused(o: &Output, file: &str, at: &str, want: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}\n{}", stdout(o));
    assert!(!e.contains("panicked"), "{e}");
    let first = e.lines().next().unwrap_or("");
    assert!(
        first.starts_with(&format!("error: {file}:{at}: ")),
        "{first}\nwanted at {file}:{at}"
    );
    assert!(first.contains(want), "{first}\nwanted: {want}");
}

const O_PROJ: &str = "mappings/saved/bert_base_o_proj_fusemax.toml";

fn saved(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `simulate` of the saved o_proj mapping with `from` replaced by `to`.
fn simulate_edited(name: &str, from: &str, to: &str) -> (Output, String) {
    let text = saved(O_PROJ);
    assert!(text.contains(from), "{from}");
    let f = tmp(name, &text.replacen(from, to, 1));
    (cascade(&["simulate", "--mapping", &f]), f)
}

#[test]
fn the_saved_mapping_replays_with_finite_figures() {
    let o = cascade(&["simulate", "--mapping", O_PROJ, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for bad in ["null", "NaN", "inf"] {
        assert!(!out.contains(bad), "{bad} in {out}");
    }
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for (_, u) in v["utilization"].as_object().unwrap() {
        assert!(u.as_f64().unwrap() <= 1.0, "{u}");
    }
}

#[test]
fn mappings_that_cannot_run_are_refused_with_the_field() {
    const T_DIM0: &str = "dim = 0\nowner = \"pe2d\"\nrank = \"T\"\nfactor = 256\n";
    const K_TEMPORAL: &str = "level = \"rf2d\"\nowner = \"pe2d\"\nrank = \"K\"\nfactor = 3\n";
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // Spatial factors over one fanout dimension above its size: 256 × 3 over rf2d's 256.
        (
            "fanout",
            K_TEMPORAL,
            "level = \"rf2d\"\ndim = 0\nowner = \"pe2d\"\nrank = \"K\"\nfactor = 3\n",
            "46:1",
            "groups[0].loops[4].factor: spatial factors over dimension 0 of rf2d multiply to 768, above its 256 instances",
        ),
        // The same rank unrolled twice over one dimension (128 × 2 = 256 fits, but means one loop).
        (
            "repeated",
            T_DIM0,
            "dim = 0\nowner = \"pe2d\"\nrank = \"T\"\nfactor = 128\n\n[[groups.loops]]\nlevel = \"rf2d\"\ndim = 0\nowner = \"pe2d\"\nrank = \"T\"\nfactor = 2\n",
            "38:1",
            "groups[0].loops[3].rank: rank T is unrolled over dimension 0 of rf2d by loops[2] already",
        ),
        // Factors that do not cover the rank, or pad it to twice its extent.
        (
            "short",
            "factor = 768",
            "factor = 700",
            "25:1",
            "groups[0].loops[1].factor: the loops of Einsum C over rank N multiply to 700, less than its extent 768",
        ),
        (
            "padded",
            "factor = 768",
            "factor = 1536",
            "25:1",
            "multiply to 1536, at least twice its extent 768",
        ),
        // Groups: empty, an Einsum twice, an Einsum in two groups.
        (
            "empty",
            "einsums = [\"C\"]",
            "einsums = []",
            "11:1",
            "groups[0].einsums: a group maps at least one Einsum",
        ),
        (
            "twice",
            "einsums = [\"C\"]",
            "einsums = [\"C\", \"C\"]",
            "11:17",
            "groups[0].einsums[1]: Einsum C is already mapped by groups[0]",
        ),
        (
            "unknown-einsum",
            "einsums = [\"C\"]",
            "einsums = [\"C\", \"X\"]",
            "11:17",
            "groups[0].einsums[1]: unknown Einsum `X` (Einsums: C)",
        ),
        // Bindings, spills and extents naming what does not exist.
        (
            "binding",
            "C = \"pe2d\"",
            "C = \"pe2d\"\nX = \"pe2d\"",
            "16:1",
            "groups[0].bindings.X: binds `X`, which is not an Einsum of this group",
        ),
        (
            "spill",
            "fuse = \"global_buffer\"",
            "fuse = \"global_buffer\"\nspill = [\"Q\"]",
            "13:10",
            "groups[0].spill[0]: unknown tensor `Q` (tensors: A, C, W)",
        ),
        (
            "spill-input",
            "fuse = \"global_buffer\"",
            "fuse = \"global_buffer\"\nspill = [\"A\"]",
            "13:10",
            "groups[0].spill[0]: A is not an intermediate produced in this group",
        ),
        (
            "extent",
            "K = 768",
            "K = 768\nZ = 4",
            "7:1",
            "extents.Z: cascade gemm has no rank Z",
        ),
        (
            "extent0",
            "K = 768",
            "K = 0",
            "6:1",
            "extents.K: extents are ≥ 1",
        ),
        (
            "dtype",
            "dtype_bytes = 2",
            "dtype_bytes = 4611686018427387904",
            "3:1",
            "dtype_bytes: must be ≥ 1 and ≤ 128 (bytes per element)",
        ),
        // Routing naming a rank the cascade lacks, or not one count per expert.
        (
            "routing-rank",
            "[extents]",
            "[routing]\nexpert_rank = \"Z\"\ntokens = 4\ntokens_per_expert = [1, 3]\n\n[extents]",
            "6:1",
            "routing.expert_rank: cascade gemm has no rank `Z` (ranks: K, N, T)",
        ),
        (
            "routing-count",
            "[extents]",
            "[routing]\nexpert_rank = \"K\"\ntokens = 4\ntokens_per_expert = [1, 3]\n\n[extents]",
            "8:1",
            "routing.tokens_per_expert: gives 2 experts, but rank K has extent 768",
        ),
        (
            "keep-twice",
            "[[groups.keep]]\ntensor = \"A\"\nlevel = \"rf1d\"\nbypass = true\n",
            "[[groups.keep]]\ntensor = \"A\"\nlevel = \"rf1d\"\nbypass = true\n\n[[groups.keep]]\ntensor = \"A\"\nlevel = \"rf1d\"\nbypass = true\n",
            "77:1",
            "groups[0].keep[6]: tensor A at level rf1d is already placed by keep[5]",
        ),
    ];
    for (name, from, to, at, want) in cases {
        let (o, f) = simulate_edited(&format!("{name}.toml"), from, to);
        refused(&o, &f, at, want);
    }
    // The Einsum mapped by two groups, or by none.
    let text = saved(O_PROJ);
    let two = format!(
        "{text}\n[[groups]]\neinsums = [\"C\"]\nfuse = \"global_buffer\"\n[groups.bindings]\nC = \"pe2d\"\n"
    );
    let f = tmp("two-groups.toml", &two);
    let o = cascade(&["simulate", "--mapping", &f]);
    refused(
        &o,
        &f,
        "78:12",
        "groups[1].einsums[0]: Einsum C is already mapped by groups[0]",
    );
    let none = format!("groups = []\n{}", text.split("[[groups]]").next().unwrap());
    let f = tmp("no-groups.toml", &none);
    let o = cascade(&["simulate", "--mapping", &f]);
    refused(&o, &f, "1:1", "groups: Einsum C is not mapped by any group");
}

#[test]
fn tiles_that_overflow_a_level_are_refused() {
    let arch = cascade_arch::preset_source("fusemax")
        .unwrap()
        .replace("capacity = \"16 MiB\"", "capacity = \"64 KiB\"");
    let a = tmp("small-glb.toml", &arch);
    let o = cascade(&["simulate", "--mapping", O_PROJ, "--arch", &a]);
    refused(
        &o,
        O_PROJ,
        "10:1",
        "groups[0]: cannot run: tiles kept at level global_buffer need",
    );
}

/// Architecture values that made reports infinite or NaN with exit 0 are refused where they are
/// written, naming the field and the accepted range; so is a zero bandwidth.
#[test]
fn architecture_values_outside_their_range_are_refused() {
    let base = cascade_arch::preset_source("fusemax").unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "clock = \"940 MHz\"",
            "clock = \"1e-320 Hz\"",
            "9:9",
            "clock: frequency is below the smallest physical value, got \"1e-320 Hz\" (accepted: 1 kHz to 100 GHz)",
        ),
        (
            "capacity = \"16 MiB\"",
            "capacity = \"1e-30 B\"",
            "31:12",
            "levels[1] (global_buffer).capacity: capacity is below the smallest physical value, got \"1e-30 B\" (accepted: 1 bit (0.125 B) to 1 PB)",
        ),
        (
            "bandwidth = \"400 GiB/s\"",
            "bandwidth = \"0 GB/s\"",
            "23:13",
            "levels[0] (dram).bandwidth: bandwidth must be > 0, got \"0 GB/s\" (accepted: 1 B/s to 1 PB/s)",
        ),
    ];
    for (i, (from, to, at, want)) in cases.iter().enumerate() {
        assert!(base.contains(from), "{from}");
        let f = tmp(&format!("arch{i}.toml"), &base.replacen(from, to, 1));
        for args in [
            vec!["simulate", "--mapping", O_PROJ, "--arch", &f],
            vec![
                "map",
                "--cascade",
                "gemm",
                "--set",
                "T=64",
                "--set",
                "K=64",
                "--set",
                "N=64",
                "--arch",
                &f,
                "--budget",
                "10",
            ],
        ] {
            let o = cascade(&args);
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{e}");
            let first = e.lines().next().unwrap();
            assert!(first.starts_with(&format!("error: {f}:")), "{first}");
            assert!(
                first.contains(at) && first.contains(want),
                "{first}\nwanted {at}: {want}"
            );
        }
    }
    // An energy so large that the totals overflow.
    let energy = base.replacen("read = \"", "read = \"1e308 J\" #", 1);
    let f = tmp("arch-energy.toml", &energy);
    let o = cascade(&["simulate", "--mapping", O_PROJ, "--arch", &f]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("levels[0] (dram).energy.read: energy is above the largest physical value, got \"1e308 J\" (accepted: 0 J to 1 mJ)"),
        "{e}"
    );
}

/// The constraints example of README.md (the first TOML block after "Constraints (TOML)").
fn readme_constraints() -> String {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let at = readme
        .find("Constraints (TOML)")
        .expect("README has the constraints example");
    let block = readme[at..].split("```toml\n").nth(1).unwrap();
    block.split("```").next().unwrap().to_string()
}

fn map_bert(constraints: &str, name: &str) -> (Output, String) {
    let f = tmp(name, constraints);
    let o = cascade(&[
        "map",
        "--workload",
        "bert_base",
        "--arch",
        "fusemax",
        "--constraints",
        &f,
        "--budget",
        "200",
    ]);
    (o, f)
}

#[test]
fn the_readme_constraints_map_bert_base() {
    let (o, _) = map_bert(&readme_constraints(), "readme.toml");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let attention = out.lines().find(|l| l.contains("attention_1pass")).unwrap();
    assert!(attention.contains(" s ("), "{attention}");
}

/// An entry applies only to the cascades that have every name it uses: restricting rf2d's
/// first dimension to attention's M0 leaves the projections (GEMMs, no M0) free to fill it.
#[test]
fn constraints_apply_only_to_the_cascades_they_name() {
    let (o, _) = map_bert(
        "[[spatial]]\nlevel = \"rf2d\"\ndim = 0\nranks = [\"M0\"]\n",
        "scoped.toml",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let o_proj = out.lines().find(|l| l.contains("o_proj")).unwrap();
    let util: f64 = o_proj
        .split("pe2d ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{o_proj}"));
    assert!(util > 0.9, "{o_proj}");
}

#[test]
fn bad_constraints_are_refused_with_the_reason() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[[spatial]]\nunit = \"pe3d\"\ndim = 0\n",
            "2:1",
            "spatial[0].unit: fusemax has no compute unit `pe3d` (units: pe2d, pe1d)",
        ),
        (
            "[[spatial]]\nlevel = \"rf2d\"\ndim = 2\n",
            "3:1",
            "spatial[0].dim: rf2d has 2 fanout dimension(s) ([256, 256]): dim 2 does not exist",
        ),
        (
            "[[spatial]]\nunit = \"pe2d\"\ndim = 1\nranks = [\"M0\"]\n",
            "3:1",
            "spatial[0].dim: pe2d has 1 fanout dimension(s) ([1]): dim 1 does not exist",
        ),
        (
            "[[spatial]]\nlevel = \"rf2d\"\ndim = 0\nfactors = { M0 = 512 }\n",
            "4:13",
            "spatial[0].factors.M0: factor 512 is above the 256 instances of rf2d on dim 0",
        ),
        (
            "[[temporal]]\nlevel = \"glb\"\n",
            "2:1",
            "temporal[0].level: fusemax has no level `glb` (levels: dram, global_buffer, rf2d, rf1d)",
        ),
        (
            "[[bind]]\neinsum = \"AV\"\nunit = \"tensorcore\"\n",
            "3:1",
            "bind[0].unit: fusemax has no compute unit `tensorcore`",
        ),
        (
            "[[bind]]\neinsum = \"XY\"\nunit = \"pe1d\"\n",
            "2:1",
            "bind[0].einsum: no cascade mapped (layernorm, gemm, attention_1pass, ffn_gelu) has an Einsum `XY`",
        ),
        (
            "[[temporal]]\nlevel = \"dram\"\nfactors = { Q9 = 1 }\n",
            "3:13",
            "temporal[0].factors.Q9: no cascade mapped (layernorm, gemm, attention_1pass, ffn_gelu) has a rank `Q9`",
        ),
        (
            "[[spatial]]\nlevel = \"rf2d\"\nranks = [\"M0\", \"Z\"]\n",
            "3:16",
            "spatial[0].ranks[1]: no cascade mapped",
        ),
        (
            "[[bypass]]\nlevel = \"global_buffer\"\nkeep = [\"NOPE\"]\n",
            "3:9",
            "bypass[0].keep[0]: no cascade mapped (layernorm, gemm, attention_1pass, ffn_gelu) has a tensor `NOPE`",
        ),
        // A fixed factor that only pads (M0 is 256 in bert_base's attention).
        (
            "[[temporal]]\nlevel = \"dram\"\nfactors = { M0 = 512 }\n",
            "3:13",
            "temporal[0].factors.M0: factor 512 is at least twice the extent 256 of rank M0 in cascade attention_1pass",
        ),
        // Names of two different cascades in one entry: it applies to none of them.
        (
            "[[spatial]]\nlevel = \"rf2d\"\nranks = [\"M0\", \"N\"]\n",
            "1:1",
            "spatial[0]: no single cascade mapped (layernorm, gemm, attention_1pass, ffn_gelu) has all of M0, N: the entry applies to none",
        ),
        (
            "[[bypass]]\nlevel = \"dram\"\nbypass = [\"Q\"]\n",
            "3:1",
            "bypass[0].bypass: dram is the root level",
        ),
        (
            "[[spatial]\nunit = \"pe2d\"\n",
            "1:11",
            "unclosed array table",
        ),
        (
            "[[spatial]]\nunit = \"pe2d\"\nrank = \"M0\"\n",
            "3:1",
            "unknown field `rank`",
        ),
    ];
    for (i, (text, at, want)) in cases.iter().enumerate() {
        let (o, f) = map_bert(text, &format!("bad{i}.toml"));
        refused(&o, &f, at, want);
    }
}
