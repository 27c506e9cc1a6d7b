//! Integration tests: presets, the level tree, TOML errors located at their field, the fields
//! the general core refuses, round trips.

use cascade_arch::{preset, preset_names, preset_source, ArchError, Architecture};

const MINIMAL: &str = r#"
name = "tiny"
description = "test"
source = "test"
clock = "1 GHz"

[[levels]]
name = "dram"
kind = "dram"
width_bits = 64
bandwidth = "10 GB/s"
[levels.energy]
read = "100 pJ"
write = "100 pJ"

[[levels]]
name = "global_buffer"
kind = "sram"
capacity = "1 MiB"
width_bits = 256
read_bandwidth = "100 GB/s"
[levels.energy]
read = "10 pJ"
write = "10 pJ"

[[levels]]
name = "rf"
kind = "regfile"
fanout = [4, 2]
capacity = "64 B"
width_bits = 16
[levels.energy]
read = "1 pJ"
write = "1 pJ"

[[compute]]
name = "pe"
[compute.ops]
mac = { cycles = 1, energy = "1 pJ" }
"#;

fn parse(text: &str) -> Result<Architecture, ArchError> {
    Architecture::from_toml_str(text, "test.toml")
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in text"))
        + 1
}

/// The message of a located error, asserting its line.
fn located(text: &str, line: usize) -> String {
    match parse(text) {
        Err(e @ ArchError::Parse { line: l, .. }) => {
            assert_eq!(l, line, "{e}");
            e.to_string()
        }
        other => panic!("expected a located error at line {line}, got {other:?}"),
    }
}

#[test]
fn minimal_parses_into_a_chain() {
    let a = parse(MINIMAL).unwrap();
    assert_eq!(a.levels.len(), 3);
    assert_eq!(a.root().name, "dram");
    assert_eq!(a.parent(0), None);
    assert_eq!(a.parent(2), Some(1));
    assert_eq!(a.instances(2), 8);
    assert_eq!(a.unit_level(0), 2);
    assert_eq!(a.unit_path(0), vec![0, 1, 2]);
    assert_eq!(a.unit_pes(0), 8);
    assert_eq!(a.peak_ops_per_s("pe", "mac"), Some(8e9));
    assert_eq!(a.peak_ops_per_s("pe", "exp"), None);
    assert_eq!(a.peak_ops_per_s("nope", "mac"), None);
    // One shared port: 1 MB read + 1 MB written at 10 GB/s.
    assert!((a.levels[0].transfer_seconds(1e6, 1e6) - 2e-4).abs() < 1e-15);
    // Separate ports: only reads are bounded here.
    assert!((a.levels[1].transfer_seconds(1e8, 5e9) - 1e-3).abs() < 1e-15);
}

#[test]
fn trees_branch_by_parent() {
    let text = MINIMAL.replace(
        "[[compute]]",
        "[[levels]]\nname = \"rf1d\"\nkind = \"regfile\"\nparent = \"global_buffer\"\nfanout = [16]\nwidth_bits = 16\n[levels.energy]\nread = \"1 pJ\"\nwrite = \"1 pJ\"\n\n[[compute]]\nname = \"vec\"\nlevel = \"rf1d\"\nfanout = [2]\n[compute.ops]\nmax = { cycles = 1, energy = \"0.1 pJ\" }\n\n[[compute]]",
    );
    let text = text.replace("name = \"pe\"\n", "name = \"pe\"\nlevel = \"rf\"\n");
    let a = parse(&text).unwrap();
    let vec = a.unit_index("vec").unwrap();
    let pe = a.unit_index("pe").unwrap();
    assert_eq!(a.unit_path(vec), vec![0, 1, 3]);
    assert_eq!(a.unit_path(pe), vec![0, 1, 2]);
    assert_eq!(a.unit_pes(vec), 32);
    assert_eq!(a.unit_pes(pe), 8);
}

#[test]
fn all_presets_load_and_validate() {
    assert_eq!(
        preset_names(),
        vec![
            "fusemax",
            "flat",
            "flat_edge",
            "h100",
            "h200",
            "fusemax_vpu",
            "duplex",
            "logic_pim",
            "bankgroup_pim",
            "bank_pim"
        ]
    );
    for name in preset_names() {
        let a = preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.name, name);
        a.validate().unwrap();
        assert!(preset_source(name).is_some());
    }
    let e = preset("tpu").unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown preset \"tpu\"; known presets: fusemax, flat, flat_edge, h100, h200, fusemax_vpu, duplex, logic_pim, bankgroup_pim, bank_pim"
    );
}

#[test]
fn presets_round_trip_through_toml() {
    for name in preset_names() {
        let a = preset(name).unwrap();
        let text = a.to_toml_string().unwrap();
        let b = Architecture::from_toml_str(&text, "roundtrip.toml")
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(a, b, "{name}\n{text}");
        assert_eq!(text, b.to_toml_string().unwrap());
    }
}

#[test]
fn fusemax_figures() {
    let a = preset("fusemax").unwrap();
    assert_eq!(a.clock.hz(), 940e6);
    assert_eq!(a.precision.default, Some(16));
    assert_eq!(a.peak_ops_per_s("pe2d", "mac"), Some(65536.0 * 940e6));
    assert_eq!(a.peak_ops_per_s("pe1d", "div"), Some(256.0 * 940e6));
    // exp is 6 MACs (artifact proposal.py: SLN costs {"mac": 6, "add": 1}, the add being the sub).
    assert_eq!(a.peak_ops_per_s("pe2d", "exp"), Some(65536.0 * 940e6 / 6.0));
    let u2 = a.unit_index("pe2d").unwrap();
    let u1 = a.unit_index("pe1d").unwrap();
    let (glb, rf2d, rf1d) = (
        a.level_index("global_buffer").unwrap(),
        a.level_index("rf2d").unwrap(),
        a.level_index("rf1d").unwrap(),
    );
    // Per-PE register files under one global buffer.
    assert_eq!(a.unit_path(u2), vec![0, glb, rf2d]);
    assert_eq!(a.unit_path(u1), vec![0, glb, rf1d]);
    assert_eq!(a.levels[rf2d].fanout, vec![256, 256]);
    assert_eq!(a.instances(rf2d), 65536);
    assert_eq!(a.instances(rf1d), 256);
    assert_eq!(a.levels[rf2d].capacity.unwrap().bytes(), 20.0);
    let pe2d = &a.compute[u2];
    assert!(!pe2d.supports("div"));
    let exp = pe2d.op("exp").unwrap();
    let mac = pe2d.op("mac").unwrap().energy.pj();
    assert_eq!(exp.cycles, 6);
    assert!((exp.energy.pj() - 6.0 * mac).abs() < 1e-9);
    // exp(a - b): the sub is a separate add on FuseMax (7 cycles together) ...
    assert!(pe2d.chains.is_empty());
    // ... but rides in FLAT's pipelined exponential unit.
    let flat = preset("flat").unwrap();
    let flat1d = flat.compute_unit("pe1d").unwrap();
    assert_eq!(flat1d.chains, vec!["sub>exp".to_string()]);
    assert_eq!(flat1d.op("exp").unwrap().cycles, 1);
    let dram = a.root();
    assert_eq!(dram.capacity, None);
    assert!(dram.kind.off_chip());
    assert_eq!(dram.bandwidth.unwrap().bytes_per_s(), 400.0 * 2f64.powi(30));
    assert!((dram.energy.read.pj() - 249.6).abs() < 1e-9);
    // 1 MiB of reads + 1 MiB of writes at 400 GiB/s, shared.
    let t = dram.transfer_seconds(2f64.powi(20), 2f64.powi(20));
    assert!((t - 2.0 / 400.0 / 1024.0).abs() < 1e-15);
    let gb = a.level("global_buffer").unwrap();
    assert_eq!(gb.capacity.unwrap().bytes(), 16.0 * 2f64.powi(20));
    assert!(!gb.kind.off_chip());
    assert_eq!(gb.bandwidth, None);
    assert_eq!(gb.read_bandwidth, None);
}

#[test]
fn flat_figures() {
    let flat = preset("flat").unwrap();
    assert_eq!(
        flat.level("global_buffer")
            .unwrap()
            .capacity
            .unwrap()
            .bytes(),
        32.0 * 2f64.powi(20)
    );
    let pe2d = flat.compute_unit("pe2d").unwrap();
    assert!(pe2d.supports("mac") && !pe2d.supports("max") && !pe2d.supports("exp"));
    let pe1d = flat.compute_unit("pe1d").unwrap();
    for op in ["add", "mul", "mac", "max", "exp", "div"] {
        assert!(pe1d.supports(op), "{op}");
    }
    let edge = preset("flat_edge").unwrap();
    assert_eq!(edge.peak_ops_per_s("pe2d", "mac"), Some(1024.0 * 940e6));
    assert_eq!(edge.unit_pes(edge.unit_index("pe1d").unwrap()), 32);
    assert_eq!(
        edge.root().bandwidth.unwrap().bytes_per_s(),
        50.0 * 2f64.powi(30)
    );
    assert_eq!(
        edge.level("global_buffer")
            .unwrap()
            .capacity
            .unwrap()
            .bytes(),
        512.0 * 1024.0
    );
}

#[test]
fn h100_figures() {
    let a = preset("h100").unwrap();
    let gpu = a.gpu.as_ref().unwrap();
    assert_eq!(gpu.sms, 132);
    let bf16 = gpu.peak_flops("bf16").unwrap();
    assert!((bf16 / 1e12 - 989.4).abs() < 0.1, "{bf16}");
    assert!((gpu.peak_flops("fp8").unwrap() / 1e12 - 1978.9).abs() < 0.1);
    // The tensor lanes (2048 per SM's register file, 132 SMs) give the same peak in MACs.
    let macs = a.peak_ops_per_s("tensor", "mac").unwrap();
    assert!((2.0 * macs - bf16).abs() < 1.0);
    assert_eq!(gpu.hbm_bandwidth.bytes_per_s(), 3.35e12);
    assert_eq!(gpu.hbm.bytes(), 80e9);
    assert!((gpu.launch_overhead.cycles_at(gpu.clock_sustained) - 3000.0).abs() < 5.0);
    assert_eq!(a.root().name, "hbm");
}

#[test]
fn zero_bandwidth_rejected_naming_field() {
    let text = MINIMAL.replace("bandwidth = \"10 GB/s\"", "bandwidth = \"0 GB/s\"");
    let msg = located(&text, 11);
    assert!(
        msg.starts_with(
            "test.toml:11:13: levels[0] (dram).bandwidth: bandwidth must be > 0, got \"0 GB/s\" (accepted: 1 B/s to 1 PB/s)"
        ),
        "{msg}"
    );
    assert!(msg.contains("bandwidth = \"0 GB/s\""), "{msg}");
}

#[test]
fn semantic_errors_are_located_at_their_field() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "capacity = \"64 B\"",
            "capacity = \"64 B\"\nparent = \"l9\"",
            "parent = \"l9\"",
            "levels[2] (rf).parent: no storage level named \"l9\"",
        ),
        (
            "name = \"global_buffer\"\nkind = \"sram\"",
            "name = \"global_buffer\"\nkind = \"sram\"\nparent = \"rf\"",
            "parent = \"rf\"",
            "levels[1] (global_buffer).parent: parent \"rf\" must be listed before this level",
        ),
        (
            "name = \"dram\"\nkind = \"dram\"",
            "name = \"dram\"\nkind = \"dram\"\nparent = \"dram\"",
            "parent = \"dram\"",
            "levels[0] (dram).parent: the first level is the root of the tree",
        ),
        (
            "fanout = [4, 2]",
            "fanout = [4, 2, 2, 2]",
            "fanout = [4, 2, 2, 2]",
            "levels[2] (rf).fanout: a fanout has one to three dimensions, got 4",
        ),
        (
            "fanout = [4, 2]",
            "fanout = [4, 0]",
            "fanout = [4, 0]",
            "levels[2] (rf).fanout: every fanout dimension must be ≥ 1",
        ),
        (
            "read_bandwidth = \"100 GB/s\"",
            "read_bandwidth = \"100 GB/s\"\nbandwidth = \"1 GB/s\"",
            "read_bandwidth = \"100 GB/s\"",
            "levels[1] (global_buffer).read_bandwidth: give either `bandwidth`",
        ),
        (
            "width_bits = 16",
            "width_bits = 16\nholds = [\"weights\"]",
            "holds = [",
            "levels[2] (rf).holds[0]: \"weights\" is neither a role",
        ),
        (
            "width_bits = 16",
            "width_bits = 16\nholds = [\"W\", \"inputs\", \"W\"]",
            "holds = [",
            "levels[2] (rf).holds[2]: \"W\" is listed twice",
        ),
        (
            "name = \"pe\"",
            "name = \"pe\"\nlevel = \"rf9\"",
            "level = \"rf9\"",
            "compute[0] (pe).level: no storage level named \"rf9\"",
        ),
        (
            "name = \"pe\"",
            "name = \"pe\"\nlevel = \"global_buffer\"",
            "name = \"rf\"",
            "levels[2] (rf): feeds no compute unit",
        ),
        (
            "clock = \"1 GHz\"",
            "clock = \"1 GHz\"\n[precision]\npartial_sums = 0",
            "partial_sums = 0",
            "precision.partial_sums: must be 1..=1024 bits, got 0",
        ),
        (
            "mac = { cycles = 1",
            "mac = { cycles = 0",
            "mac = { cycles = 0",
            "compute[0] (pe).ops.mac.cycles: must be >= 1",
        ),
    ];
    for (from, to, needle, want) in cases {
        assert!(MINIMAL.contains(from), "{from}");
        let text = MINIMAL.replacen(from, to, 1);
        let line = line_of(&text, needle);
        let msg = located(&text, line);
        assert!(msg.contains(want), "{msg}\nwanted: {want}");
        assert!(msg.starts_with(&format!("test.toml:{line}:")), "{msg}");
    }
}

#[test]
fn validate_names_field_path_without_a_file() {
    let mut a = parse(MINIMAL).unwrap();
    a.levels[1].width_bits = 0;
    assert_eq!(
        a.validate().unwrap_err().to_string(),
        "levels[1] (global_buffer).width_bits: must be > 0"
    );
    let mut a = parse(MINIMAL).unwrap();
    a.levels[1].name = "dram".into();
    assert_eq!(
        a.validate().unwrap_err().to_string(),
        "levels[1] (dram).name: duplicate level name \"dram\""
    );
    let mut a = parse(MINIMAL).unwrap();
    a.levels.clear();
    assert_eq!(
        a.validate().unwrap_err().to_string(),
        "levels: at least one storage level is required"
    );
}

/// Fields the two-level contract accepted but no model read: the general core refuses them,
/// each at its line, naming it.
#[test]
fn fields_no_model_reads_are_refused() {
    let cases: &[(&str, &str, &str)] = &[
        ("clock = \"1 GHz\"", "clock = \"1 GHz\"\nword_bits = 16", "word_bits"),
        ("width_bits = 256", "width_bits = 256\ninstances = 4", "instances"),
        ("width_bits = 256", "width_bits = 256\nbanks = 32", "banks"),
        ("width_bits = 256", "width_bits = 256\nbandwidth_shared = true", "bandwidth_shared"),
        ("write = \"10 pJ\"", "write = \"10 pJ\"\nper_bits = 256", "per_bits"),
        (
            "[[compute]]",
            "[[links]]\nname = \"noc\"\nfrom = \"dram\"\nto = \"rf\"\nbandwidth = \"1 GB/s\"\n\n[[compute]]",
            "links",
        ),
        (
            "name = \"pe\"",
            "name = \"pe\"\nshape = { type = \"array1d\", len = 4 }",
            "shape",
        ),
    ];
    for (from, to, field) in cases {
        let text = MINIMAL.replacen(from, to, 1);
        let line = line_of(&text, field);
        let msg = located(&text, line);
        assert!(msg.contains(&format!("unknown field `{field}`")), "{msg}");
    }
    // The GPU section refuses the figures the GPU models do not read.
    let h100 = preset_source("h100").unwrap();
    for (field, value) in [
        ("tensor_cores_per_sm", "4"),
        ("clock_boost", "\"1.98 GHz\""),
        ("hbm_stacks", "5"),
        ("smem_latency_cycles", "29"),
    ] {
        let text = h100.replacen("sms = 132", &format!("sms = 132\n{field} = {value}"), 1);
        let msg = Architecture::from_toml_str(&text, "h100.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&format!("unknown field `{field}`")), "{msg}");
    }
    let text = format!("{h100}\n[gpu.hbm_timing]\ncl = 19\n");
    let msg = Architecture::from_toml_str(&text, "h100.toml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("unknown field `hbm_timing`"), "{msg}");
}

#[test]
fn unknown_field_rejected_naming_it() {
    let text = MINIMAL.replace(
        "width_bits = 256",
        "width_bits = 256\nbandwith = \"1 GB/s\"",
    );
    let msg = located(&text, line_of(&text, "bandwith"));
    assert!(msg.contains(":1: unknown field `bandwith`"), "{msg}");
    let text = MINIMAL.replace("clock = \"1 GHz\"", "clock = \"1 GHz\"\nclock_ghz = 1");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("test.toml:6:1: unknown field `clock_ghz`"),
        "{msg}"
    );
    let text = MINIMAL.replace("kind = \"sram\"", "kind = \"sdram\"");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("sdram"), "{msg}");
}

#[test]
fn toml_syntax_error_reports_file_line_col() {
    let text = MINIMAL.replace("width_bits = 256", "width_bits = = 256");
    let e = parse(&text).unwrap_err();
    match &e {
        ArchError::Parse {
            file, line, col, ..
        } => {
            assert_eq!(file, "test.toml");
            assert_eq!(*line, line_of(&text, "= = 256"));
            assert!(*col > 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_units_in_file_report_the_expected_form() {
    let text = MINIMAL.replace("\"10 GB/s\"", "\"10 GB\"");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("test.toml:11:13: levels[0] (dram).bandwidth: expected a bandwidth like \"400 GB/s\", got \"10 GB\""),
        "{msg}"
    );
    let text = MINIMAL.replace("clock = \"1 GHz\"", "clock = \"3000 cycles\"");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("test.toml:5:9: clock: expected a frequency"),
        "{msg}"
    );
}

#[test]
fn load_reads_files_and_names_them() {
    let dir = std::env::temp_dir().join(format!("cascade-arch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("tiny.toml");
    std::fs::write(&good, MINIMAL).unwrap();
    assert_eq!(Architecture::load(&good).unwrap().name, "tiny");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, MINIMAL.replace("width_bits = 64", "width_bits = -1")).unwrap();
    let msg = Architecture::load(&bad).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("{}:10:14:", bad.display())),
        "{msg}"
    );
    let missing = dir.join("missing.toml");
    let msg = Architecture::load(&missing).unwrap_err().to_string();
    assert!(msg.starts_with(&missing.display().to_string()), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every quantity of an architecture file is range-checked where it is written: a value that
/// would make a report infinite or NaN is refused with file:line:col, the field and the
/// accepted range (issue 9: `clock = "1e-320 Hz"`, `energy = "1e308 J"`, `capacity = "1e-30 B"`
/// gave inf/NaN reports).
#[test]
fn out_of_range_quantities_are_refused_at_their_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "clock = \"1 GHz\"",
            "clock = \"1e-320 Hz\"",
            "test.toml:5:9: clock: frequency is below the smallest physical value, got \"1e-320 Hz\" (accepted: 1 kHz to 100 GHz)",
        ),
        (
            "clock = \"1 GHz\"",
            "clock = \"200 GHz\"",
            "test.toml:5:9: clock: frequency is above the largest physical value",
        ),
        (
            "read = \"100 pJ\"",
            "read = \"1e308 J\"",
            "test.toml:13:8: levels[0] (dram).energy.read: energy is above the largest physical value, got \"1e308 J\" (accepted: 0 J to 1 mJ)",
        ),
        (
            "capacity = \"1 MiB\"",
            "capacity = \"1e-30 B\"",
            "test.toml:19:12: levels[1] (global_buffer).capacity: capacity is below the smallest physical value, got \"1e-30 B\" (accepted: 1 bit (0.125 B) to 1 PB)",
        ),
        (
            "capacity = \"1 MiB\"",
            "capacity = \"2000 TB\"",
            "test.toml:19:12: levels[1] (global_buffer).capacity: capacity is above the largest physical value",
        ),
        (
            "read_bandwidth = \"100 GB/s\"",
            "read_bandwidth = \"0 GB/s\"",
            "test.toml:21:18: levels[1] (global_buffer).read_bandwidth: bandwidth must be > 0",
        ),
        (
            "read_bandwidth = \"100 GB/s\"",
            "read_bandwidth = \"1e10 TB/s\"",
            "test.toml:21:18: levels[1] (global_buffer).read_bandwidth: bandwidth is above the largest physical value",
        ),
        (
            "bandwidth = \"10 GB/s\"",
            "bandwidth = \"1e-9 B/s\"",
            "test.toml:11:13: levels[0] (dram).bandwidth: bandwidth is below the smallest physical value",
        ),
        (
            "mac = { cycles = 1, energy = \"1 pJ\" }",
            "mac = { cycles = 1, energy = \"5 mJ\" }",
            "test.toml:39:30: compute[0] (pe).ops.mac.energy: energy is above the largest physical value",
        ),
        (
            "mac = { cycles = 1, energy = \"1 pJ\" }",
            "mac = { cycles = 1, energy = \"NaN pJ\" }",
            "test.toml:39:30: compute[0] (pe).ops.mac.energy: expected an energy",
        ),
    ];
    for (from, to, want) in cases {
        let text = MINIMAL.replace(from, to);
        assert_ne!(text, MINIMAL, "{from}");
        let msg = parse(&text).unwrap_err().to_string();
        assert!(msg.starts_with(want), "{to}:\n got  {msg}\n want {want}");
    }
}

/// Fanouts whose product would overflow (or lose exactness in) the counts the models multiply
/// are refused at the fanout.
#[test]
fn fanouts_past_two_to_the_forty_instances_are_refused() {
    let text = MINIMAL.replace("fanout = [4, 2]", "fanout = [4000000000, 4000000000]");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("test.toml:29:1: levels[2] (rf).fanout: the fanouts down to this level make more than 2^40"),
        "{msg}"
    );
    let text = MINIMAL.replace(
        "name = \"pe\"",
        "name = \"pe\"\nfanout = [1048576, 1048576]",
    );
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.contains("compute[0] (pe).fanout: the fanouts down to this unit make more than 2^40"),
        "{msg}"
    );
}

#[test]
fn measured_ceilings_must_be_physical() {
    let text = preset_source("h200").unwrap();
    for (from, to, want) in [
        (
            "gemm_bf16_8192_tflops = 779.0",
            "gemm_bf16_8192_tflops = 2000.0",
            "gpu.measured_ceilings.gemm_bf16_8192_tflops",
        ),
        (
            "gemm_bf16_8192_tflops = 779.0",
            "gemm_bf16_8192_tflops = -1.0",
            "gpu.measured_ceilings.gemm_bf16_8192_tflops",
        ),
        (
            "copy = \"4.267 TB/s\"",
            "copy = \"40 TB/s\"",
            "gpu.measured_ceilings.copy",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let bad = text.replace(from, to);
        let msg = Architecture::from_toml_str(&bad, "h200.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains(want), "{to}: {msg}");
    }
}

/// A DRAM level names its memory technology's timing preset (`memory`): without a bandwidth
/// it takes the preset's peak; a bandwidth above the peak, an unknown preset or a preset on an
/// on-chip level are located errors.
#[test]
fn a_dram_level_takes_its_bandwidth_from_its_memory_preset() {
    let h200 = preset_source("h200").unwrap();
    let a = Architecture::from_toml_str(h200, "h200.toml").unwrap();
    let hbm = &a.levels[0];
    assert_eq!(hbm.memory.as_deref(), Some("hbm3e_h200"));
    let peak = cascade_arch::memory::peak_bandwidth("hbm3e_h200").unwrap();
    assert!((peak - 4.8e12).abs() < 1e6, "{peak}");
    assert_eq!(hbm.bandwidth.unwrap().bytes_per_s(), peak);
    // A lower bandwidth stays; a higher one is refused at its line.
    let lower = h200.replacen(
        "memory = \"hbm3e_h200\"",
        "memory = \"hbm3e_h200\"\nbandwidth = \"4 TB/s\"",
        1,
    );
    let a = Architecture::from_toml_str(&lower, "h200.toml").unwrap();
    assert_eq!(a.levels[0].bandwidth.unwrap().bytes_per_s(), 4e12);
    let higher = lower.replacen("\"4 TB/s\"", "\"5 TB/s\"", 1);
    let msg = Architecture::from_toml_str(&higher, "h200.toml")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("h200.toml:")
            && msg.contains("exceeds the peak of memory preset `hbm3e_h200`"),
        "{msg}"
    );
    let unknown = h200.replacen("\"hbm3e_h200\"", "\"hbm9\"", 1);
    let msg = Architecture::from_toml_str(&unknown, "h200.toml")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("h200.toml:")
            && msg.contains("no memory preset `hbm9`")
            && msg.contains("ddr5_4800"),
        "{msg}"
    );
    let on_chip = MINIMAL.replacen(
        "width_bits = 256",
        "width_bits = 256\nmemory = \"ddr5_4800\"",
        1,
    );
    let msg = Architecture::from_toml_str(&on_chip, "m.toml")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("memory") && msg.contains("`dram`, `hbm` or `ddr` level"),
        "{msg}"
    );
}
