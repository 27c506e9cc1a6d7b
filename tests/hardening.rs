//! Issue 9 (hardening), end to end through the `cascade` binary: meaningless inputs refused
//! with their reason, bounded work, machine-readable output, help that says what runs.

use std::process::{Command, Output};

mod common;
use common::{cascade, stderr, stdout};

/// Exit 1 with one error line containing `want`, and no panic.
fn refused(args: &[&str], want: &str) -> String {
    let o = cascade(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: want `{want}` in:\n{err}");
    assert!(err.starts_with("error"), "{args:?}: {err}");
    err
}

fn tmp(name: &str, text: &str) -> String {
    common::tmp_in("hardening", name, text)
}

#[test]
fn eval_set_refuses_unknown_empty_repeated_and_zero_ranks() {
    refused(
        &["eval", "gemm", "--set", "Q=3"],
        "cascade gemm has no rank Q",
    );
    refused(&["eval", "gemm", "--set", "=3"], "the rank name is empty");
    refused(
        &["eval", "gemm", "--set", "T="],
        "is not a positive integer",
    );
    refused(
        &["eval", "gemm", "--set", "T=0"],
        "is not a positive integer",
    );
    refused(&["eval", "gemm", "--set", "T3"], "expected RANK=N");
    refused(
        &["eval", "gemm", "--set", "T=2", "--set", "T=3"],
        "rank T is set twice",
    );
}

#[test]
fn eval_refuses_work_above_its_limits_before_allocating() {
    // 100000³: 3·10¹⁰ elements (240 GB in f64) — refused at once, naming the limit.
    let err = refused(
        &[
            "eval", "gemm", "--set", "T=100000", "--set", "N=100000", "--set", "K=100000",
        ],
        "eval holds at most 5e7",
    );
    assert!(err.contains("K=100000 N=100000 T=100000"), "{err}");
    // Small tensors but a large iteration space: 400³ = 6.4·10⁷ points.
    refused(
        &[
            "eval", "gemm", "--set", "T=400", "--set", "N=400", "--set", "K=400",
        ],
        "eval visits at most 5e7",
    );
    // Extents whose product overflows are refused by binding, located, not wrapped.
    refused(
        &[
            "eval",
            "gemm",
            "--set",
            "T=18446744073709551615",
            "--set",
            "N=18446744073709551615",
        ],
        "has more than 2^60 elements",
    );
}

#[test]
fn eval_json_has_extents_and_finite_checksums() {
    let o = cascade(&["eval", "gemm", "--set", "T=3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["extents"]["T"], 3);
    assert_eq!(v["extents"]["K"], 4);
    assert_eq!(v["points"], 3 * 4 * 4);
    let outs = v["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0]["tensor"], "C");
    assert!(outs[0]["checksum"].as_f64().unwrap().is_finite());
    assert_eq!(outs[0]["non_finite"], 0);
    // The text form prints the same checksum.
    let t = cascade(&["eval", "gemm", "--set", "T=3"]);
    let want = format!("checksum {:.12e}", outs[0]["checksum"].as_f64().unwrap());
    assert!(stdout(&t).contains(&want), "{}", stdout(&t));
}

#[test]
fn check_json_gives_the_cascade_or_located_diagnostics() {
    let o = cascade(&["check", "attention_1pass", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["passes"]["M"], 1);
    assert_eq!(v["inputs"], serde_json::json!(["Q", "K", "V"]));

    let bad = tmp("bad.ein", "A[m] = B[m]\nZ[m] = A[m] +\n");
    let o = cascade(&["check", &bad, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on failure too");
    assert_eq!(v["ok"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], 2);
    assert_eq!(d["column"], 14);
    assert!(
        d["message"].as_str().unwrap().contains("syntax error"),
        "{d}"
    );
}

#[test]
fn map_refuses_zero_dtype_bytes_zero_budget_and_unknown_ranks() {
    refused(
        &[
            "map",
            "--arch",
            "fusemax",
            "--cascade",
            "gemm",
            "--dtype-bytes",
            "0",
        ],
        "--dtype-bytes 0",
    );
    refused(
        &[
            "map",
            "--arch",
            "fusemax",
            "--cascade",
            "gemm",
            "--budget",
            "0",
        ],
        "--budget 0",
    );
    refused(
        &[
            "map",
            "--arch",
            "fusemax",
            "--cascade",
            "gemm",
            "--set",
            "Q=4",
        ],
        "cascade gemm has no rank Q",
    );
    refused(
        &[
            "map",
            "--arch",
            "fusemax",
            "--cascade",
            "gemm",
            "--set",
            "T=4",
            "--set",
            "T=8",
        ],
        "rank T is set twice",
    );
}

#[test]
fn help_says_what_the_default_job_does() {
    for flag in ["-h", "--help"] {
        let o = cascade(&[flag]);
        assert!(o.status.success());
        let s = stdout(&o);
        assert!(
            s.contains("With no command, runs the default job: `cascade reproduce fusemax`"),
            "{s}"
        );
    }
    // Every flag of map and simulate says what it is for.
    for cmd in ["map", "simulate", "eval", "check"] {
        let s = stdout(&cascade(&[cmd, "--help"]));
        let lines: Vec<&str> = s.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if !(t.starts_with("--") || t.starts_with("-h")) {
                continue;
            }
            // Drop the flag, its `<VALUE>` and any `[default: …]`: help text must remain
            // (on this line, or on the next when clap wraps it there).
            let mut rest = t.split_whitespace().skip(1).collect::<Vec<_>>().join(" ");
            if rest.starts_with('<') {
                rest = rest.split_once('>').map_or("", |x| x.1).trim().to_string();
            }
            if let Some(p) = rest.find("[default:") {
                rest.truncate(p);
            }
            let next = lines.get(i + 1).map_or("", |l| l.trim());
            let described = !rest.trim().is_empty() || (!next.is_empty() && !next.starts_with('-'));
            assert!(
                described,
                "`cascade {cmd} --help`: no help text on `{line}`"
            );
        }
    }
}

/// `cascade … > /dev/full`: one error line and exit 1, never a panic.
#[cfg(target_os = "linux")]
fn to_dev_full(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .stdout(full)
        .output()
        .expect("run cascade")
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_one_error_line_not_a_panic() {
    let cases: &[&[&str]] = &[
        &["analyze", "bert_base", "--json"],
        &["analyze", "bert_base"],
        &["check", "gemm"],
        &["check", "gemm", "--json"],
        &["eval", "gemm"],
        &["eval", "gemm", "--json"],
        &["estimate", "--op", "gemm m=64 n=64 k=64"],
        &["estimate", "--op", "gemm m=64 n=64 k=64", "--json"],
        &[
            "simulate",
            "--mapping",
            "mappings/saved/bert_base_attention_fusemax.toml",
        ],
        &[
            "map",
            "--arch",
            "fusemax",
            "--cascade",
            "gemm",
            "--set",
            "T=64",
            "--set",
            "N=64",
            "--set",
            "K=64",
            "--budget",
            "50",
        ],
        &[],
    ];
    for args in cases {
        let o = to_dev_full(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err.trim_end(),
            "error: writing to standard output: No space left on device (os error 28)",
            "{args:?}"
        );
    }
}

#[test]
fn os_errors_are_said_once() {
    let dir = std::env::temp_dir().to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["analyze", &dir], "Is a directory"),
        (vec!["check", &dir], "Is a directory"),
        (
            vec!["map", "--arch", &dir, "--cascade", "gemm"],
            "Is a directory",
        ),
        (vec!["simulate", "--mapping", &dir], "Is a directory"),
        (
            vec!["simulate", "--mapping", "no/such/mapping.toml"],
            "No such file",
        ),
        (vec!["regress", "--baseline", &dir], "Is a directory"),
    ];
    for (args, os) in cases {
        let o = cascade(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.matches(os).count(), 1, "{args:?}: said twice:\n{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn map_reports_progress_on_stderr_and_refuses_a_seq_the_partition_does_not_divide() {
    let args = [
        "map",
        "--workload",
        "bert_base",
        "--arch",
        "fusemax",
        "--budget",
        "300",
    ];
    let o = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .env("CASCADE_PROGRESS", "lines")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("map: 1/6 cascades"), "{err}");
    assert!(err.contains("map: 6/6 cascades in"), "{err}");
    let quiet = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .env("CASCADE_PROGRESS", "off")
        .output()
        .unwrap();
    // Progress never reaches stdout: the report is the same with it on or off.
    let strip = |s: String| {
        s.lines()
            .filter(|l| !l.contains(" s (") && !l.contains("evaluated in"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(stdout(&o)), strip(stdout(&quiet)));
    assert!(!stdout(&o).contains("cascades,"), "{}", stdout(&o));

    refused(
        &[
            "map",
            "--workload",
            "bert_base",
            "--arch",
            "fusemax",
            "--seq",
            "1000",
        ],
        "--seq 1000: bert_base's run.partition 256 does not divide it",
    );
}

#[test]
fn map_refuses_unsized_ranks_before_searching_and_prints_no_empty_total() {
    let o = cascade(&["map", "--arch", "fusemax", "--cascade", "layernorm"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("rank `D` has no extent"),
        "{}",
        stderr(&o)
    );
    // Nothing maps (fusemax has no rsqrt): the reason per cascade, no total of nothing.
    let o = cascade(&[
        "map",
        "--arch",
        "fusemax",
        "--cascade",
        "layernorm",
        "--set",
        "T=8",
        "--set",
        "D=8",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("no compute unit supports rsqrt"), "{out}");
    assert!(!out.contains("mapped total"), "{out}");
    assert!(
        stderr(&o).contains("no cascade could be mapped onto fusemax"),
        "{}",
        stderr(&o)
    );
}
