//! The vendor behind a MAC address, from the IEEE registries (MA-L, MA-M, MA-S, CID, IAB)
//! that the oui-data crate compiles in; nothing is fetched.

use sensor_common::MacAddr;

/// What a MAC address says about who made the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacOrigin {
    /// A universally administered address; the vendor when the registries know it.
    Universal(Option<&'static str>),
    /// Locally administered: randomised (phones, privacy modes) or virtual. Its prefix
    /// names no vendor, and saying one would mislead.
    Local,
}

impl MacOrigin {
    /// `universal` or `local`, as events name it.
    pub fn scope(self) -> &'static str {
        match self {
            MacOrigin::Universal(_) => "universal",
            MacOrigin::Local => "local",
        }
    }

    /// The vendor, if any.
    pub fn vendor(self) -> Option<&'static str> {
        match self {
            MacOrigin::Universal(v) => v,
            MacOrigin::Local => None,
        }
    }
}

/// Looks a MAC up (longest registered prefix: 36, 28 or 24 bits).
pub fn origin(mac: MacAddr) -> MacOrigin {
    if mac.is_locally_administered() {
        return MacOrigin::Local;
    }
    let hex: String = mac.0.iter().map(|b| format!("{b:02X}")).collect();
    MacOrigin::Universal(oui_data::lookup(&hex).map(|o| o.organization()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_devices_have_their_vendors() {
        // The devices of tests/fixtures (their README names them).
        let cases = [
            (
                [0x78, 0xdf, 0x72, 0x24, 0x69, 0x4d],
                "Shanghai Imilab Technology Co.Ltd",
            ),
            (
                [0xf4, 0x21, 0xae, 0x9e, 0x8f, 0xcb],
                "Shanghai Xiaodu Technology Limited",
            ),
            (
                [0xb8, 0x27, 0xeb, 0xb8, 0x53, 0xc8],
                "Raspberry Pi Foundation",
            ),
        ];
        for (mac, vendor) in cases {
            assert_eq!(origin(MacAddr(mac)), MacOrigin::Universal(Some(vendor)));
        }
    }

    #[test]
    fn locally_administered_addresses_get_no_vendor() {
        // 02:00:5e... is what the lab uses; a randomised phone MAC looks like da:a1:...
        for mac in [[0x02, 0, 0x5e, 0x10, 0, 0x17], [0xda, 0xa1, 0x19, 1, 2, 3]] {
            assert_eq!(origin(MacAddr(mac)), MacOrigin::Local);
            assert_eq!(origin(MacAddr(mac)).vendor(), None);
            assert_eq!(origin(MacAddr(mac)).scope(), "local");
        }
    }

    #[test]
    fn unregistered_universal_prefix_has_no_vendor() {
        assert_eq!(
            origin(MacAddr([0x00, 0x00, 0x00, 0, 0, 1])).scope(),
            "universal"
        );
    }
}
