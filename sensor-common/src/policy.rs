//! Destination policy in the kernel: which device is in which policy group and mode, the
//! allow-list trie keyed by group and destination prefix, and the verdicts a new flow gets.

/// A flow's verdict, taken once when it is created (and again when the policy
/// generation changes), stored with its counters.
pub mod verdict {
    /// Not evaluated on this CPU yet.
    pub const UNSET: u8 = 0;
    /// The destination (and port) is on the device's allow-list.
    pub const ALLOWED: u8 = 1;
    /// The device has no policy in the kernel (userspace decides).
    pub const NO_POLICY: u8 = 2;
    /// The device is learning: allowed, and recorded by userspace.
    pub const LEARNING: u8 = 3;
    /// The destination is on no allow-list entry of the device.
    pub const UNEXPECTED: u8 = 4;
    /// The destination is allowed, but not on this port or protocol.
    pub const NEW_PORT: u8 = 5;
    /// Unexpected or a new port, and the device is enforced: dropped.
    pub const BLOCKED: u8 = 6;
    /// The destination is on a threat-intelligence feed.
    pub const INTEL: u8 = 7;
    /// The destination is a canary address.
    pub const CANARY: u8 = 8;
    /// On a feed, and dropped (`[intel] block`, or the device is enforced).
    pub const INTEL_BLOCKED: u8 = 9;

    /// Whether frames of a flow with this verdict are dropped.
    #[inline(always)]
    pub const fn dropped(v: u8) -> bool {
        v == BLOCKED || v == INTEL_BLOCKED
    }

    /// The policy decision for a device with a policy in `mode` (`super::mode`): a
    /// learning device learns; otherwise what the allow-list says (`listed`: a prefix
    /// covers the destination; `port_allowed`: that entry allows the port and protocol),
    /// and anything not allowed is dropped when the device is enforced. The kernel and
    /// userspace both decide with this function, so they cannot disagree.
    #[inline(always)]
    pub const fn decide(mode: u8, listed: bool, port_allowed: bool) -> u8 {
        if mode == super::mode::LEARN {
            return LEARNING;
        }
        let v = if !listed {
            UNEXPECTED
        } else if port_allowed {
            ALLOWED
        } else {
            NEW_PORT
        };
        if v != ALLOWED && mode == super::mode::ENFORCE {
            BLOCKED
        } else {
            v
        }
    }

    /// Threat intelligence over the policy verdict, for a destination in the intel trie
    /// with `flags` (`super::intel_flags`): a feed hit outranks any policy, and is dropped
    /// when its feed blocks or the policy already drops; a canary is reported as such
    /// unless the policy drops it.
    #[inline(always)]
    pub const fn with_intel(policy: u8, flags: u8) -> u8 {
        let intel = flags & super::intel_flags::INTEL != 0;
        let blocked = policy == BLOCKED || (intel && flags & super::intel_flags::BLOCK != 0);
        match (intel, blocked) {
            (true, true) => INTEL_BLOCKED,
            (true, false) => INTEL,
            (false, true) => BLOCKED,
            (false, false) => CANARY,
        }
    }
}

/// Intel trie value flags.
pub mod intel_flags {
    /// On a threat-intelligence feed.
    pub const INTEL: u8 = 1;
    /// A canary address.
    pub const CANARY: u8 = 2;
    /// Drop traffic to it (with `INTEL`).
    pub const BLOCK: u8 = 4;
}

/// The data of an intel trie key: a destination, 16 bytes, IPv4 mapped.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntelData {
    /// The address.
    pub addr: [u8; 16],
}

/// Intel trie value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntelEntry {
    /// Userspace's id of the indicator (its feeds and categories); never 0.
    pub id: u32,
    /// `intel_flags::*`.
    pub flags: u8,
    /// Explicit padding, always zero.
    pub _pad: [u8; 3],
}

/// A device's policy mode.
pub mod mode {
    /// Every destination is allowed and recorded.
    pub const LEARN: u8 = 1;
    /// Unexpected destinations are reported.
    pub const MONITOR: u8 = 2;
    /// Unexpected destinations are reported and dropped.
    pub const ENFORCE: u8 = 3;
}

/// Port rules an allow entry holds; a prefix allowed on more ports is allowed on any.
pub const ALLOW_PORTS: usize = 8;

/// Bits of the group in an [`AllowData`] key: the trie's prefix length is this plus the
/// address prefix length (IPv4 mapped: 96 + its length).
pub const GROUP_BITS: u32 = 32;

/// Device policy map value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevicePolicy {
    /// Its policy group (the allow-list's first key bits).
    pub group: u32,
    /// `mode::*`.
    pub mode: u8,
    /// Explicit padding, always zero.
    pub _pad: [u8; 3],
}

/// The data of an allow-list trie key (after the kernel's 32-bit prefix length).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllowData {
    /// The policy group, big-endian so the trie compares it first, whole.
    pub group: [u8; 4],
    /// The destination, 16 bytes, IPv4 mapped.
    pub addr: [u8; 16],
}

/// One allowed port and protocol.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRule {
    /// Destination port, 0 for any.
    pub port: u16,
    /// IP protocol, 0 for any.
    pub proto: u8,
    /// Explicit padding, always zero.
    pub _pad: u8,
}

/// Allow-list trie value: what a prefix is allowed on. Userspace folds the rules of every
/// covering prefix into each entry, so the longest match alone decides.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowEntry {
    /// 1: any port and protocol.
    pub any: u8,
    /// Rules used in `rules`.
    pub count: u8,
    /// Explicit padding, always zero.
    pub _pad: [u8; 2],
    /// The port rules.
    pub rules: [PortRule; ALLOW_PORTS],
}

impl AllowEntry {
    /// Whether this entry allows `port` over `proto`.
    #[inline(always)]
    pub fn allows(&self, port: u16, proto: u8) -> bool {
        if self.any != 0 {
            return true;
        }
        let mut i = 0;
        while i < ALLOW_PORTS {
            if i >= self.count as usize {
                return false;
            }
            let r = &self.rules[i];
            if (r.proto == 0 || r.proto == proto) && (r.port == 0 || r.port == port) {
                return true;
            }
            i += 1;
        }
        false
    }
}

const _: () = assert!(core::mem::size_of::<DevicePolicy>() == 8);
const _: () = assert!(core::mem::size_of::<IntelData>() == 16);
const _: () = assert!(core::mem::size_of::<IntelEntry>() == 8);
const _: () = assert!(core::mem::size_of::<AllowData>() == 20);
const _: () = assert!(core::mem::size_of::<PortRule>() == 4);
const _: () = assert!(core::mem::size_of::<AllowEntry>() == 4 + 4 * ALLOW_PORTS);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), no implicit padding (sizes asserted above), any bit pattern valid.
    unsafe impl aya::Pod for super::DevicePolicy {}
    unsafe impl aya::Pod for super::AllowData {}
    unsafe impl aya::Pod for super::AllowEntry {}
    unsafe impl aya::Pod for super::IntelData {}
    unsafe impl aya::Pod for super::IntelEntry {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_table() {
        use verdict::*;
        assert_eq!(decide(mode::LEARN, false, false), LEARNING);
        assert_eq!(decide(mode::MONITOR, false, false), UNEXPECTED);
        assert_eq!(decide(mode::MONITOR, true, false), NEW_PORT);
        assert_eq!(decide(mode::MONITOR, true, true), ALLOWED);
        assert_eq!(decide(mode::ENFORCE, false, false), BLOCKED);
        assert_eq!(decide(mode::ENFORCE, true, false), BLOCKED);
        assert_eq!(decide(mode::ENFORCE, true, true), ALLOWED);
        let (i, c, b) = (intel_flags::INTEL, intel_flags::CANARY, intel_flags::BLOCK);
        assert_eq!(with_intel(ALLOWED, i), INTEL);
        assert_eq!(with_intel(ALLOWED, i | b), INTEL_BLOCKED);
        assert_eq!(with_intel(BLOCKED, i), INTEL_BLOCKED);
        assert_eq!(with_intel(NO_POLICY, c), CANARY);
        assert_eq!(with_intel(BLOCKED, c), BLOCKED);
        assert!(dropped(BLOCKED) && dropped(INTEL_BLOCKED) && !dropped(INTEL));
    }

    #[test]
    fn ports_match_by_rule_and_wildcard() {
        let mut e = AllowEntry {
            count: 2,
            ..AllowEntry::default()
        };
        e.rules[0] = PortRule {
            port: 443,
            proto: 6,
            _pad: 0,
        };
        e.rules[1] = PortRule {
            port: 0,
            proto: 17,
            _pad: 0,
        };
        assert!(e.allows(443, 6));
        assert!(!e.allows(80, 6));
        assert!(e.allows(53, 17), "any UDP port");
        assert!(!e.allows(443, 1));
        e.any = 1;
        assert!(e.allows(80, 6));
    }
}
