//! How a randomised MAC is tied to an earlier identity (`judge/identity.rs` makes the
//! ties; events and the state store carry them).

use sensor_common::MacAddr;

/// How an identity key was learned, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// DHCP option 61.
    DhcpClientId,
    /// DHCPv6 client DUID.
    Duid,
    /// A DHCP host name (option 12) or DHCPv6 FQDN.
    Hostname,
    /// An mDNS host name (`name.local`).
    MdnsHostname,
}

impl Key {
    /// The key named so in events and the state store.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Key::DhcpClientId,
            Key::Duid,
            Key::Hostname,
            Key::MdnsHostname,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The name in events (`iot.device.identity.by`).
    pub fn as_str(self) -> &'static str {
        match self {
            Key::DhcpClientId => "dhcp_client_id",
            Key::Duid => "dhcpv6_duid",
            Key::Hostname => "hostname",
            Key::MdnsHostname => "mdns_hostname",
        }
    }

    /// An identifier the device keeps (not a name a user or a default picked).
    pub fn strong(self) -> bool {
        matches!(self, Key::DhcpClientId | Key::Duid)
    }
}

/// A MAC tied to an earlier one's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tie {
    /// The identity's first MAC.
    pub identity: MacAddr,
    /// What agreed.
    pub by: Key,
}
