//! Destination policy in the kernel: which device is in which policy group and mode, the
//! allow-list trie keyed by group and destination prefix, and the verdicts a new flow gets.

/// A flow's verdict, as the kernel takes it on a flow's first packet (and again on a
/// policy change) and userspace confirms it. The kernel stores it as its byte
/// ([`verdict`]); userspace decodes the byte with [`Verdict::from_u8`], never casts it.
#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Not evaluated on this CPU yet.
    #[default]
    Unset = 0,
    /// The destination (and port) is on the device's allow-list.
    Allowed = 1,
    /// The device has no policy in the kernel (userspace decides).
    NoPolicy = 2,
    /// The device is learning: allowed, and recorded by userspace.
    Learning = 3,
    /// The destination is on no allow-list entry of the device.
    Unexpected = 4,
    /// The destination is allowed, but not on this port or protocol.
    NewPort = 5,
    /// Unexpected or a new port, and the device is enforced: dropped.
    Blocked = 6,
    /// The destination is on a threat-intelligence feed.
    Intel = 7,
    /// The destination is a canary address.
    Canary = 8,
    /// On a feed, and dropped (`[intel] block`, or the device is enforced).
    IntelBlocked = 9,
}

impl Verdict {
    /// The verdict a byte from the kernel holds, if it is one.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Unset,
            1 => Self::Allowed,
            2 => Self::NoPolicy,
            3 => Self::Learning,
            4 => Self::Unexpected,
            5 => Self::NewPort,
            6 => Self::Blocked,
            7 => Self::Intel,
            8 => Self::Canary,
            9 => Self::IntelBlocked,
            _ => return None,
        })
    }

    /// Whether frames of a flow with this verdict are dropped.
    #[inline(always)]
    pub const fn dropped(self) -> bool {
        matches!(self, Self::Blocked | Self::IntelBlocked)
    }

    /// The policy decision for a device with a policy in `mode` (`mode`): a learning
    /// device learns; otherwise what the allow-list says (`listed`: a prefix covers the
    /// destination; `port_allowed`: that entry allows the port and protocol), and anything
    /// not allowed is dropped when the device is enforced. The kernel and userspace both
    /// decide with this function, so they cannot disagree.
    #[inline(always)]
    pub const fn decide(mode: u8, listed: bool, port_allowed: bool) -> Self {
        if mode == mode::LEARN {
            return Self::Learning;
        }
        let v = if !listed {
            Self::Unexpected
        } else if port_allowed {
            Self::Allowed
        } else {
            Self::NewPort
        };
        if !matches!(v, Self::Allowed) && mode == mode::ENFORCE {
            Self::Blocked
        } else {
            v
        }
    }

    /// Threat intelligence over the policy verdict, for a destination in the intel trie
    /// with `flags` (`intel_flags`): a feed hit outranks any policy, and is dropped when
    /// its feed blocks or the policy already drops; a canary is reported as such unless
    /// the policy drops it.
    #[inline(always)]
    pub const fn with_intel(policy: Self, flags: u8) -> Self {
        let intel = flags & intel_flags::INTEL != 0;
        let blocked = matches!(policy, Self::Blocked) || (intel && flags & intel_flags::BLOCK != 0);
        match (intel, blocked) {
            (true, true) => Self::IntelBlocked,
            (true, false) => Self::Intel,
            (false, true) => Self::Blocked,
            (false, false) => Self::Canary,
        }
    }

    /// The name in events (`iot.flow.verdict`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Allowed => "allowed",
            Self::NoPolicy => "no_policy",
            Self::Learning => "learning",
            Self::Unexpected => "unexpected",
            Self::NewPort => "new_port",
            Self::Blocked => "blocked",
            Self::Intel => "intel",
            Self::Canary => "canary",
            Self::IntelBlocked => "intel_blocked",
        }
    }
}

/// [`Verdict`] as the byte the kernel stores in flow slots, counters and records.
pub mod verdict {
    use super::Verdict;

    /// [`Verdict::Unset`].
    pub const UNSET: u8 = Verdict::Unset as u8;
    /// [`Verdict::Allowed`].
    pub const ALLOWED: u8 = Verdict::Allowed as u8;
    /// [`Verdict::NoPolicy`].
    pub const NO_POLICY: u8 = Verdict::NoPolicy as u8;
    /// [`Verdict::Learning`].
    pub const LEARNING: u8 = Verdict::Learning as u8;
    /// [`Verdict::Unexpected`].
    pub const UNEXPECTED: u8 = Verdict::Unexpected as u8;
    /// [`Verdict::NewPort`].
    pub const NEW_PORT: u8 = Verdict::NewPort as u8;
    /// [`Verdict::Blocked`].
    pub const BLOCKED: u8 = Verdict::Blocked as u8;
    /// [`Verdict::Intel`].
    pub const INTEL: u8 = Verdict::Intel as u8;
    /// [`Verdict::Canary`].
    pub const CANARY: u8 = Verdict::Canary as u8;
    /// [`Verdict::IntelBlocked`].
    pub const INTEL_BLOCKED: u8 = Verdict::IntelBlocked as u8;

    /// [`Verdict::dropped`] on the stored byte: the fast path checks it per frame.
    #[inline(always)]
    pub const fn dropped(v: u8) -> bool {
        v == BLOCKED || v == INTEL_BLOCKED
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
        use Verdict::*;
        let decide = Verdict::decide;
        assert_eq!(decide(mode::LEARN, false, false), Learning);
        assert_eq!(decide(mode::MONITOR, false, false), Unexpected);
        assert_eq!(decide(mode::MONITOR, true, false), NewPort);
        assert_eq!(decide(mode::MONITOR, true, true), Allowed);
        assert_eq!(decide(mode::ENFORCE, false, false), Blocked);
        assert_eq!(decide(mode::ENFORCE, true, false), Blocked);
        assert_eq!(decide(mode::ENFORCE, true, true), Allowed);
        let (i, c, b) = (intel_flags::INTEL, intel_flags::CANARY, intel_flags::BLOCK);
        let with_intel = Verdict::with_intel;
        assert_eq!(with_intel(Allowed, i), Intel);
        assert_eq!(with_intel(Allowed, i | b), IntelBlocked);
        assert_eq!(with_intel(Blocked, i), IntelBlocked);
        assert_eq!(with_intel(NoPolicy, c), Canary);
        assert_eq!(with_intel(Blocked, c), Blocked);
        assert!(Blocked.dropped() && IntelBlocked.dropped() && !Intel.dropped());
        assert!(verdict::dropped(verdict::BLOCKED) && !verdict::dropped(verdict::ALLOWED));
    }

    #[test]
    fn every_verdict_byte_decodes_to_itself() {
        for b in 0..=u8::MAX {
            match Verdict::from_u8(b) {
                Some(v) => assert_eq!(v as u8, b),
                None => assert!(b > verdict::INTEL_BLOCKED, "{b}"),
            }
        }
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
