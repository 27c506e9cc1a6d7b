//! Front ends: Ramulator 2.0's load/store trace format and programmatic access patterns. Both
//! are iterators of [`Access`]es that allocate nothing per access.

use super::mapping::{AddressMapping, Location};
use super::model::Access;
use super::spec::DramSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::BufRead;

/// Reads Ramulator 2.0's `LoadStoreTrace` format: one access per line, `LD <addr>` (read) or
/// `ST <addr>` (write), the address in decimal or `0x` hex, separated by one space. As in
/// Ramulator each line is one access of the memory's access size (its "transaction"), and
/// each line is replayed once. Blank lines are skipped. The first malformed line ends the
/// iteration and is kept in [`error`](TraceReader::error).
pub struct TraceReader<R: BufRead> {
    input: R,
    line: String,
    number: u64,
    error: Option<TraceError>,
}

/// A malformed trace line, or a failed read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trace line {line}: {message}")]
pub struct TraceError {
    pub line: u64,
    pub message: String,
}

impl<R: BufRead> TraceReader<R> {
    pub fn new(input: R) -> Self {
        TraceReader {
            input,
            line: String::new(),
            number: 0,
            error: None,
        }
    }

    /// The error that ended the iteration, if one did.
    pub fn error(&self) -> Option<&TraceError> {
        self.error.as_ref()
    }

    fn parse(&self) -> Result<Option<Access>, String> {
        let text = self.line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return Ok(None);
        }
        let mut it = text.split(' ').filter(|s| !s.is_empty());
        let (op, addr) = match (it.next(), it.next(), it.next()) {
            (Some(op), Some(addr), None) => (op, addr),
            _ => {
                return Err(format!(
                    "expected `LD <address>` or `ST <address>`, found `{text}`"
                ))
            }
        };
        let write = match op {
            "LD" => false,
            "ST" => true,
            _ => return Err(format!("unknown type `{op}` (expected LD or ST)")),
        };
        let addr = if let Some(hex) = addr.strip_prefix("0x").or(addr.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16)
        } else {
            addr.parse::<u64>()
        }
        .map_err(|e| format!("bad address `{addr}`: {e}"))?;
        Ok(Some(Access { addr, write }))
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Access;

    fn next(&mut self) -> Option<Access> {
        if self.error.is_some() {
            return None;
        }
        loop {
            self.line.clear();
            self.number += 1;
            match self.input.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.error = Some(TraceError {
                        line: self.number,
                        message: e.to_string(),
                    });
                    return None;
                }
            }
            match self.parse() {
                Ok(Some(a)) => return Some(a),
                Ok(None) => continue,
                Err(message) => {
                    self.error = Some(TraceError {
                        line: self.number,
                        message,
                    });
                    return None;
                }
            }
        }
    }
}

/// Where a synthetic workload's requests go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// Consecutive requests from address 0 up to `bytes`.
    Streaming { bytes: u64 },
    /// `requests` requests at uniformly random request-aligned addresses below `footprint`.
    Random { footprint: u64, requests: u64 },
    /// `requests` requests to one bank (channel 0, pseudo-channel 0, rank 0, bank group 0, bank
    /// 0), each to the next row: every access after the first a row conflict (open page).
    BankConflict { requests: u64 },
}

/// A synthetic workload: a pattern, its request size (a request of more than one access is
/// that many consecutive accesses, e.g. a 64 B request on HBM3's 32 B accesses is two) and
/// the fraction of requests that read (the rest write), drawn from a seeded ChaCha8 stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    pub pattern: Pattern,
    pub request_bytes: u64,
    pub read_fraction: f64,
    pub seed: u64,
}

impl Workload {
    pub fn new(pattern: Pattern) -> Self {
        Workload {
            pattern,
            request_bytes: 64,
            read_fraction: 1.0,
            seed: 0,
        }
    }

    pub fn request_bytes(mut self, b: u64) -> Self {
        self.request_bytes = b;
        self
    }

    pub fn read_fraction(mut self, f: f64) -> Self {
        self.read_fraction = f;
        self
    }

    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    /// Requests the workload makes.
    pub fn requests(&self) -> u64 {
        let rb = self.request_bytes.max(1);
        match self.pattern {
            Pattern::Streaming { bytes } => bytes / rb,
            Pattern::Random { requests, .. } | Pattern::BankConflict { requests } => requests,
        }
    }

    /// The accesses, for `spec`.
    pub fn accesses(&self, spec: &DramSpec) -> Generator {
        let ab = spec.access_bytes();
        let per = self.request_bytes.div_ceil(ab).max(1);
        let mapping = AddressMapping::parse(&spec.controller.address_mapping, &spec.organization)
            .expect("a validated spec has a valid mapping")
            .hashed(spec.controller.channel_hash);
        let rows = spec.organization.rows;
        Generator {
            w: *self,
            ab,
            per,
            mapping,
            rows,
            rng: ChaCha8Rng::seed_from_u64(self.seed),
            rw_rng: ChaCha8Rng::seed_from_u64(self.seed ^ 0x9e37_79b9_7f4a_7c15),
            request: 0,
            total: self.requests(),
            part: per,
            base: 0,
            write: false,
        }
    }
}

/// The accesses of a [`Workload`].
pub struct Generator {
    w: Workload,
    ab: u64,
    per: u64,
    mapping: AddressMapping,
    rows: u32,
    rng: ChaCha8Rng,
    rw_rng: ChaCha8Rng,
    request: u64,
    total: u64,
    /// Next access within the current request (== per: start a new request).
    part: u64,
    base: u64,
    write: bool,
}

impl Iterator for Generator {
    type Item = Access;

    fn next(&mut self) -> Option<Access> {
        if self.part == self.per {
            if self.request == self.total {
                return None;
            }
            let i = self.request;
            self.request += 1;
            let rb = self.w.request_bytes.max(1);
            self.base = match self.w.pattern {
                Pattern::Streaming { .. } => i * rb,
                Pattern::Random { footprint, .. } => {
                    let slots = (footprint / rb).max(1);
                    self.rng.random_range(0..slots) * rb
                }
                Pattern::BankConflict { .. } => self.mapping.encode(&Location {
                    row: (i % u64::from(self.rows)) as u32,
                    ..Location::default()
                }),
            };
            self.write = self.w.read_fraction < 1.0 && {
                let x: f64 = self.rw_rng.random();
                x >= self.w.read_fraction
            };
            self.part = 0;
        }
        let addr = self.base + self.part * self.ab;
        self.part += 1;
        Some(Access {
            addr,
            write: self.write,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ramulator_lines_and_reports_the_bad_one() {
        let text = "LD 0x40\nST 128\n\nLD 0X1f\nXX 0x0\nLD 0x80\n";
        let mut r = TraceReader::new(text.as_bytes());
        let got: Vec<Access> = r.by_ref().collect();
        assert_eq!(
            got,
            [
                Access {
                    addr: 0x40,
                    write: false
                },
                Access {
                    addr: 128,
                    write: true
                },
                Access {
                    addr: 0x1f,
                    write: false
                },
            ]
        );
        let e = r.error().unwrap();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("unknown type `XX`"), "{e}");
        let mut r = TraceReader::new("LD\n".as_bytes());
        assert!(r.next().is_none());
        assert!(r.error().unwrap().message.contains("expected"));
        let mut r = TraceReader::new("LD 0xzz\n".as_bytes());
        assert!(r.next().is_none());
        assert!(r.error().unwrap().message.contains("bad address"));
    }
}
