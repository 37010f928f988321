//! The Ethernet (EUI-48) address: a device's identity in every map, record and event.

use core::{fmt, str::FromStr};

/// An Ethernet address, laid out as its six bytes (`repr(transparent)`), so kernel
/// structures keep their layout and the eBPF side pays nothing for the type.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address, `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The I/G bit: a group (multicast or broadcast) address, never one device's.
    #[inline(always)]
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The U/L bit: locally administered (randomised, virtual), so its prefix names no
    /// vendor.
    #[inline(always)]
    pub const fn is_locally_administered(self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The first three bytes: the IEEE MA-L prefix when universally administered.
    pub const fn oui(self) -> [u8; 3] {
        [self.0[0], self.0[1], self.0[2]]
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

/// The first six bytes of a slice that holds exactly six (a hardware-address field).
impl TryFrom<&[u8]> for MacAddr {
    type Error = core::array::TryFromSliceError;

    fn try_from(b: &[u8]) -> Result<Self, Self::Error> {
        <[u8; 6]>::try_from(b).map(MacAddr)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(m: MacAddr) -> Self {
        m.0
    }
}

impl PartialEq<[u8; 6]> for MacAddr {
    fn eq(&self, other: &[u8; 6]) -> bool {
        self.0 == *other
    }
}

/// `aa:bb:cc:dd:ee:ff`, lower case, as events and the state store write it.
impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written into a buffer and handed over once: every flow record and device event
        // carries MACs, and six `{:02x}` through the formatter cost more than the rest of
        // the field.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut b = [b':'; 17];
        for (i, byte) in self.0.iter().enumerate() {
            b[i * 3] = HEX[usize::from(byte >> 4)];
            b[i * 3 + 1] = HEX[usize::from(byte & 0xf)];
        }
        f.pad(core::str::from_utf8(&b).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseMacError;

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a MAC address such as aa:bb:cc:dd:ee:ff")
    }
}

/// Six hexadecimal bytes separated by `:` or `-`.
impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next().ok_or(ParseMacError)?;
            if p.is_empty() || p.len() > 2 {
                return Err(ParseMacError);
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| ParseMacError)?;
        }
        match parts.next() {
            None => Ok(MacAddr(out)),
            Some(_) => Err(ParseMacError),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn prints_and_parses_both_separators() {
        let m = MacAddr([0x02, 0x00, 0x5e, 0x10, 0xab, 0x01]);
        assert_eq!(m.to_string(), "02:00:5e:10:ab:01");
        assert_eq!("02:00:5E:10:AB:01".parse(), Ok(m));
        assert_eq!("02-00-5e-10-ab-01".parse(), Ok(m));
        for bad in [
            "",
            "02:00:5e:10:ab",
            "02:00:5e:10:ab:01:02",
            "02:00:5e:10:ab:1g",
            "020:0:5e:10:ab:01",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacError), "{bad:?}");
        }
    }

    #[test]
    fn the_two_flag_bits() {
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_locally_administered());
        assert!(!MacAddr([0xb8, 0x27, 0xeb, 0, 0, 1]).is_locally_administered());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([0x01, 0x00, 0x5e, 0, 0, 0xfb]).is_multicast());
        assert_eq!(
            MacAddr([0xb8, 0x27, 0xeb, 0, 0, 1]).oui(),
            [0xb8, 0x27, 0xeb]
        );
    }
}
