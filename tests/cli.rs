//! End-to-end tests of the `cascade` binary: outputs, exit codes, located errors.

use std::process::Command;

mod common;
use common::{cascade, stderr, stdout};

fn tmp(name: &str, text: &str) -> String {
    common::tmp_in("cli", name, text)
}

#[test]
fn analyze_bert_base_json_gives_fusemax_qk_macs_and_passes() {
    let o = cascade(&["analyze", "workloads/bert_base.toml", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let p0 = &v["points"][0];
    assert_eq!(p0["point"]["seq_len"], 1024);
    assert_eq!(p0["point"]["batch"], 64);
    let attn = p0["layer"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["role"] == "attention")
        .unwrap();
    let a = &attn["analysis"];
    assert_eq!(a["cascade"], "attention_1pass");
    let bqk = a["einsums"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "BQK")
        .unwrap();
    assert_eq!(
        bqk["ops"]["mac"].as_u64().unwrap(),
        64 * 12 * 1024 * 1024 * 64
    );
    assert_eq!(a["passes"]["M"], 1);
    // Six sequence lengths, 1K..1M.
    assert_eq!(v["points"].as_array().unwrap().len(), 6);
    assert_eq!(v["points"][5]["point"]["seq_len"], 1 << 20);
}

#[test]
fn check_reports_passes_of_each_attention_cascade() {
    for (name, passes) in [
        ("attention_3pass", 3),
        ("attention_2pass", 2),
        ("attention_1pass", 1),
    ] {
        let o = cascade(&["check", name]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).contains(&format!("M: {passes}")),
            "{name}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn malformed_cascade_exits_nonzero_with_a_located_message() {
    let f = tmp(
        "bad.ein",
        "input Q[E,P], K[E,M]\nQK[m,p] = Q[e,p] * KK[e,m]\noutput QK\n",
    );
    let o = cascade(&["check", &f]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("bad.ein:2:20"), "{e}");
    assert!(e.contains("unknown tensor `KK`"), "{e}");
    assert!(e.contains("^^"), "{e}");
    let f = tmp("syntax.ein", "input Q[E,P]\nX[p] = Q[e,p] +\noutput X\n");
    let o = cascade(&["check", &f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("syntax.ein:2:16"), "{}", stderr(&o));
}

#[test]
fn bad_workloads_name_the_file_and_field() {
    let good = std::fs::read_to_string("workloads/bert_base.toml").unwrap();
    let f = tmp("typo.toml", &good.replace("d_model =", "dmodel ="));
    let o = cascade(&["analyze", &f]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("typo.toml:") && e.contains("dmodel"), "{e}");
    let f = tmp("zero.toml", &good.replace("batch = 64", "batch = 0"));
    let e = stderr(&cascade(&["analyze", &f]));
    assert!(e.contains("zero.toml: run.batch: must be ≥ 1"), "{e}");
    let f = tmp(
        "units.toml",
        &good.replace("batch = 64", "batch = \"64 seqs\""),
    );
    let e = stderr(&cascade(&["analyze", &f]));
    assert!(
        e.contains("units.toml:") && e.contains("invalid type"),
        "{e}"
    );
    let e = stderr(&cascade(&["analyze", "no_such_workload"]));
    assert!(
        e.contains("unknown built-in workload `no_such_workload`"),
        "{e}"
    );
}

#[test]
fn eval_is_deterministic_and_seeded() {
    let a = stdout(&cascade(&["eval", "attention_1pass", "--seed", "7"]));
    let b = stdout(&cascade(&["eval", "attention_1pass", "--seed", "7"]));
    let c = stdout(&cascade(&["eval", "attention_1pass", "--seed", "8"]));
    assert!(a.contains("checksum"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let o = cascade(&["eval", "attention_1pass", "--set", "M=10", "--set", "M0=4"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not divisible"), "{}", stderr(&o));
}

#[test]
fn default_job_runs_and_says_what_it_did() {
    // Run in a scratch directory so the test leaves the checked-in reports alone.
    let dir = std::env::temp_dir().join(format!("cascade-default-job-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .current_dir(&dir)
        .output()
        .expect("run cascade");
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("reproducing FuseMax"), "{s}");
    assert!(s.contains("mean attention speedup vs FLAT"), "{s}");
    let csv = std::fs::read_to_string(dir.join("reports/fusemax/results.csv")).unwrap();
    // A header and the 72 mapped points (4 models × 6 sequence lengths × 3 designs).
    assert_eq!(csv.lines().count(), 73, "{csv}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_closed_stdout_ends_quietly_without_a_panic() {
    use std::process::Stdio;
    // `cascade analyze … --json | head -c 1`: the reader goes away after the first byte.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["analyze", "workloads/bert_base.toml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cascade");
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(o.status.code(), Some(101), "{err}");
}

#[test]
fn check_refuses_deep_nesting() {
    // 5,000 nested parentheses overflowed the stack; 100,000 chained operators built a
    // tree too deep for the passes that walk it. Both are located errors naming the limit.
    let f = tmp(
        "deep.ein",
        &format!(
            "input A[M]\nZ[m] = {}A[m]{}\noutput Z\n",
            "(".repeat(5000),
            ")".repeat(5000)
        ),
    );
    let o = cascade(&["check", &f]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(!e.contains("panicked") && !e.contains("overflow"), "{e}");
    assert!(e.contains("deep.ein:2:265"), "{e}");
    assert!(e.contains("more than 256 levels deep"), "{e}");
    let chain = vec!["A[m]"; 100_000].join("+");
    let f = tmp("chain.ein", &format!("input A[M]\noutput Z[m] = {chain}\n"));
    let o = cascade(&["check", &f]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("chain.ein:2:1294"), "{}", stderr(&o));
    // Within the limit, every pass runs (check, eval).
    let f = tmp(
        "nested.ein",
        &format!(
            "input A[M]\nZ[m] = {}A[m]{}\noutput Z\n",
            "exp(".repeat(200),
            ")".repeat(200)
        ),
    );
    let o = cascade(&["check", &f]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cascade(&["eval", &f, "--set", "M=4"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn check_reports_one_error_for_a_rejected_statement() {
    // Statement 1 is rejected; statements 2 and 3 only use its output: one error.
    let f = tmp(
        "follow.ein",
        "input A[M]\nB[m,m] = A[m]\nC[m] = B[m] + 1\noutput D[m] = C[m] * B[m]\n",
    );
    let o = cascade(&["check", &f]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.matches("error").count(), 1, "{e}");
    assert!(e.contains("follow.ein:2:5"), "{e}");
    assert!(!e.contains("unknown tensor"), "{e}");
}

#[test]
fn map_refuses_more_than_32_leaf_ranks_with_a_reason() {
    let n = 33;
    let ranks: Vec<String> = (0..n).map(|i| format!("R{i}")).collect();
    let vars: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let f = tmp(
        "wide.ein",
        &format!(
            "input A[{}]\noutput Z[{v}] = A[{v}] * 2\n",
            ranks.join(","),
            v = vars.join(",")
        ),
    );
    let sets: Vec<String> = ranks.iter().map(|r| format!("{r}=2")).collect();
    let mut args = vec![
        "map",
        "--cascade",
        &f,
        "--arch",
        "fusemax",
        "--budget",
        "100",
    ];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let o = cascade(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains("panicked"), "{all}");
    assert!(
        all.lines()
            .any(|l| l.contains("`wide` has 33 leaf ranks") && l.contains("at most 32")),
        "{all}"
    );
}
