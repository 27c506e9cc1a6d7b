//! `cascade sweep` (issue 13, first part): override parsing and refusal, designs, a killed run
//! resumed with no loss or duplicate, shards merged equal to the serial run, the Pareto front.

use cascade::commands::sweep::{merge, pareto, read_rows, run, set_path, Design, Row, Study};
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
    let e = err(&STUDY.replace("[workload]", "[design]\nkind = \"sobol\"\n[workload]"));
    assert!(e.contains("design.kind: `sobol`"), "{e}");
    // set_path directly: a value is not a table.
    let mut v: toml::Value = toml::from_str("a = 1").unwrap();
    assert!(set_path(&mut v, "a.b", toml::Value::Integer(2))
        .unwrap_err()
        .contains("`a` is a value"));
}

#[test]
fn designs_choose_their_points() {
    let grid = study(STUDY);
    assert_eq!(grid.design, Design::Grid);
    assert_eq!(
        grid.points(),
        vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]
    );
    let lhs = study(&STUDY.replace(
        "[workload]",
        "[design]\nkind = \"lhs\"\nsamples = 10\nseed = 3\n[workload]",
    ));
    let p = lhs.points();
    assert_eq!(p.len(), 10);
    // Ten strata over two values: each value exactly five times on each axis.
    for axis in 0..2 {
        assert_eq!(p.iter().filter(|c| c[axis] == 0).count(), 5, "{p:?}");
    }
    let random = |seed| {
        study(&STUDY.replace(
            "[workload]",
            &format!("[design]\nkind = \"random\"\nsamples = 20\nseed = {seed}\n[workload]"),
        ))
        .points()
    };
    assert_eq!(random(1), random(1));
    assert_ne!(random(1), random(2));
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
fn the_pareto_front_of_a_hand_made_set() {
    let row = |point, latency_s, energy_j| Row {
        point,
        params: Default::default(),
        latency_s,
        energy_j,
        edp_js: latency_s * energy_j,
        off_chip_bytes: 0.0,
        traffic_bytes: Default::default(),
        mapping_hash: String::new(),
        errors: Vec::new(),
    };
    // (1,5) (2,3) (3,4) (4,1) (2,6) (5,1): the front is 0, 1, 3; 2 is beaten by 1, 4 by 1, 5 by 3.
    let rows = vec![
        row(0, 1.0, 5.0),
        row(1, 2.0, 3.0),
        row(2, 3.0, 4.0),
        row(3, 4.0, 1.0),
        row(4, 2.0, 6.0),
        row(5, 5.0, 1.0),
    ];
    assert_eq!(pareto(&rows, |r| r.latency_s, |r| r.energy_j), [0, 1, 3]);
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
