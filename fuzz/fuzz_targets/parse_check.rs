//! Arbitrary UTF-8 through the whole front end: `check_source` must never panic
//! (its errors must render), a checked cascade must round-trip through the
//! printer, and binding small extents (window ranks of affine indices derived),
//! analysing and (when small) evaluating it must not panic either; every window
//! must hold every affine index that addresses it.
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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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
});
