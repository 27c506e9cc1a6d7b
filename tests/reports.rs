//! Honest reports, end to end with the `cascade` binary: a `reproduce --seq` subset says n/a
//! for the figures it lacks (text, Markdown, CSV, JSON) and writes outside the committed
//! reports; `parity` on other cases likewise; `regress` validates its baseline before any
//! search and has `--json`; progress goes to stderr only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn cascade_in(dir: &Path, args: &[&str], progress: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(dir)
        .env("CASCADE_PROGRESS", progress)
        .output()
        .expect("run cascade")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cascade-reports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn no_bad_numbers(text: &str) {
    for bad in ["NaN", "inf", "null"] {
        assert!(!text.contains(bad), "{bad} in {text}");
    }
}

/// Every value of a JSON document: no nulls (and serde_json has no NaN or inf).
fn no_nulls(v: &serde_json::Value, at: &str) {
    match v {
        serde_json::Value::Null => panic!("null at {at}"),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| no_nulls(x, &format!("{at}[{i}]"))),
        serde_json::Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| no_nulls(x, &format!("{at}.{k}"))),
        _ => {}
    }
}

/// stdout without the lines that hold timings or the output directory.
fn stable(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| !l.starts_with("FuseMax reproduction:") && !l.starts_with("reports written"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn reproduce_subset_says_n_a_writes_elsewhere_and_reports_progress_on_stderr_only() {
    // Piped, no --out, in an empty directory: the subset lands in target/reproduce/….
    let cwd = tmp("subset");
    let a = cascade_in(&cwd, &["reproduce", "fusemax", "--seq", "1024"], "auto");
    assert!(a.status.success(), "{}", err(&a));
    let text = out(&a);
    no_bad_numbers(&text);
    assert!(
        text.contains("| FuseMax 2D utilization from 16K (min) | 0.95 | n/a | ≥ paper | n/a |"),
        "{text}"
    );
    assert!(
        text.contains("reports written to target/reproduce/fusemax-seq-1024/"),
        "{text}"
    );
    let dir = cwd.join("target/reproduce/fusemax-seq-1024");
    assert!(!cwd.join("reports").exists(), "a subset wrote reports/");
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    no_bad_numbers(&md);
    assert!(md.contains("A subset: sequence lengths 1024 only."), "{md}");
    assert!(md.contains("| 0.95 | n/a | ≥ paper | n/a |"), "{md}");
    let csv = std::fs::read_to_string(dir.join("headline.csv")).unwrap();
    no_bad_numbers(&csv);
    assert!(
        csv.contains("FuseMax 2D utilization from 16K (min),fusemax_util_2d_min_from_16k,0.95,n/a,≥ paper,n/a"),
        "{csv}"
    );
    for f in ["results.csv", "speedup.png", "utilization.svg"] {
        assert!(dir.join(f).exists(), "{f}");
    }

    // The same run with a progress line per point: the lines are on stderr, stdout is the same
    // report, and the results are identical (seeded search).
    let b_dir = cwd.join("b");
    let b = cascade_in(
        &cwd,
        &[
            "reproduce",
            "fusemax",
            "--seq",
            "1024",
            "--out",
            b_dir.to_str().unwrap(),
        ],
        "lines",
    );
    assert!(b.status.success(), "{}", err(&b));
    let e = err(&b);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 12, "{e}");
    assert!(
        lines[0].starts_with("reproduce fusemax: 1/12 points, ") && lines[0].contains(" ETA "),
        "{e}"
    );
    assert!(
        lines[11].starts_with("reproduce fusemax: 12/12 points in "),
        "{e}"
    );
    let b_out = out(&b);
    assert!(
        !b_out.contains("ETA") && !b_out.contains("points, "),
        "{b_out}"
    );
    assert_eq!(stable(&text), stable(&b_out));
    assert_eq!(
        std::fs::read(dir.join("results.csv")).unwrap(),
        std::fs::read(b_dir.join("results.csv")).unwrap()
    );
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[test]
fn reproduce_json_is_null_free_and_says_n_a() {
    let cwd = tmp("json");
    let o = cascade_in(
        &cwd,
        &[
            "reproduce",
            "fusemax",
            "--seq",
            "1024",
            "--json",
            "--out",
            "r",
        ],
        "off",
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(err(&o), "", "CASCADE_PROGRESS=off: nothing on stderr");
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    no_nulls(&v, "$");
    assert!(v["summary"].get("fusemax_util_2d_min_from_16k").is_none());
    assert!(v["summary"]["speedup_vs_flat_mean"].as_f64().unwrap() > 1.0);
    let targets = v["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 7);
    let t16 = targets
        .iter()
        .find(|t| t["key"] == "fusemax_util_2d_min_from_16k")
        .unwrap();
    assert_eq!(t16["cascade"], "n/a");
    assert_eq!(t16["met"], "n/a");
    let t1k = targets
        .iter()
        .find(|t| t["key"] == "fusemax_util_2d_at_1k")
        .unwrap();
    assert!(t1k["cascade"].as_f64().is_some() && t1k["met"].is_boolean());
    assert_eq!(v["rows"].as_array().unwrap().len(), 12);
    assert!(cwd.join("r/summary.md").exists());
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[test]
fn reproduce_refuses_sequence_lengths_it_cannot_map() {
    let cwd = tmp("badseq");
    for (seq, want) in [
        ("1000", "--seq 1000: the partition of bert_base (256 keys"),
        ("0", "--seq 0: give sequence lengths ≥ 1"),
        ("1024,1024", "--seq 1024 is given twice"),
    ] {
        let o = cascade_in(&cwd, &["reproduce", "fusemax", "--seq", seq], "lines");
        assert_eq!(o.status.code(), Some(1));
        let e = err(&o);
        assert!(e.contains(want), "{e}");
        assert!(!e.contains("points"), "ran before refusing: {e}");
    }
    assert!(!cwd.join("target").exists());
    std::fs::remove_dir_all(&cwd).unwrap();
}

const BASELINE: &str = include_str!("../reports/baseline.toml");

/// `cascade regress --baseline <text>`: refused at once, naming the file, line:col and field.
fn regress_refuses(name: &str, text: &str, want: &[&str]) {
    let cwd = tmp(&format!("regress-{name}"));
    let f = cwd.join(format!("{name}.toml"));
    std::fs::write(&f, text).unwrap();
    let t = Instant::now();
    let o = cascade_in(
        &cwd,
        &["regress", "--baseline", f.to_str().unwrap()],
        "lines",
    );
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let e = err(&o);
    // No search ran: it would print `regress: 1/72 points …` first (and take ~30 s).
    assert!(!e.contains("regress:"), "{e}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(out(&o), "");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    for w in want {
        assert!(e.contains(w), "want {w}\ngot {e}");
    }
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[test]
fn bad_baselines_are_refused_before_any_search() {
    let h = "[reproductions.fusemax.figures.flat_util_2d_mean]";
    let tol = format!("{h}\nvalue = 0.150542\ntolerance = 0.005");
    assert!(BASELINE.contains(&tol));
    let with = |to: &str| BASELINE.replace(&tol, to);
    let f = "reproductions.fusemax.figures.flat_util_2d_mean";
    // The figure's header line; its value and tolerance follow.
    let hl = BASELINE.lines().position(|x| x == h).unwrap() + 1;
    regress_refuses(
        "nan_tolerance",
        &with(&format!("{h}\nvalue = 0.150542\ntolerance = nan")),
        &[
            "nan_tolerance.toml:",
            &format!(": {f}.tolerance: must be a finite number ≥ 0"),
            "got NaN",
        ],
    );
    regress_refuses(
        "negative_tolerance",
        &with(&format!("{h}\nvalue = 0.150542\ntolerance = -0.01")),
        &[&format!(
            "negative_tolerance.toml:{}:13: {f}.tolerance: must be a finite number ≥ 0",
            hl + 2
        )],
    );
    regress_refuses(
        "inf_value",
        &with(&format!("{h}\nvalue = inf\ntolerance = 0.01")),
        &[&format!(
            "inf_value.toml:{}:9: {f}.value: must be a finite number, got inf",
            hl + 1
        )],
    );
    regress_refuses(
        "missing",
        &with(""),
        &[
            "missing.toml:",
            ": reproductions.fusemax.figures: missing flat_util_2d_mean",
        ],
    );
    regress_refuses(
        "unknown",
        &with("[reproductions.fusemax.figures.flat_util_2d_meen]\nvalue = 0.150542\ntolerance = 0.01"),
        &[&format!("unknown.toml:{hl}:32: reproductions.fusemax.figures.flat_util_2d_meen: unknown figure (tracked: ")],
    );
    regress_refuses(
        "unknown_field",
        &with(&format!("{h}\nvalue = 0.150542\ntol = 0.01")),
        &[
            &format!("unknown_field.toml:{}:1:", hl + 2),
            "unknown field `tol`",
        ],
    );
    regress_refuses(
        "syntax",
        &with(&format!("{h}\nvalue = = 1")),
        &[&format!("syntax.toml:{}:", hl + 1)],
    );
    // A table after the last: its header is the line after the baseline's end.
    let line = BASELINE.lines().count() + 1;
    regress_refuses(
        "unknown_reproduction",
        &format!("{BASELINE}[reproductions.flashattention]\nrows = \"x.csv\"\nfigures = {{}}\n"),
        &[&format!("unknown_reproduction.toml:{line}:16: reproductions.flashattention: unknown reproduction (covered: fusemax, duplex)")],
    );
    regress_refuses(
        "missing_reproduction",
        "note = \"n\"\nreproductions = {}\n",
        &["missing_reproduction.toml:2:17: reproductions: missing fusemax, duplex"],
    );
    regress_refuses("absent", "", &["absent.toml:", "missing field"]);
    let o = cascade_in(&repo(), &["regress", "--only", "flash"], "lines");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("--only flash: no such reproduction (covered: fusemax, duplex)"),
        "{}",
        err(&o)
    );
    // Duplex's figures are its own.
    let dh = "[reproductions.duplex.figures.speedup_max]";
    assert!(BASELINE.contains(dh));
    let dl = BASELINE.lines().position(|x| x == dh).unwrap() + 1;
    regress_refuses(
        "unknown_duplex",
        &BASELINE.replace(dh, "[reproductions.duplex.figures.speedup_maxx]"),
        &[&format!("unknown_duplex.toml:{dl}:31: reproductions.duplex.figures.speedup_maxx: unknown figure (tracked: speedup_mean, speedup_max")],
    );
}

#[test]
fn regress_json_compares_every_figure_of_the_committed_baseline() {
    // FuseMax only (`--only`): Duplex's reproduction takes minutes; CI runs it in `.ci/run`.
    let o = cascade_in(
        &repo(),
        &["regress", "--json", "--only", "fusemax"],
        "lines",
    );
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    // stdout is the JSON document only; the progress is on stderr.
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    no_nulls(&v, "$");
    assert_eq!(v["pass"], true);
    assert_eq!(v["baseline"], "reports/baseline.toml");
    let repro = v["reproductions"].as_array().unwrap();
    assert_eq!(repro.len(), 1);
    assert_eq!(repro[0]["reproduction"], "fusemax");
    // The committed rows are this run's: nothing moved.
    assert_eq!(repro[0]["moved"].as_array().unwrap().len(), 0);
    let figures = repro[0]["figures"].as_array().unwrap();
    assert_eq!(figures.len(), 8);
    for f in figures {
        assert!(f["value"].as_f64().unwrap() > 0.0, "{f}");
        assert!(f["baseline"].as_f64().is_some() && f["tolerance"].as_f64().is_some());
        assert!(f["drift"].as_f64().unwrap().abs() <= f["tolerance"].as_f64().unwrap());
        assert_eq!(f["pass"], true);
    }
    assert!(err(&o).contains("regress: 72/72 points in "), "{}", err(&o));
}

#[test]
fn parity_on_other_cases_does_not_overwrite_the_committed_reports() {
    // One committed case, copied into a directory of its own.
    let cases = tmp("parity-cases");
    let src = repo().join("tests/parity/tl_1level");
    let dst = cases.join("tl_1level");
    copy_dir(&src, &dst);
    let committed = std::fs::read(repo().join("reports/parity/summary.md")).unwrap();
    let o = cascade_in(
        &repo(),
        &["parity", "--cases", cases.to_str().unwrap()],
        "off",
    );
    assert!(o.status.success(), "{}", err(&o));
    let name = cases.file_name().unwrap().to_string_lossy().into_owned();
    let text = out(&o);
    assert!(
        text.contains(&format!("reports written to target/parity/{name}/")),
        "{text}"
    );
    let written = repo().join("target/parity").join(&name);
    let md = std::fs::read_to_string(written.join("summary.md")).unwrap();
    assert!(md.contains("| tl_1level |") && !md.contains("| tl_2level |"));
    assert_eq!(
        std::fs::read(repo().join("reports/parity/summary.md")).unwrap(),
        committed
    );
    std::fs::remove_dir_all(&written).unwrap();
    std::fs::remove_dir_all(&cases).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
