//! Integration tests: presets, TOML errors, validation, round-trip.

use cascade_arch::{preset, preset_names, preset_source, ArchError, Architecture, ComputeShape};

const MINIMAL: &str = r#"
name = "tiny"
description = "test"
source = "test"
clock = "1 GHz"
word_bits = 16

[[levels]]
name = "dram"
kind = "dram"
width_bits = 64
read_bandwidth = "10 GB/s"
[levels.energy]
read = "100 pJ"
write = "100 pJ"
per_bits = 64

[[levels]]
name = "global_buffer"
kind = "sram"
capacity = "1 MiB"
width_bits = 256
read_bandwidth = "100 GB/s"
[levels.energy]
read = "10 pJ"
write = "10 pJ"
per_bits = 256

[[compute]]
name = "pe"
shape = { type = "array1d", len = 4 }
[compute.ops]
mac = { cycles = 1, energy = "1 pJ" }
"#;

fn parse(text: &str) -> Result<Architecture, ArchError> {
    Architecture::from_toml_str(text, "test.toml")
}

#[test]
fn minimal_parses() {
    let a = parse(MINIMAL).unwrap();
    assert_eq!(a.levels.len(), 2);
    assert_eq!(a.levels[1].instances, 1);
    assert_eq!(a.levels[1].banks, 1);
    assert_eq!(a.dram().name, "dram");
    assert_eq!(a.peak_ops_per_s("pe", "mac"), Some(4e9));
    assert_eq!(a.peak_ops_per_s("pe", "exp"), None);
    assert_eq!(a.peak_ops_per_s("nope", "mac"), None);
}

#[test]
fn all_presets_load_and_validate() {
    assert_eq!(preset_names(), vec!["fusemax", "flat", "flat_edge", "h100"]);
    for name in preset_names() {
        let a = preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.name, name);
        a.validate().unwrap();
        assert!(preset_source(name).is_some());
    }
    let e = preset("tpu").unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown preset \"tpu\"; known presets: fusemax, flat, flat_edge, h100"
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
        // Serializing again is stable.
        assert_eq!(text, b.to_toml_string().unwrap());
    }
}

#[test]
fn fusemax_figures() {
    let a = preset("fusemax").unwrap();
    assert_eq!(a.clock.hz(), 940e6);
    assert_eq!(a.word_bits, 16);
    assert_eq!(a.peak_ops_per_s("pe2d", "mac"), Some(65536.0 * 940e6));
    assert_eq!(a.peak_ops_per_s("pe1d", "div"), Some(256.0 * 940e6));
    // exp is 6 MACs (artifact proposal.py: SLN costs {"mac": 6, "add": 1}, the add being the sub).
    assert_eq!(a.peak_ops_per_s("pe2d", "exp"), Some(65536.0 * 940e6 / 6.0));
    let pe2d = a.compute_unit("pe2d").unwrap();
    assert_eq!(
        pe2d.shape,
        ComputeShape::Array2d {
            rows: 256,
            cols: 256
        }
    );
    assert_eq!(pe2d.pes(), 65536);
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
    let dram = a.dram();
    assert_eq!(dram.capacity, None);
    assert_eq!(
        dram.read_bandwidth.unwrap().bytes_per_s(),
        400.0 * 2f64.powi(30)
    );
    assert!(dram.bandwidth_shared);
    assert!((dram.energy.read.pj() - 249.6).abs() < 1e-9);
    // 1 MiB of reads + 1 MiB of writes at 400 GiB/s, shared.
    let t = dram.transfer_seconds(2f64.powi(20), 2f64.powi(20));
    assert!((t - 2.0 / 400.0 / 1024.0).abs() < 1e-15);
    let gb = a.level("global_buffer").unwrap();
    assert_eq!(gb.capacity.unwrap().bytes(), 16.0 * 2f64.powi(20));
    assert_eq!(gb.read_bandwidth, None);
    let rf = a.innermost();
    assert_eq!(rf.instances, 65792);
    assert_eq!(rf.total_capacity_bytes(), Some(20.0 * 65792.0));
    assert_eq!(a.level_index("regfile"), Some(2));
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
    assert_eq!(edge.compute_unit("pe1d").unwrap().pes(), 32);
    assert_eq!(
        edge.dram().read_bandwidth.unwrap().bytes_per_s(),
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
    // The tensor "array" gives the same peak in MACs.
    let macs = a.peak_ops_per_s("tensor", "mac").unwrap();
    assert!((2.0 * macs - bf16).abs() < 1.0);
    assert_eq!(gpu.hbm_bandwidth.bytes_per_s(), 3.35e12);
    assert_eq!(gpu.hbm_timing.unwrap().rc, 50);
    assert!((gpu.launch_overhead.cycles_at(gpu.clock_sustained) - 3000.0).abs() < 5.0);
    assert_eq!(a.dram().name, "hbm");
}

#[test]
fn zero_bandwidth_rejected_naming_field() {
    let text = MINIMAL.replace(
        "read_bandwidth = \"100 GB/s\"",
        "read_bandwidth = \"0 GB/s\"",
    );
    let e = parse(&text).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("test.toml:23:18: bandwidth must be > 0, got \"0 GB/s\""),
        "{msg}"
    );
    assert!(msg.contains("read_bandwidth = \"0 GB/s\""), "{msg}");
    match e {
        ArchError::Parse { line, col, .. } => assert_eq!((line, col), (23, 18)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn validate_names_field_path() {
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
    a.compute[0].ops.get_mut("mac").unwrap().cycles = 0;
    assert_eq!(
        a.validate().unwrap_err().to_string(),
        "compute[0] (pe).ops.mac.cycles: must be >= 1"
    );
    let mut a = parse(MINIMAL).unwrap();
    a.compute[0].shape = ComputeShape::Array2d { rows: 4, cols: 0 };
    assert_eq!(
        a.validate().unwrap_err().to_string(),
        "compute[0] (pe).shape.cols: must be > 0"
    );
    let mut a = parse(MINIMAL).unwrap();
    a.levels.clear();
    assert_eq!(
        a.validate().unwrap_err().to_string(),
        "levels: at least one storage level is required"
    );
}

#[test]
fn links_must_reference_levels() {
    let text = format!(
        "{MINIMAL}\n[[links]]\nname = \"noc\"\nfrom = \"dram\"\nto = \"l9\"\nbandwidth = \"1 GB/s\"\nlatency = \"19 ns\"\n"
    );
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        "test.toml: links[0] (noc).to: no storage level named \"l9\""
    );
    let ok = text.replace("\"l9\"", "\"global_buffer\"");
    let a = parse(&ok).unwrap();
    assert!((a.links[0].latency.unwrap().seconds() - 19e-9).abs() < 1e-20);
}

#[test]
fn unknown_field_rejected_naming_it() {
    let text = MINIMAL.replace(
        "width_bits = 256",
        "width_bits = 256\nbandwith = \"1 GB/s\"",
    );
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("test.toml:23:1: unknown field `bandwith`"),
        "{msg}"
    );
    let text = MINIMAL.replace("word_bits = 16", "word_bits = 16\nclock_ghz = 1");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("test.toml:7:1: unknown field `clock_ghz`"),
        "{msg}"
    );
    // Unknown key inside the internally tagged shape.
    let text = MINIMAL.replace("len = 4", "len = 4, depth = 2");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("unknown field `depth`"), "{msg}");
    let text = MINIMAL.replace("type = \"array1d\"", "type = \"array3d\"");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("array3d"), "{msg}");
}

#[test]
fn toml_syntax_error_reports_file_line_col() {
    let text = MINIMAL.replace("per_bits = 256", "per_bits = = 256");
    let e = parse(&text).unwrap_err();
    match &e {
        ArchError::Parse {
            file, line, col, ..
        } => {
            assert_eq!(file, "test.toml");
            assert_eq!(*line, 27);
            assert!(*col > 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().starts_with("test.toml:27:"), "{e}");
}

#[test]
fn bad_units_in_file_report_the_expected_form() {
    let text = MINIMAL.replace("\"10 GB/s\"", "\"10 GB\"");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("test.toml:12:18: expected a bandwidth like \"400 GB/s\", got \"10 GB\""),
        "{msg}"
    );
    let text = MINIMAL.replace("clock = \"1 GHz\"", "clock = \"3000 cycles\"");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("test.toml:5:9: expected a frequency"),
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
    std::fs::write(&bad, MINIMAL.replace("word_bits = 16", "word_bits = -1")).unwrap();
    let msg = Architecture::load(&bad).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("{}:6:13:", bad.display())),
        "{msg}"
    );
    let missing = dir.join("missing.toml");
    let msg = Architecture::load(&missing).unwrap_err().to_string();
    assert!(msg.starts_with(&missing.display().to_string()), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}
