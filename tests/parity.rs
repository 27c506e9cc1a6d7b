//! Parity with Timeloop v3.0.3 and ZigZag 3.9.1 on the same problems, architectures and
//! mappings (tests/parity/<case>/: the peers' goldens and cascade's inputs).

use cascade::validate::parity::{cases, compare, render};
use std::path::Path;

#[test]
fn timeloop_cases_match_access_counts_energy_and_cycles() {
    let dirs = cases(Path::new("tests/parity")).unwrap();
    let tl: Vec<_> = dirs
        .iter()
        .filter(|d| d.file_name().unwrap().to_string_lossy().starts_with("tl_"))
        .collect();
    assert!(tl.len() >= 5, "{tl:?}");
    let results: Vec<_> = tl.iter().map(|d| compare(d).unwrap()).collect();
    println!("{}", render(&results));
    for c in &results {
        assert!(c.mismatches().is_empty(), "{}: {:?}", c.case, c.mismatches());
        assert!(c.energy_error().abs() <= 0.01, "{}: energy {}", c.case, c.energy_error());
        assert!(c.cycles_error().abs() <= 0.05, "{}: cycles {}", c.case, c.cycles_error());
    }
}
