//! Unit-checked physical quantities parsed from strings such as `"16 MiB"`, `"400 GB/s"`,
//! `"940 MHz"`, `"17.16 pJ"` and `"0.8 us"`.
//!
//! Every quantity stores an `f64` in SI base units (bytes, bytes/s, Hz, joules, seconds).
//! Parsing rejects NaN, infinite and negative values and anything outside the quantity's
//! physical range, so that no figure derived from an architecture can overflow to infinity or
//! NaN: a capacity is 1 bit to 1 PB, a bandwidth 1 B/s to 1 PB/s, a clock 1 kHz to 100 GHz, an
//! energy (per access or operation) 0 to 1 mJ, a duration 0 to 1 s. Each type (de)serializes as
//! a canonical string (its [`Display`] form) that re-parses to exactly the same `f64`.
//!
//! Clock cycles are deliberately *not* a [`Duration`]: keep them as plain integers in fields named
//! `*_cycles`.
//!
//! [`Display`]: std::fmt::Display

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Why a quantity string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The text is not `<number> <unit>` with a unit of the right kind.
    #[error("expected {article} {kind} like \"{example}\", got \"{given}\" (accepted units: {accepted})")]
    Malformed {
        /// "a" or "an".
        article: &'static str,
        /// Quantity kind, e.g. "bandwidth".
        kind: &'static str,
        /// An example of a valid value.
        example: &'static str,
        /// What was given.
        given: String,
        /// Accepted unit suffixes.
        accepted: String,
    },
    /// The value is NaN, infinite, negative, zero where zero is not allowed, or outside the
    /// quantity's physical range.
    #[error("{kind} {reason}, got \"{given}\" (accepted: {range})")]
    OutOfRange {
        /// Quantity kind, e.g. "bandwidth".
        kind: &'static str,
        /// e.g. "must be > 0".
        reason: &'static str,
        /// What was given.
        given: String,
        /// The accepted range, e.g. "1 kHz to 100 GHz".
        range: &'static str,
    },
}

/// One accepted unit: `value_si = number * mul / div` (both factors exact in f64).
struct Unit {
    suffix: &'static str,
    mul: f64,
    div: f64,
    /// Used when choosing the canonical output form.
    canonical: bool,
}

const fn u(suffix: &'static str, mul: f64, div: f64, canonical: bool) -> Unit {
    Unit {
        suffix,
        mul,
        div,
        canonical,
    }
}

const KI: f64 = 1024.0;
const MI: f64 = 1024.0 * 1024.0;
const GI: f64 = 1024.0 * 1024.0 * 1024.0;
const TI: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;

/// Units listed largest first, base unit last. The canonical form uses the first canonical scaled
/// unit in which the value is ≥ 1, has at most 4 decimals and re-parses exactly; otherwise the base
/// unit (factor 1, always exact).
const BYTE_UNITS: &[Unit] = &[
    u("TiB", TI, 1.0, true),
    u("TB", 1e12, 1.0, true),
    u("GiB", GI, 1.0, true),
    u("GB", 1e9, 1.0, true),
    u("MiB", MI, 1.0, true),
    u("MB", 1e6, 1.0, true),
    u("KiB", KI, 1.0, true),
    u("KB", 1e3, 1.0, true),
    u("kB", 1e3, 1.0, false),
    u("B", 1.0, 1.0, true),
];
const BANDWIDTH_UNITS: &[Unit] = &[
    u("TiB/s", TI, 1.0, true),
    u("TB/s", 1e12, 1.0, true),
    u("GiB/s", GI, 1.0, true),
    u("GB/s", 1e9, 1.0, true),
    u("MiB/s", MI, 1.0, true),
    u("MB/s", 1e6, 1.0, true),
    u("KiB/s", KI, 1.0, true),
    u("KB/s", 1e3, 1.0, true),
    u("kB/s", 1e3, 1.0, false),
    u("B/s", 1.0, 1.0, true),
];
const FREQUENCY_UNITS: &[Unit] = &[
    u("GHz", 1e9, 1.0, true),
    u("MHz", 1e6, 1.0, true),
    u("kHz", 1e3, 1.0, true),
    u("Hz", 1.0, 1.0, true),
];
const ENERGY_UNITS: &[Unit] = &[
    u("mJ", 1.0, 1e3, true),
    u("uJ", 1.0, 1e6, true),
    u("µJ", 1.0, 1e6, false),
    u("nJ", 1.0, 1e9, true),
    u("pJ", 1.0, 1e12, true),
    u("fJ", 1.0, 1e15, true),
    u("J", 1.0, 1.0, true),
];
const DURATION_UNITS: &[Unit] = &[
    u("ms", 1.0, 1e3, true),
    u("us", 1.0, 1e6, true),
    u("µs", 1.0, 1e6, false),
    u("ns", 1.0, 1e9, true),
    u("ps", 1.0, 1e12, true),
    u("s", 1.0, 1.0, true),
];

struct Kind {
    name: &'static str,
    article: &'static str,
    example: &'static str,
    units: &'static [Unit],
    zero_ok: bool,
    bare_number_is_base: bool,
    /// Smallest accepted non-zero value (SI base units).
    min: f64,
    /// Largest accepted value (SI base units).
    max: f64,
    /// The accepted range in words, e.g. "1 kHz to 100 GHz".
    range: &'static str,
}

impl Kind {
    fn accepted(&self) -> String {
        let mut seen: Vec<&str> = Vec::new();
        for unit in self.units {
            if !seen.contains(&unit.suffix) {
                seen.push(unit.suffix);
            }
        }
        let mut s = seen.join(", ");
        if self.bare_number_is_base {
            s.push_str(", or a plain integer number of bytes");
        }
        s
    }

    fn malformed(&self, given: &str) -> UnitError {
        UnitError::Malformed {
            article: self.article,
            kind: self.name,
            example: self.example,
            given: given.to_string(),
            accepted: self.accepted(),
        }
    }

    fn check(&self, value: f64, given: &str) -> Result<f64, UnitError> {
        let reason = if value.is_nan() || value.is_infinite() {
            "must be finite"
        } else if value < 0.0 {
            "must not be negative"
        } else if value == 0.0 && !self.zero_ok {
            "must be > 0"
        } else if value == 0.0 {
            return Ok(value);
        } else if value < self.min {
            "is below the smallest physical value"
        } else if value > self.max {
            "is above the largest physical value"
        } else {
            return Ok(value);
        };
        Err(UnitError::OutOfRange {
            kind: self.name,
            reason,
            given: given.to_string(),
            range: self.range,
        })
    }

    fn parse(&self, text: &str) -> Result<f64, UnitError> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E')))
            .unwrap_or(t.len());
        let (num, rest) = t.split_at(split);
        let unit_text = rest.trim();
        let number: f64 = num.parse().map_err(|_| self.malformed(text))?;
        let value = if unit_text.is_empty() {
            if !self.bare_number_is_base || !num.bytes().all(|b| b.is_ascii_digit()) {
                return Err(self.malformed(text));
            }
            number
        } else {
            let unit = self
                .units
                .iter()
                .find(|u| u.suffix == unit_text)
                .ok_or_else(|| self.malformed(text))?;
            number * unit.mul / unit.div
        };
        self.check(value, text)
    }

    fn format(&self, value: f64) -> String {
        let scaled = self
            .units
            .iter()
            .filter(|u| u.canonical && u.mul / u.div != 1.0);
        for unit in scaled {
            let x = value * unit.div / unit.mul;
            if x < 1.0 {
                continue;
            }
            let s = format!("{x}");
            let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
            if decimals > 4 {
                continue;
            }
            if let Ok(back) = s.parse::<f64>() {
                if back * unit.mul / unit.div == value {
                    return format!("{s} {}", unit.suffix);
                }
            }
        }
        // The base unit always round-trips exactly (factor 1).
        let base = self.units.last().expect("unit table is non-empty");
        format!("{value} {}", base.suffix)
    }
}

macro_rules! quantity {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:expr, accessor: $acc:ident, $acc_doc:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        pub struct $name(f64);

        impl $name {
            const KIND: Kind = $kind;

            /// Builds the quantity from a value in SI base units, applying the same range checks as
            /// parsing.
            pub fn new(si_value: f64) -> Result<Self, UnitError> {
                Self::KIND
                    .check(si_value, &format!("{si_value}"))
                    .map($name)
            }

            #[doc = $acc_doc]
            pub fn $acc(self) -> f64 {
                self.0
            }

            /// The value in SI base units.
            pub fn si(self) -> f64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = UnitError;
            fn from_str(s: &str) -> Result<Self, UnitError> {
                Self::KIND.parse(s).map($name)
            }
        }

        impl fmt::Display for $name {
            /// Canonical form; re-parses to exactly the same value.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&Self::KIND.format(self.0))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} {} like \"{}\"", $name::KIND.article, $name::KIND.name, $name::KIND.example)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$name, E> {
                        self.visit_str(&v.to_string())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

quantity! {
    /// A storage capacity in bytes: `"16 MiB"`, `"32 MB"`, `"512 KB"`, `"64 B"`, or a plain
    /// integer (bytes). KiB/MiB/GiB/TiB are binary, KB/MB/GB/TB decimal. 1 bit (0.125 B) to 1 PB.
    Bytes,
    Kind {
        name: "capacity",
        article: "a",
        example: "16 MiB",
        units: BYTE_UNITS,
        zero_ok: false,
        bare_number_is_base: true,
        min: 0.125,
        max: 1e15,
        range: "1 bit (0.125 B) to 1 PB",
    },
    accessor: bytes, "The capacity in bytes."
}

quantity! {
    /// A bandwidth in bytes per second: `"400 GB/s"`, `"3.35 TB/s"`, `"400 GiB/s"`. 1 B/s to 1 PB/s.
    Bandwidth,
    Kind {
        name: "bandwidth",
        article: "a",
        example: "400 GB/s",
        units: BANDWIDTH_UNITS,
        zero_ok: false,
        bare_number_is_base: false,
        min: 1.0,
        max: 1e15,
        range: "1 B/s to 1 PB/s",
    },
    accessor: bytes_per_s, "The bandwidth in bytes per second."
}

quantity! {
    /// A clock frequency: `"940 MHz"`, `"1.83 GHz"`. 1 kHz to 100 GHz.
    Frequency,
    Kind {
        name: "frequency",
        article: "a",
        example: "940 MHz",
        units: FREQUENCY_UNITS,
        zero_ok: false,
        bare_number_is_base: false,
        min: 1e3,
        max: 1e11,
        range: "1 kHz to 100 GHz",
    },
    accessor: hz, "The frequency in hertz."
}

quantity! {
    /// An energy: `"17.16 pJ"`, `"0.909 nJ"` (fJ, pJ, nJ, uJ/µJ, mJ, J). 0 to 1 mJ (per access or operation).
    Energy,
    Kind {
        name: "energy",
        article: "an",
        example: "17.16 pJ",
        units: ENERGY_UNITS,
        zero_ok: true,
        bare_number_is_base: false,
        min: f64::MIN_POSITIVE,
        max: 1e-3,
        range: "0 J to 1 mJ",
    },
    accessor: joules, "The energy in joules."
}

quantity! {
    /// A wall-clock duration: `"0.8 us"`, `"19 ns"` (ps, ns, us/µs, ms, s). 0 to 1 s.
    /// Cycle counts are not durations: store them as integers in `*_cycles` fields.
    Duration,
    Kind {
        name: "duration",
        article: "a",
        example: "0.8 us",
        units: DURATION_UNITS,
        zero_ok: true,
        bare_number_is_base: false,
        min: f64::MIN_POSITIVE,
        max: 1.0,
        range: "0 s to 1 s",
    },
    accessor: seconds, "The duration in seconds."
}

impl Energy {
    /// The energy in picojoules.
    pub fn pj(self) -> f64 {
        self.0 * 1e12
    }

    /// Builds an energy from picojoules (must be finite and ≥ 0).
    pub fn from_pj(pj: f64) -> Result<Self, UnitError> {
        Self::new(pj / 1e12)
    }
}

impl Bandwidth {
    /// Seconds needed to move `bytes` at this bandwidth.
    pub fn seconds_for(self, bytes: f64) -> f64 {
        bytes / self.0
    }
}

impl Frequency {
    /// Length of one clock cycle in seconds.
    pub fn period_s(self) -> f64 {
        1.0 / self.0
    }

    /// Converts a cycle count to seconds at this clock.
    pub fn cycles_to_seconds(self, cycles: f64) -> f64 {
        cycles / self.0
    }
}

impl Duration {
    /// The duration in clock cycles at `clock` (not rounded).
    pub fn cycles_at(self, clock: Frequency) -> f64 {
        self.0 * clock.hz()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: FromStr<Err = UnitError> + fmt::Debug>(s: &str) -> String {
        s.parse::<T>().unwrap_err().to_string()
    }

    #[test]
    fn bytes_good() {
        let cases: &[(&str, f64)] = &[
            ("16 MiB", 16.0 * MI),
            ("32 MB", 32e6),
            ("512 KB", 512e3),
            ("512 KiB", 512.0 * KI),
            ("64 B", 64.0),
            ("80 GB", 80e9),
            ("1 TB", 1e12),
            ("2 GiB", 2.0 * GI),
            ("4096", 4096.0),
            ("20B", 20.0),
            ("  1.5 KiB ", 1536.0),
        ];
        for &(s, v) in cases {
            assert_eq!(s.parse::<Bytes>().unwrap().bytes(), v, "{s}");
        }
    }

    #[test]
    fn bytes_bad() {
        assert_eq!(
            err::<Bytes>("16 Mb"),
            "expected a capacity like \"16 MiB\", got \"16 Mb\" (accepted units: TiB, TB, GiB, \
             GB, MiB, MB, KiB, KB, kB, B, or a plain integer number of bytes)"
        );
        assert_eq!(
            err::<Bytes>("0 B"),
            "capacity must be > 0, got \"0 B\" (accepted: 1 bit (0.125 B) to 1 PB)"
        );
        assert_eq!(
            err::<Bytes>("0"),
            "capacity must be > 0, got \"0\" (accepted: 1 bit (0.125 B) to 1 PB)"
        );
        assert_eq!(
            err::<Bytes>("-1 KiB"),
            "capacity must not be negative, got \"-1 KiB\" (accepted: 1 bit (0.125 B) to 1 PB)"
        );
        assert!(err::<Bytes>("1.5").starts_with("expected a capacity"));
        assert!(err::<Bytes>("NaN B").starts_with("expected a capacity"));
        assert!(err::<Bytes>("inf B").starts_with("expected a capacity"));
        assert_eq!(
            err::<Bytes>("1e400 B"),
            "capacity must be finite, got \"1e400 B\" (accepted: 1 bit (0.125 B) to 1 PB)"
        );
        assert!(err::<Bytes>("MiB").starts_with("expected a capacity"));
        assert!(err::<Bytes>("").starts_with("expected a capacity"));
    }

    #[test]
    fn bandwidth() {
        assert_eq!(
            "400 GB/s".parse::<Bandwidth>().unwrap().bytes_per_s(),
            400e9
        );
        assert_eq!(
            "3.35 TB/s".parse::<Bandwidth>().unwrap().bytes_per_s(),
            3.35e12
        );
        assert_eq!(
            "13.4 TB/s".parse::<Bandwidth>().unwrap().bytes_per_s(),
            13.4e12
        );
        assert_eq!(
            "400 GiB/s".parse::<Bandwidth>().unwrap().bytes_per_s(),
            400.0 * GI
        );
        let e = err::<Bandwidth>("400 GB");
        assert!(
            e.starts_with(
                "expected a bandwidth like \"400 GB/s\", got \"400 GB\" (accepted units: TiB/s"
            ),
            "{e}"
        );
        assert_eq!(
            err::<Bandwidth>("0 GB/s"),
            "bandwidth must be > 0, got \"0 GB/s\" (accepted: 1 B/s to 1 PB/s)"
        );
        assert!(err::<Bandwidth>("400").starts_with("expected a bandwidth"));
        assert_eq!(
            err::<Bandwidth>("-3 GB/s"),
            "bandwidth must not be negative, got \"-3 GB/s\" (accepted: 1 B/s to 1 PB/s)"
        );
    }

    #[test]
    fn frequency() {
        assert_eq!("940 MHz".parse::<Frequency>().unwrap().hz(), 940e6);
        assert_eq!("1.83 GHz".parse::<Frequency>().unwrap().hz(), 1.83e9);
        assert_eq!(
            err::<Frequency>("0 MHz"),
            "frequency must be > 0, got \"0 MHz\" (accepted: 1 kHz to 100 GHz)"
        );
        assert_eq!(
            err::<Frequency>("940 mhz"),
            "expected a frequency like \"940 MHz\", got \"940 mhz\" (accepted units: GHz, MHz, \
             kHz, Hz)"
        );
    }

    #[test]
    fn energy() {
        let e: Energy = "17.16 pJ".parse().unwrap();
        assert!((e.pj() - 17.16).abs() < 1e-12);
        assert!((e.joules() - 17.16e-12).abs() < 1e-24);
        let e: Energy = "0.909 nJ".parse().unwrap();
        assert!((e.pj() - 909.0).abs() < 1e-9);
        assert_eq!("0 pJ".parse::<Energy>().unwrap().joules(), 0.0);
        assert_eq!(
            err::<Energy>("17.16 pj"),
            "expected an energy like \"17.16 pJ\", got \"17.16 pj\" (accepted units: mJ, uJ, µJ, \
             nJ, pJ, fJ, J)"
        );
        assert_eq!(
            err::<Energy>("-1 pJ"),
            "energy must not be negative, got \"-1 pJ\" (accepted: 0 J to 1 mJ)"
        );
    }

    #[test]
    fn duration() {
        assert!(("0.8 us".parse::<Duration>().unwrap().seconds() - 0.8e-6).abs() < 1e-20);
        assert!(("0.8 µs".parse::<Duration>().unwrap().seconds() - 0.8e-6).abs() < 1e-20);
        assert!(("19 ns".parse::<Duration>().unwrap().seconds() - 19e-9).abs() < 1e-20);
        assert_eq!(
            err::<Duration>("3000 cycles"),
            "expected a duration like \"0.8 us\", got \"3000 cycles\" (accepted units: ms, us, \
             µs, ns, ps, s)"
        );
    }

    /// Every quantity refuses values outside its physical range (so no derived figure can
    /// overflow to infinity or NaN), naming the range; the bounds themselves are accepted.
    #[test]
    fn physical_ranges() {
        let cases: &[(&str, &str)] = &[
            ("1e-30 B", "capacity is below the smallest physical value, got \"1e-30 B\" (accepted: 1 bit (0.125 B) to 1 PB)"),
            ("2e15 B", "capacity is above the largest physical value, got \"2e15 B\" (accepted: 1 bit (0.125 B) to 1 PB)"),
        ];
        for &(s, want) in cases {
            assert_eq!(err::<Bytes>(s), want);
        }
        assert_eq!("0.125 B".parse::<Bytes>().unwrap().bytes(), 0.125);
        assert_eq!("1000 TB".parse::<Bytes>().unwrap().bytes(), 1e15);
        assert_eq!(
            err::<Frequency>("1e-320 Hz"),
            "frequency is below the smallest physical value, got \"1e-320 Hz\" (accepted: 1 kHz to 100 GHz)"
        );
        assert!(err::<Frequency>("999 Hz").contains("below the smallest"));
        assert!(err::<Frequency>("101 GHz").contains("above the largest"));
        assert_eq!("1 kHz".parse::<Frequency>().unwrap().hz(), 1e3);
        assert_eq!("100 GHz".parse::<Frequency>().unwrap().hz(), 1e11);
        assert_eq!(
            err::<Energy>("1e308 J"),
            "energy is above the largest physical value, got \"1e308 J\" (accepted: 0 J to 1 mJ)"
        );
        assert!(err::<Energy>("2 mJ").contains("above the largest"));
        assert!(err::<Energy>("1e-320 J").contains("below the smallest"));
        assert_eq!("1 mJ".parse::<Energy>().unwrap().joules(), 1e-3);
        assert!(err::<Bandwidth>("0.5 B/s").contains("below the smallest"));
        assert!(err::<Bandwidth>("1e10 TB/s").contains("above the largest"));
        assert!(err::<Bandwidth>("1e400 TB/s").contains("must be finite"));
        assert_eq!(
            "1000 TB/s".parse::<Bandwidth>().unwrap().bytes_per_s(),
            1e15
        );
        assert!(err::<Duration>("2 s").contains("above the largest"));
        // Values built in code go through the same checks.
        assert!(Energy::new(f64::NAN).is_err());
        assert!(Energy::from_pj(1e300).is_err());
        assert!(Frequency::new(1.0).is_err());
        assert!(Bytes::new(f64::INFINITY).is_err());
    }

    #[test]
    fn canonical_round_trip() {
        let bytes = [
            "16 MiB", "32 MB", "512 KiB", "64 B", "80 GB", "20 B", "65792", "1.5 KiB",
        ];
        for s in bytes {
            let v: Bytes = s.parse().unwrap();
            let back: Bytes = v.to_string().parse().unwrap();
            assert_eq!(v, back, "{s} -> {v}");
        }
        assert_eq!("16 MiB".parse::<Bytes>().unwrap().to_string(), "16 MiB");
        assert_eq!("32 MB".parse::<Bytes>().unwrap().to_string(), "32 MB");
        assert_eq!("4096".parse::<Bytes>().unwrap().to_string(), "4 KiB");
        for s in [
            "400 GB/s",
            "3.35 TB/s",
            "400 GiB/s",
            "13.4 TB/s",
            "50 GiB/s",
        ] {
            let v: Bandwidth = s.parse().unwrap();
            assert_eq!(v.to_string(), s);
            assert_eq!(v.to_string().parse::<Bandwidth>().unwrap(), v);
        }
        for s in ["940 MHz", "1.83 GHz", "1.98 GHz"] {
            let v: Frequency = s.parse().unwrap();
            assert_eq!(v.to_string(), s);
        }
        for s in [
            "17.16 pJ",
            "0.909 nJ",
            "0.028 pJ",
            "550.24 pJ",
            "249.6 pJ",
            "111.3 pJ",
            "0 pJ",
        ] {
            let v: Energy = s.parse().unwrap();
            assert_eq!(v.to_string().parse::<Energy>().unwrap(), v, "{s} -> {v}");
        }
        for s in ["0.8 us", "19 ns", "1.6 us", "0 s"] {
            let v: Duration = s.parse().unwrap();
            assert_eq!(v.to_string().parse::<Duration>().unwrap(), v, "{s} -> {v}");
        }
        // Arbitrary values still round-trip exactly through the base-unit fallback.
        for x in [1.0 / 3.0e4, 123456.789e-15, 7.0e-13] {
            let e = Energy::new(x).unwrap();
            assert_eq!(e.to_string().parse::<Energy>().unwrap(), e);
        }
    }
}
