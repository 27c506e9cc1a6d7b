//! `cascade sweep` (issue 13, first part): override parsing and refusal, designs, a killed run
//! resumed with no loss or duplicate, shards merged equal to the serial run, the Pareto front.

use cascade::commands::sweep::{
    merge, pareto_over, read_rows, run, set_path, Row, Sampling, Study,
};
use std::path::{Path, PathBuf};

mod common;
use common::{cascade, stderr};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cascade_sweep_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Four points of FuseMax's global buffer and 2D array, BERT-Base attention at 512 tokens, a
/// small search budget (the test needs the runs to agree, not the best mappings).
const STUDY: &str = r#"name = "t"
arch = "fusemax"
[axes]
"levels.global_buffer.capacity" = ["2 MiB", "8 MiB"]
"clock" = ["940 MHz", "1.2 GHz"]
[workload]
name = "bert_base"
seq = 512
roles = ["attention"]
[search]
budget = 300
"#;

fn study(text: &str) -> Study {
    Study::parse(text, "s.toml").unwrap()
}

fn err(text: &str) -> String {
    Study::parse(text, "s.toml").unwrap_err().to_string()
}

#[test]
fn overrides_name_what_they_change_or_are_refused_where_written() {
    let s = study(STUDY);
    assert_eq!(s.points().len(), 4);
    let e = err(&STUDY.replace("levels.global_buffer.capacity", "levels.glb.capacity"));
    assert!(
        e.starts_with("s.toml:4:1: axes.\"levels.glb.capacity\""),
        "{e}"
    );
    assert!(
        e.contains("no element named `glb` (names: dram, global_buffer"),
        "{e}"
    );
    let e = err(&STUDY.replace(
        "levels.global_buffer.capacity",
        "levels.global_buffer.capcity",
    ));
    assert!(
        e.contains("`capcity` is not a field of `levels.global_buffer`"),
        "{e}"
    );
    let e = err(&STUDY.replace("\"2 MiB\"", "2"));
    assert!(
        e.contains("is a string and the axis gives a integer"),
        "{e}"
    );
    let e = err(&STUDY.replace("\"2 MiB\"", "\"0 B\""));
    assert!(e.contains("\"0 B\"") && e.contains("capacity"), "{e}");
    let e = err(&STUDY.replace("[axes]", "[axes]\n\"levels\" = [1]"));
    assert!(e.contains("axes.\"levels\""), "{e}");
    let e = err(&STUDY.replace("budget = 300", "budget = 300\nbudgte = 1"));
    assert!(e.starts_with("s.toml:12:1:") && e.contains("budgte"), "{e}");
    let e = err(&STUDY.replace("roles = [\"attention\"]", "roles = [\"attn\"]"));
    assert!(e.contains("`attn` is not a role"), "{e}");
    let e = err(&STUDY.replace("[workload]", "[sampling]\nkind = \"sobol\"\n[workload]"));
    assert!(e.contains("sampling.kind: `sobol`"), "{e}");
    // set_path directly: a value is not a table.
    let mut v: toml::Value = toml::from_str("a = 1").unwrap();
    assert!(set_path(&mut v, "a.b", toml::Value::Integer(2))
        .unwrap_err()
        .contains("`a` is a value"));
}

#[test]
fn samplings_choose_their_points() {
    let grid = study(STUDY);
    assert_eq!(grid.sampling, Sampling::Grid);
    assert_eq!(
        grid.samples(),
        vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]
    );
    let lhs = study(&STUDY.replace(
        "[workload]",
        "[sampling]\nkind = \"lhs\"\nsamples = 10\nseed = 3\n[workload]",
    ));
    let p = lhs.samples();
    assert_eq!(p.len(), 10);
    // Ten strata over two values: each value exactly five times on each axis.
    for axis in 0..2 {
        assert_eq!(p.iter().filter(|c| c[axis] == 0).count(), 5, "{p:?}");
    }
    let random = |seed| {
        study(&STUDY.replace(
            "[workload]",
            &format!("[sampling]\nkind = \"random\"\nsamples = 20\nseed = {seed}\n[workload]"),
        ))
        .samples()
    };
    assert_eq!(random(1), random(1));
    assert_ne!(random(1), random(2));
}

/// Two designs (FuseMax as it is; FLAT with the 3-pass cascade, fused, its softmax pinned to
/// the 1D array by inline constraints), two workloads, two lengths, one linked axis.
const DESIGNS: &str = r#"name = "d"
arch = "fusemax"
[axes]
"levels.rf2d.fanout,levels.rf1d.fanout" = [[[64, 64], [64]], [[128, 128], [128]]]
[workload]
name = ["bert_base", "t5_small"]
seq = [512, 1024]
roles = ["attention"]
[search]
budget = 200
[[designs]]
name = "fusemax"
[[designs]]
name = "flat"
arch = "flat"
attention = "3-pass"
fusion = "all"
[[designs.constraints.bind]]
einsum = "SN"
unit = "pe1d"
"#;

#[test]
fn designs_cases_and_linked_axes_make_the_points() {
    let s = study(DESIGNS);
    assert_eq!(s.designs.len(), 2);
    assert_eq!(s.cases.len(), 4);
    let p = s.points();
    // designs × cases × samples, the design outermost.
    assert_eq!(p.len(), 2 * 4 * 2);
    assert_eq!(
        (p[0].design, p[0].case, p[0].choice.clone()),
        (0, 0, vec![0])
    );
    assert_eq!(
        (p[1].design, p[1].case, p[1].choice.clone()),
        (0, 0, vec![1])
    );
    assert_eq!((p[2].design, p[2].case), (0, 1));
    assert_eq!((p[8].design, p[8].case), (1, 0));
    // FLAT maps the 3-pass cascade, not the workload's 1-pass one.
    let insts = s.instances(&s.designs[1], &s.cases[0]).unwrap();
    assert_eq!(insts[0].source, "attention_3pass");
    let insts = s.instances(&s.designs[0], &s.cases[0]).unwrap();
    assert_eq!(insts[0].source, "attention_1pass");
    // A point of each: the linked axis set both arrays; FLAT's row says what it is.
    let r = s.evaluate(9, &p[9]).unwrap();
    assert_eq!(r.design, "flat");
    assert_eq!(r.workload, "bert_base");
    assert_eq!(r.seq, Some(512));
    assert_eq!(
        r.params["levels.rf2d.fanout,levels.rf1d.fanout"],
        "[[128, 128], [128]]"
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.utilization["pe2d"] > 0.0 && r.utilization["pe2d"] <= 1.0);
    assert!(r.evaluations > 0);
    // Refusals, each where it is written.
    let e = err(&DESIGNS.replace("[[[64, 64], [64]], ", "[[[64, 64]], "));
    assert!(
        e.starts_with("s.toml:4:1:")
            && e.contains("a linked axis of 2 paths takes lists of 2 values"),
        "{e}"
    );
    let e = err(&DESIGNS.replace("fusion = \"all\"", "fusion = \"most\""));
    assert!(
        e.contains("designs[1] (flat).fusion: `most`: expected search, all, none"),
        "{e}"
    );
    let e = err(&DESIGNS.replace("unit = \"pe1d\"", "unit = \"pe3d\""));
    assert!(
        e.contains("designs[1] (flat).constraints") && e.contains("pe3d"),
        "{e}"
    );
    let e = err(&DESIGNS.replace("attention = \"3-pass\"", "attention = \"4-pass\""));
    assert!(e.contains("(flat).attention: `4-pass`"), "{e}");
    let e = err(&DESIGNS.replace("name = \"flat\"", "name = \"fusemax\""));
    assert!(e.contains("`fusemax` names two designs"), "{e}");
}

#[test]
fn a_killed_run_resumes_without_loss_or_duplicate_and_shards_merge_to_the_serial_run() {
    let s = study(STUDY);
    let d = dir("resume");
    // The serial run.
    let serial = d.join("serial.jsonl");
    let all = run(&s, &serial, (0, 1), &mut |_, _| {}).unwrap();
    assert_eq!(all.len(), 4);
    let serial_text = std::fs::read_to_string(&serial).unwrap();
    // A run killed while writing its third row: two rows and half a line.
    let cut = d.join("cut.jsonl");
    let lines: Vec<&str> = serial_text.split_inclusive('\n').collect();
    let third = lines[2];
    std::fs::write(
        &cut,
        format!("{}{}{}", lines[0], lines[1], &third[..third.len() / 2]),
    )
    .unwrap();
    assert_eq!(read_rows(&cut).unwrap().len(), 2);
    let resumed = run(&s, &cut, (0, 1), &mut |_, _| {}).unwrap();
    assert_eq!(resumed, all);
    assert_eq!(std::fs::read_to_string(&cut).unwrap(), serial_text);
    // Shards 0/2 and 1/2, merged, are the serial run byte for byte.
    let a = d.join("a.jsonl");
    let b = d.join("b.jsonl");
    run(&s, &a, (0, 2), &mut |_, _| {}).unwrap();
    run(&s, &b, (1, 2), &mut |_, _| {}).unwrap();
    let m = merge(&[a.as_path(), b.as_path()], Some(4)).unwrap();
    assert_eq!(cascade::commands::sweep::to_jsonl(&m).unwrap(), serial_text);
    // A missing shard, a point twice, a shard's file given to another shard: each refused.
    assert!(merge(&[a.as_path()], Some(4))
        .unwrap_err()
        .to_string()
        .contains("point 1 of 4 is in no results file"));
    assert!(merge(&[a.as_path(), a.as_path()], None)
        .unwrap_err()
        .to_string()
        .contains("in more than one results file"));
    assert!(run(&s, &a, (1, 2), &mut |_, _| {})
        .unwrap_err()
        .to_string()
        .contains("not of this study's shard 1/2"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_real_kill_minus_nine_loses_nothing() {
    let d = dir("kill");
    let text = STUDY.replace(
        "[\"2 MiB\", \"8 MiB\"]",
        "[\"1 MiB\", \"2 MiB\", \"4 MiB\", \"8 MiB\"]",
    );
    let st = d.join("s.toml");
    std::fs::write(&st, &text).unwrap();
    let out = d.join("out");
    let results = out.join("results.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args([
            "sweep",
            st.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has written a row (or when it ends first).
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs() < 60 {
        if std::fs::read_to_string(&results).is_ok_and(|t| t.lines().count() >= 2) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
    let o = cascade(&[
        "sweep",
        st.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = read_rows(&results).unwrap();
    let points: Vec<usize> = rows.iter().map(|r| r.point).collect();
    assert_eq!(points.len(), 8, "{points:?}");
    let mut sorted = points.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, (0..8).collect::<Vec<_>>());
    // The same numbers as an uninterrupted run.
    let serial = d.join("serial.jsonl");
    let s = Study::parse(&text, "s.toml").unwrap();
    let mut all = run(&s, &serial, (0, 1), &mut |_, _| {}).unwrap();
    let mut got = rows;
    got.sort_by_key(|r| r.point);
    all.sort_by_key(|r| r.point);
    assert_eq!(got, all);
    for f in [
        "results.csv",
        "summary.md",
        "summary.json",
        "pareto.png",
        "pareto.svg",
    ] {
        assert!(Path::new(&out.join(f)).exists(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_pareto_front_of_a_hand_made_set_over_two_and_three_columns() {
    let row = |point, latency_s, energy_j, off_chip_bytes| Row {
        point,
        params: Default::default(),
        latency_s,
        energy_j,
        edp_js: latency_s * energy_j,
        off_chip_bytes,
        traffic_bytes: [("dram".to_string(), off_chip_bytes)].into_iter().collect(),
        ..Row::default()
    };
    // (1,5) (2,3) (3,4) (4,1) (2,6) (5,1) (2,3): the front is 0, 1, 3; 2 is beaten by 1, 4 by
    // 1, 5 by 3, and 6 equals 1 (the first of equal points is kept).
    let rows = vec![
        row(0, 1.0, 5.0, 9.0),
        row(1, 2.0, 3.0, 9.0),
        row(2, 3.0, 4.0, 1.0),
        row(3, 4.0, 1.0, 9.0),
        row(4, 2.0, 6.0, 9.0),
        row(5, 5.0, 1.0, 9.0),
        row(6, 2.0, 3.0, 9.0),
    ];
    let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        pareto_over(&rows, &cols(&["latency_s", "energy_j"])),
        [0, 1, 3]
    );
    // A third column: point 2 moves the least off chip, so it joins the front; the rest stay.
    assert_eq!(
        pareto_over(&rows, &cols(&["latency_s", "energy_j", "off_chip_bytes"])),
        [0, 1, 2, 3]
    );
    // Per-level traffic is a column too, ordered by the first column given.
    assert_eq!(
        pareto_over(&rows, &cols(&["traffic.dram", "latency_s"])),
        [2, 0]
    );
}

#[test]
fn front_columns_are_checked_where_written() {
    let e = err(&format!(
        "{STUDY}[analysis]\nfront = [\"latency_s\", \"watts\"]\n"
    ));
    assert!(e.starts_with("s.toml:13:1: analysis.front:"), "{e}");
    assert!(
        e.contains("`watts` is not a column (columns: latency_s, energy_j, edp_js, off_chip_bytes, traffic.dram"),
        "{e}"
    );
    let e = err(&format!("{STUDY}[analysis]\nfront = [\"latency_s\"]\n"));
    assert!(e.contains("give 2 or 3 columns, got 1"), "{e}");
    let s = study(&format!(
        "{STUDY}[analysis]\nfront = [\"latency_s\", \"energy_j\", \"traffic.global_buffer\"]\n"
    ));
    assert_eq!(s.front.len(), 3);
    let d = dir("front");
    let st = d.join("s.toml");
    std::fs::write(&st, STUDY).unwrap();
    let o = cascade(&["sweep", st.to_str().unwrap(), "--front", "latency_s,joules"]);
    assert!(
        stderr(&o).contains("--front latency_s,joules: `joules` is not a column"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_command_line_refuses_bad_shards_and_merges() {
    for (args, want) in [
        (vec!["sweep", "no/such.toml"], "no/such.toml"),
        (vec!["sweep", "merge"], "give the results files"),
        (
            vec!["sweep", "merge", "x.jsonl", "--out", "/tmp"],
            "x.jsonl: no such results file",
        ),
    ] {
        let o = cascade(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    let d = dir("cli");
    let st = d.join("s.toml");
    std::fs::write(&st, STUDY).unwrap();
    let o = cascade(&["sweep", st.to_str().unwrap(), "--shard", "2/2"]);
    assert!(
        stderr(&o).contains("--shard 2/2: give i/n with 0 ≤ i < n"),
        "{}",
        stderr(&o)
    );
    let o = cascade(&["sweep", st.to_str().unwrap(), "--shard", "a"]);
    assert!(stderr(&o).contains("--shard a: give i/n"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&d);
}
