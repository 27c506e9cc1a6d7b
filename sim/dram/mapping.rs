//! Address mapping: a physical address → channel, pseudo-channel, rank, bank group, bank, row,
//! column, by an ordered list of fields (Ramulator's naming, MSB → LSB).

use super::spec::Organization;

/// One field of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Channel,
    PseudoChannel,
    Rank,
    BankGroup,
    Bank,
    Row,
    Column,
}

impl Field {
    fn token(self) -> &'static str {
        match self {
            Field::Channel => "Ch",
            Field::PseudoChannel => "Pc",
            Field::Rank => "Ra",
            Field::BankGroup => "Bg",
            Field::Bank => "Ba",
            Field::Row => "Ro",
            Field::Column => "Co",
        }
    }
}

/// Where an access lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub channel: u32,
    pub pc: u32,
    pub rank: u32,
    pub bg: u32,
    pub bank: u32,
    pub row: u32,
    /// Column access within the row, in accesses (0 .. columns / burst length).
    pub col: u32,
}

/// A parsed mapping. The string names fields MSB → LSB with two-letter tokens: `Ro` row, `Ba`
/// bank, `Bg` bank group, `Ra` rank, `Pc` pseudo-channel, `Co` column (in accesses: columns /
/// burst length of them per row), `Ch` channel. `Ro`, `Ba`, `Ra`, `Co` and `Ch` are required;
/// where `Bg` is absent it sits just below `Ba` ("bank" then covers bank group and bank, as in
/// Ramulator's RoBaRaCoCh), where `Pc` is absent just below `Ra`. So `RoBaRaCoCh` is
/// `Ro Ba Bg Ra Pc Co Ch` and Ramulator's `ChRaBaRoCo` (bank group above bank) is written
/// `ChRaBgBaRoCo` here. An address is first divided by the access size; each field then takes
/// the remainder by its count from the least significant end (bit slicing when counts are
/// powers of two, mixed radix otherwise, so 80 or 96 channels work); what is left above the
/// most significant field wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressMapping {
    /// LSB first: (field, count).
    fields: Vec<(Field, u32)>,
    access_bytes: u64,
    /// Per field (LSB first): log2 of the count when it is a power of two.
    shifts: Vec<Option<u32>>,
    access_shift: Option<u32>,
    /// With channel hashing ([`Self::hashed`]), the channel count: the channel field is
    /// offset by a hash of the other fields, modulo the channels.
    hash: Option<u32>,
}

/// A 64-bit mix (SplitMix64's finaliser) of a location's fields other than the channel.
#[inline]
fn mix(l: &Location) -> u64 {
    let mut z = (u64::from(l.row) << 40)
        ^ (u64::from(l.col) << 20)
        ^ (u64::from(l.bank) << 12)
        ^ (u64::from(l.bg) << 8)
        ^ (u64::from(l.pc) << 4)
        ^ u64::from(l.rank);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl AddressMapping {
    /// Parses `s` for an organisation; the error says what is wrong with the string.
    pub fn parse(s: &str, o: &Organization) -> Result<AddressMapping, String> {
        if !s.len().is_multiple_of(2) || !s.is_ascii() {
            return Err(format!(
                "`{s}`: expected two-letter fields (Ro, Ba, Bg, Ra, Pc, Co, Ch), MSB first"
            ));
        }
        let mut msb_first = Vec::new();
        for i in (0..s.len()).step_by(2) {
            let tok = &s[i..i + 2];
            let f = match tok {
                "Ch" => Field::Channel,
                "Pc" => Field::PseudoChannel,
                "Ra" => Field::Rank,
                "Bg" => Field::BankGroup,
                "Ba" => Field::Bank,
                "Ro" => Field::Row,
                "Co" => Field::Column,
                _ => {
                    return Err(format!(
                        "`{s}`: unknown field `{tok}` (fields: Ro, Ba, Bg, Ra, Pc, Co, Ch)"
                    ))
                }
            };
            if msb_first.contains(&f) {
                return Err(format!("`{s}`: field `{tok}` appears twice"));
            }
            msb_first.push(f);
        }
        for f in [
            Field::Row,
            Field::Bank,
            Field::Rank,
            Field::Column,
            Field::Channel,
        ] {
            if !msb_first.contains(&f) {
                return Err(format!("`{s}`: field `{}` is missing", f.token()));
            }
        }
        for (implied, below) in [
            (Field::BankGroup, Field::Bank),
            (Field::PseudoChannel, Field::Rank),
        ] {
            if !msb_first.contains(&implied) {
                let at = msb_first.iter().position(|&f| f == below).unwrap_or(0);
                msb_first.insert(at + 1, implied);
            }
        }
        let count = |f: Field| match f {
            Field::Channel => o.channels,
            Field::PseudoChannel => o.pseudo_channels,
            Field::Rank => o.ranks,
            Field::BankGroup => o.bank_groups,
            Field::Bank => o.banks_per_group,
            Field::Row => o.rows,
            Field::Column => (o.columns / o.burst_length.max(1)).max(1),
        };
        let fields: Vec<(Field, u32)> = msb_first.iter().rev().map(|&f| (f, count(f))).collect();
        let shifts = fields
            .iter()
            .map(|&(_, n)| n.is_power_of_two().then(|| n.trailing_zeros()))
            .collect();
        let access_bytes = (u64::from(o.bus_width_bits) * u64::from(o.burst_length) / 8).max(1);
        Ok(AddressMapping {
            fields,
            access_bytes,
            shifts,
            access_shift: access_bytes
                .is_power_of_two()
                .then(|| access_bytes.trailing_zeros()),
            hash: None,
        })
    }

    /// Channel hashing on or off: as GPUs spread physical addresses over their channels
    /// with a hash (so that strided streams do not camp on a few channels), the channel a
    /// location decodes to is offset by a hash of its other fields, modulo the channels.
    /// `encode` inverts it.
    pub fn hashed(mut self, on: bool) -> Self {
        self.hash = if on {
            self.fields
                .iter()
                .find(|f| f.0 == Field::Channel)
                .map(|f| f.1)
                .filter(|&n| n > 1)
        } else {
            None
        };
        self
    }

    /// The fields MSB → LSB, implied ones included (`RoBaBgRaPcCoCh`).
    pub fn canonical(&self) -> String {
        self.fields.iter().rev().map(|f| f.0.token()).collect()
    }

    /// Where `addr` lands.
    #[inline]
    pub fn decode(&self, addr: u64) -> Location {
        let mut x = match self.access_shift {
            Some(s) => addr >> s,
            None => addr / self.access_bytes,
        };
        let mut loc = Location::default();
        for (i, &(f, n)) in self.fields.iter().enumerate() {
            let v = match self.shifts[i] {
                Some(s) => {
                    let v = x & ((1u64 << s) - 1);
                    x >>= s;
                    v
                }
                None => {
                    let n = u64::from(n);
                    let v = x % n;
                    x /= n;
                    v
                }
            } as u32;
            match f {
                Field::Channel => loc.channel = v,
                Field::PseudoChannel => loc.pc = v,
                Field::Rank => loc.rank = v,
                Field::BankGroup => loc.bg = v,
                Field::Bank => loc.bank = v,
                Field::Row => loc.row = v,
                Field::Column => loc.col = v,
            }
        }
        if let Some(n) = self.hash {
            let n = u64::from(n);
            loc.channel = ((u64::from(loc.channel) + mix(&loc) % n) % n) as u32;
        }
        loc
    }

    /// The address of `loc`'s access (its column in accesses, as [`decode`](Self::decode)
    /// gives it); `decode(encode(l)) == l` for every in-range location.
    pub fn encode(&self, loc: &Location) -> u64 {
        let mut loc = *loc;
        if let Some(n) = self.hash {
            let n = u64::from(n);
            loc.channel = ((u64::from(loc.channel % n as u32) + n - mix(&loc) % n) % n) as u32;
        }
        let mut x = 0u64;
        for &(f, n) in self.fields.iter().rev() {
            let v = match f {
                Field::Channel => loc.channel,
                Field::PseudoChannel => loc.pc,
                Field::Rank => loc.rank,
                Field::BankGroup => loc.bg,
                Field::Bank => loc.bank,
                Field::Row => loc.row,
                Field::Column => loc.col,
            };
            x = x * u64::from(n) + u64::from(v % n);
        }
        x * self.access_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> Organization {
        Organization {
            channels: 80,
            pseudo_channels: 2,
            ranks: 1,
            bank_groups: 4,
            banks_per_group: 8,
            rows: 16384,
            columns: 256,
            bus_width_bits: 32,
            burst_length: 8,
            transfers_per_clock: 4,
        }
    }

    #[test]
    fn implied_fields_and_ramulator_names() {
        let o = org();
        for (s, canon) in [
            ("RoBaRaCoCh", "RoBaBgRaPcCoCh"),
            ("RoRaBaChCo", "RoRaPcBaBgChCo"),
            ("ChRaBgBaRoCo", "ChRaPcBgBaRoCo"),
            ("RoBaRaCoBgPcCh", "RoBaRaCoBgPcCh"),
        ] {
            assert_eq!(AddressMapping::parse(s, &o).unwrap().canonical(), canon);
        }
    }

    #[test]
    fn refuses_bad_strings() {
        let o = org();
        for (s, why) in [
            ("RoBaRaCo", "`Ch` is missing"),
            ("RoBaRaCoChCh", "appears twice"),
            ("RoBaRaCoXx", "unknown field `Xx`"),
            ("RoBaRaCoC", "two-letter"),
        ] {
            let e = AddressMapping::parse(s, &o).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn decode_inverts_encode_with_mixed_radix() {
        let o = org();
        let m = AddressMapping::parse("RoBaRaCoBgPcCh", &o).unwrap();
        // Consecutive 32 B accesses walk channels first (80 of them, not a power of two).
        assert_eq!(m.decode(0).channel, 0);
        assert_eq!(m.decode(32).channel, 1);
        assert_eq!(m.decode(32 * 79).channel, 79);
        let l = m.decode(32 * 80);
        assert_eq!((l.channel, l.pc), (0, 1));
        let l = m.decode(32 * 160);
        assert_eq!((l.channel, l.pc, l.bg), (0, 0, 1));
        for a in (0..1u64 << 34).step_by(0x1_2345_6789 / 3 * 32) {
            let a = a / 32 * 32;
            let l = m.decode(a);
            assert!(l.channel < 80 && l.col < 32 && l.row < 16384);
            assert_eq!(m.decode(m.encode(&l)), l);
        }
    }

    /// With channel hashing, encode still inverts decode, and a stream strided by a multiple
    /// of the channel interleave reaches (nearly) every channel instead of a few.
    #[test]
    fn channel_hashing_inverts_and_spreads_strided_streams() {
        let o = org();
        let plain = AddressMapping::parse("RoBaRaCoBgPcCh", &o).unwrap();
        let m = plain.clone().hashed(true);
        for a in (0..1u64 << 34).step_by(0x1_2345_6789 / 3 * 32) {
            let a = a / 32 * 32;
            let l = m.decode(a);
            assert!(l.channel < 80);
            assert_eq!(m.decode(m.encode(&l)), l);
            assert_eq!(m.encode(&l), a % (1 << 34));
        }
        let reached = |m: &AddressMapping| {
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..4096u64 {
                seen.insert(m.decode(i * 32 * 80).channel);
            }
            seen.len()
        };
        assert_eq!(reached(&plain), 1);
        assert!(reached(&m) >= 78, "{}", reached(&m));
        assert_eq!(plain.clone().hashed(false), plain);
    }
}
