//! Arbitrary UTF-8 through the whole front end: `check_source` must never panic
//! (its errors must render), a checked cascade must round-trip through the
//! printer, and binding small extents (window ranks of affine indices derived),
//! analysing and (when small) evaluating it must not panic either; every window
//! must hold every affine index that addresses it.
//!
//! Everything runs on a thread with a small stack ([`STACK_KB`]), so unbounded recursion
//! (5,000 nested parentheses overflowed the CLI's stack) crashes at inputs a few
//! hundred bytes long instead of needing megabytes; the dictionary has runs of
//! parentheses, calls and signs.
//!
//! ```text
//! cd fuzz && mkdir -p corpus/parse_check && cp ../einsum/cascades/*.ein corpus/parse_check/
//! cargo +nightly fuzz run parse_check corpus/parse_check -- \
//!     -runs=1000000 -max_len=512 -dict=parse_check.dict
//! ```
#![no_main]

use cascade_einsum::ir::DimIndex;
use cascade_einsum::shapes::affine_need;
use cascade_einsum::syntax::{parse_program, printer};
use cascade_einsum::{
    analyze, bind, check_source, evaluate, random_inputs, AnalysisOptions, Routing,
};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// Stack of the thread that runs each input (KiB; `PARSE_CHECK_STACK_KB` overrides it):
/// under a fifth of a main thread's 8 MiB, and half as much again as expressions at the nesting limit
/// need in this instrumented build.
const STACK_KB: usize = 1536;

fn stack() -> usize {
    static S: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *S.get_or_init(|| {
        std::env::var("PARSE_CHECK_STACK_KB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(STACK_KB)
            * 1024
    })
}

/// A stack overflow hits the thread's guard page: SIGSEGV on an exhausted stack, where
/// libFuzzer's handler cannot run (and Rust's is not installed under libFuzzer's `main`).
/// This handler runs on an alternate stack, says so and aborts; libFuzzer, which defers
/// SIGSEGV to a handler installed before it, then saves the input as a crash.
extern "C" fn on_segv(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let msg = b"\nparse_check: SIGSEGV (stack overflow?) on the checking thread\n";
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort();
    }
}

fn install_segv_handler() {
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_segv as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
    }
}

/// Runs `f` with an alternate signal stack for this thread (so `on_segv` can run).
fn with_altstack(f: impl FnOnce()) {
    let mut alt = vec![0u8; 64 * 1024];
    unsafe {
        let ss = libc::stack_t {
            ss_sp: alt.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: alt.len(),
        };
        libc::sigaltstack(&ss, std::ptr::null_mut());
    }
    f();
    unsafe {
        let off = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        libc::sigaltstack(&off, std::ptr::null_mut());
    }
    drop(alt);
}

fuzz_target!(init: install_segv_handler(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(stack())
            .spawn_scoped(s, || with_altstack(|| run(text)))
            .expect("spawn")
            .join()
            .expect("no panic");
    });
});

fn run(text: &str) {
    let checked = match check_source("fuzz.ein", text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = checked.render_warnings();
    let c = &checked.cascade;

    // print → parse is the identity on a program that checked.
    let ast = parse_program(text).expect("checked source parses");
    let printed = printer::print(&ast);
    let again = parse_program(&printed)
        .unwrap_or_else(|e| panic!("printed program does not parse: {e:?}\n{printed}"));
    assert_eq!(ast, again, "print → parse changed the program:\n{printed}");
    assert_eq!(
        printed,
        printer::print(&again),
        "printing is not a fixed point"
    );

    // Bind small extents: 2 for every root rank, leaving split parts but the
    // outermost to 1 so every split divides, and window ranks (addressed by affine
    // indices such as `p+r`, `2*p+r`) to be derived from their accesses.
    let windows = c.window_ranks();
    let mut given = BTreeMap::new();
    for (name, info) in &c.ranks {
        if info.parent.is_none() && !windows.contains(name) {
            given.insert(name.clone(), 2u64);
        }
    }
    for info in c.ranks.values() {
        for p in info.parts.iter().skip(1) {
            given.insert(p.clone(), 1u64);
        }
    }
    let Ok(shapes) = bind(c, &given) else {
        return;
    };
    // Every window is large enough for every access that addresses it.
    for e in &c.einsums {
        for a in &e.accesses {
            let t = &c.tensors[&a.tensor];
            for (di, d) in a.dims.iter().zip(&t.dims) {
                if let DimIndex::Affine { terms, offset } = di {
                    let need = affine_need(terms, *offset, |r| shapes.get(r)).expect("bound");
                    assert!(
                        need <= u128::from(shapes.extent(&d.rank)),
                        "window `{}` of {} too small",
                        d.rank,
                        a.tensor
                    );
                }
            }
        }
    }
    let a = analyze(
        c,
        &shapes,
        &AnalysisOptions {
            dtype_bytes: 2,
            routing: None,
        },
    );
    // Small enough instances also run through the reference interpreter.
    let points = a
        .einsums
        .iter()
        .fold(0u64, |s, e| s.saturating_add(e.iteration_points));
    let elems = a
        .tensors
        .iter()
        .fold(0u64, |s, t| s.saturating_add(t.elems));
    if points <= 20_000 && elems <= 20_000 {
        let inputs = random_inputs(c, &shapes, 7);
        let out = evaluate(c, &shapes, &inputs).expect("inputs of the bound shapes");
        for o in &c.outputs {
            assert!(out.contains_key(o), "output `{o}` was not computed");
        }
    }
    // The same with a skewed routing over each iterated root rank, as the MoE
    // analysis uses (window ranks are never iterated, and may be huge: a constant
    // offset sets their extent).
    for root in c.root_ranks() {
        if windows.contains(root) {
            continue;
        }
        let routing = Routing::zipf(root, shapes.extent(root), 2, 2, 1.0);
        let _ = analyze(
            c,
            &shapes,
            &AnalysisOptions {
                dtype_bytes: 2,
                routing: Some(routing),
            },
        );
    }
}
