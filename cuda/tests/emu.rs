//! Every kernel of `kernels/` run on the CPU emulator (`emu/emu.h`) against float64
//! references, as `emu/run_emu.sh` does by hand: `emu/emu_test.cpp` is compiled with g++
//! (C++20) and AddressSanitizer, then run once per kernel family of [`FAMILIES`].
//!
//! The test fails if the compiler is missing, a family's run fails (a check's error above its
//! tolerance, an AddressSanitizer report, a deadlock at a barrier, a crash or a hang), or a
//! kernel of a family is never named on a passing check line (the emulator names the kernels
//! a check launched, from the functions it called). It also compares the dynamic shared
//! memory the kernels' own templates give with [`DYN_SMEM_TABLE`].
//!
//! Environment: `CXX` (default `g++`); `CASCADE_SKIP_EMU=1` skips the test, saying so — the
//! only way it skips; `CASCADE_EMU_TIMEOUT_S` (default 900) bounds each family's run.
//! `ASAN_OPTIONS` defaults to `detect_leaks=0` (leaks are not what this checks, and
//! LeakSanitizer cannot run under ptrace or in some sandboxes).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cascade_cuda::kernels::{Family, DYN_SMEM_TABLE, FAMILIES};

fn emu_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("emu")
}

/// Compiles `emu_test.cpp` (the flags of `run_emu.sh`); panics with the compiler's output.
fn build() -> PathBuf {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cascade_cuda_emu_test");
    let src = emu_dir().join("emu_test.cpp");
    let t0 = Instant::now();
    let res = Command::new(&cxx)
        .args(["-std=c++20", "-O1", "-g", "-pthread", "-Wall"])
        .args(["-Wno-unknown-pragmas", "-Wno-unused-function"])
        .args(["-fsanitize=address", "-fno-omit-frame-pointer"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{cxx}` ({e}): the CUDA kernels' emulator test needs g++ >= 12 \
                 (C++20, AddressSanitizer); install it (Debian: `apt-get install g++`), point \
                 CXX at one, or skip this test explicitly with CASCADE_SKIP_EMU=1"
            )
        });
    assert!(
        res.status.success(),
        "`{cxx}` failed on {} ({}):\n{}{}",
        src.display(),
        res.status,
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    eprintln!("emu: built in {:.1} s", t0.elapsed().as_secs_f64());
    out
}

/// Output of one run of the emulator binary.
struct Run {
    ok: bool,
    status: String,
    stdout: String,
    stderr: String,
    seconds: f64,
}

/// Runs `bin arg`, killing it after `timeout`.
fn run(bin: &Path, arg: &str, timeout: Duration) -> Run {
    let t0 = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.arg(arg).stdout(Stdio::piped()).stderr(Stdio::piped());
    if std::env::var_os("ASAN_OPTIONS").is_none() {
        cmd.env("ASAN_OPTIONS", "detect_leaks=0");
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    // Read both pipes on their own threads so a full pipe never blocks the child.
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for the emulator") {
            break Some(st);
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Run {
        ok: status.is_some_and(|s| s.success()),
        status: match status {
            Some(s) => s.to_string(),
            None => format!(
                "killed after {} s (CASCADE_EMU_TIMEOUT_S)",
                timeout.as_secs()
            ),
        },
        stdout,
        stderr,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// One check line of the emulator: `ok|FAIL <label> … kernels: <names>`.
#[derive(Debug, PartialEq)]
struct Check {
    ok: bool,
    line: String,
    kernels: Vec<String>,
}

fn checks(stdout: &str) -> Vec<Check> {
    stdout
        .lines()
        .filter_map(|line| {
            let ok = match line.split_whitespace().next() {
                Some("ok") => true,
                Some("FAIL") => false,
                _ => return None,
            };
            let (_, kernels) = line.rsplit_once("kernels:")?;
            Some(Check {
                ok,
                line: line.to_string(),
                kernels: kernels
                    .split_whitespace()
                    .filter(|k| *k != "-")
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// What is wrong with one family's run (empty: nothing).
fn problems(family: &Family, run: &Run) -> Vec<String> {
    let mut p = Vec::new();
    if !run.ok {
        p.push(format!("the run ended with {}", run.status));
    }
    if run.stderr.contains("AddressSanitizer") {
        p.push("AddressSanitizer reported an error".into());
    }
    let cs = checks(&run.stdout);
    if cs.is_empty() {
        p.push("no check ran".into());
    }
    for c in cs.iter().filter(|c| !c.ok) {
        p.push(format!("failed: {}", c.line));
    }
    for k in family.kernels {
        if !cs.iter().any(|c| c.ok && c.kernels.iter().any(|n| n == k)) {
            p.push(format!("kernel {k} is not exercised by any passing check"));
        }
    }
    for c in &cs {
        for k in &c.kernels {
            if !family.kernels.contains(&k.as_str()) {
                p.push(format!("kernel {k} is not one of family {}", family.name));
            }
        }
    }
    p
}

#[test]
fn every_kernel_family_passes_on_the_cpu_emulator() {
    if std::env::var("CASCADE_SKIP_EMU").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: CASCADE_SKIP_EMU=1 (the CUDA kernels were not run on the emulator)");
        return;
    }
    let timeout = Duration::from_secs(
        std::env::var("CASCADE_EMU_TIMEOUT_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(900),
    );
    let bin = build();

    // The shared-memory table against the kernels' own templates.
    let smem = run(&bin, "smem", timeout);
    assert!(smem.ok, "emu_test smem: {}\n{}", smem.status, smem.stderr);
    let printed: BTreeMap<String, u32> = smem
        .stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("smem")).then_some(())?;
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect();
    let table: BTreeMap<String, u32> = DYN_SMEM_TABLE
        .iter()
        .map(|&(k, b)| (k.to_string(), b))
        .collect();
    assert_eq!(
        printed, table,
        "DYN_SMEM_TABLE differs from the kernels' templates"
    );

    // The families, each in its own (single-threaded) process, all at once: every core works.
    let runs: Vec<(&Family, Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = FAMILIES
            .iter()
            .map(|f| {
                let bin = &bin;
                s.spawn(move || (f, run(bin, f.name, timeout)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("emulator runner thread"))
            .collect()
    });
    let mut report = String::new();
    let mut failed = Vec::new();
    for (f, r) in &runs {
        let p = problems(f, r);
        report.push_str(&format!(
            "== {} ({:.1} s): {}\n{}",
            f.name,
            r.seconds,
            if p.is_empty() { "ok" } else { "FAILED" },
            r.stdout
        ));
        if !p.is_empty() {
            report.push_str(&format!("{}\n", r.stderr));
            failed.push(format!("{}: {}", f.name, p.join("; ")));
        }
    }
    eprint!("{report}");
    assert!(
        failed.is_empty(),
        "kernel families failing on the emulator:\n  {}",
        failed.join("\n  ")
    );
    // Every family ran (FAMILIES is the list the device layer builds).
    assert_eq!(runs.len(), FAMILIES.len());
    assert!(
        FAMILIES.len() >= 5,
        "{} families: gemm, attn_unfused, fa2, decode, util at least",
        FAMILIES.len()
    );
}

/// The parser and the verdict, on made-up output: a failing line, a missing kernel, a foreign
/// kernel, an unknown family (no check ran) are each reported.
#[test]
fn a_failed_or_missing_kernel_is_reported() {
    let fam = Family {
        name: "fam",
        sources: &[],
        kernels: &["k1", "k2"],
    };
    let run_with = |ok: bool, stdout: &str, stderr: &str| Run {
        ok,
        status: if ok {
            "exit status: 0"
        } else {
            "exit status: 1"
        }
        .into(),
        stdout: stdout.into(),
        stderr: stderr.into(),
        seconds: 0.0,
    };
    let good = "ok   a  rel_err=1e-3  kernels: k1\nok   b  x  kernels: k2 k1\nALL OK\n";
    assert_eq!(
        problems(&fam, &run_with(true, good, "")),
        Vec::<String>::new()
    );
    assert_eq!(
        checks(good)[1].kernels,
        vec!["k2".to_string(), "k1".to_string()]
    );

    let missing = "ok   a  rel_err=1e-3  kernels: k1\nok   b  kernels: -\n";
    let p = problems(&fam, &run_with(true, missing, ""));
    assert_eq!(
        p,
        vec!["kernel k2 is not exercised by any passing check".to_string()]
    );

    let fail = "ok   a  kernels: k1\nFAIL b  rel_err=5e-1  kernels: k2\nFAILED\n";
    let p = problems(&fam, &run_with(false, fail, ""));
    assert!(
        p.iter().any(|s| s.starts_with("the run ended with")),
        "{p:?}"
    );
    assert!(p.iter().any(|s| s.starts_with("failed: FAIL b")), "{p:?}");
    assert!(p.iter().any(|s| s.contains("k2 is not exercised")), "{p:?}");

    let foreign = "ok   a  kernels: k1 k2 other\n";
    let p = problems(&fam, &run_with(true, foreign, ""));
    assert_eq!(p, vec!["kernel other is not one of family fam".to_string()]);

    let p = problems(&fam, &run_with(false, "", "unknown kernel family 'fam'"));
    assert!(p.contains(&"no check ran".to_string()), "{p:?}");

    let asan = "ok   a  kernels: k1 k2\n";
    let p = problems(
        &fam,
        &run_with(true, asan, "==1==ERROR: AddressSanitizer: heap"),
    );
    assert_eq!(p, vec!["AddressSanitizer reported an error".to_string()]);
}
