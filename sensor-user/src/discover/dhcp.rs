//! DHCPv4: what a client says about itself in its requests.
//!
//! Parsed by hand, bounds-checked at every step: dhcproto 0.15 panics on hostile input (an
//! unchecked `hlen` in `chaddr()`, `assert!`s on option lengths), which the property test
//! below found; a sensor on untrusted traffic cannot use it. The format is a fixed header
//! and a list of (code, length, value) options (RFC 2131, RFC 2132).

use sensor_common::MacAddr;

use super::{DecodeError, text};

const OP_BOOTREQUEST: u8 = 1;
const HEADER: usize = 236;
const COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];
const OPT_PAD: u8 = 0;
const OPT_END: u8 = 255;
const OPT_HOSTNAME: u8 = 12;
const OPT_PRL: u8 = 55;
const OPT_VENDOR_CLASS: u8 = 60;
const OPT_CLIENT_ID: u8 = 61;
/// MUD URL, RFC 8520.
const OPT_MUD_URL: u8 = 161;

/// The facts of one DHCP request, about the client whose hardware address it carries
/// (which is not the frame's sender when a relay forwards it).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DhcpFacts {
    /// Client hardware address (chaddr): the device the facts are about, not a fact.
    #[serde(skip)]
    pub client_mac: MacAddr,
    /// Host name (option 12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Vendor class identifier (option 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_class: Option<String>,
    /// Parameter request list (option 55), in the client's order: an OS fingerprint.
    /// Written comma-separated, the form fingerprint databases use.
    #[serde(with = "comma_list")]
    pub parameter_request_list: Vec<u8>,
    /// Client identifier (option 61), hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// MUD URL (option 161).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mud_url: Option<String>,
}

/// A parameter request list as fingerprint databases write it: `[1, 3, 6]` as `"1,3,6"`.
pub fn prl_text(v: &[u8]) -> String {
    let t: Vec<String> = v.iter().map(u8::to_string).collect();
    t.join(",")
}

/// `[1, 3, 6]` as `"1,3,6"` and back.
mod comma_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::prl_text(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let t = String::deserialize(d)?;
        t.split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

static CLIENTS: std::sync::LazyLock<globset::GlobSet> = std::sync::LazyLock::new(|| {
    crate::discover::glob_list::compile(
        include_str!("../../data/dhcp-clients.txt"),
        "data/dhcp-clients.txt",
    )
});

/// The vendor class as a model, unless it names a DHCP client or OS
/// (`data/dhcp-clients.txt`): RFC 2132 leaves the value to the vendor, and some put the
/// product there.
pub fn vendor_class_model(vendor_class: &str) -> Option<&str> {
    let v = vendor_class.trim();
    let ok = !v.is_empty() && v.chars().any(|c| c.is_ascii_alphabetic()) && !CLIENTS.is_match(v);
    ok.then_some(v)
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::new("dhcp", why)
}

/// Decodes a client's request from a whole frame; `Ok(None)` for server replies.
pub fn decode(frame: &[u8]) -> Result<Option<DhcpFacts>, DecodeError> {
    let p = etherparse::SlicedPacket::from_ethernet(frame)
        .map_err(|_| malformed("not an Ethernet/IP/UDP frame"))?;
    let Some(etherparse::TransportSlice::Udp(udp)) = p.transport else {
        return Err(malformed("not an Ethernet/IP/UDP frame"));
    };
    decode_message(udp.payload())
}

/// Decodes a DHCP message (the UDP payload).
pub fn decode_message(m: &[u8]) -> Result<Option<DhcpFacts>, DecodeError> {
    if m.len() < HEADER + COOKIE.len() {
        return Err(malformed("shorter than the fixed header"));
    }
    if m[HEADER..HEADER + 4] != COOKIE {
        return Err(malformed("no magic cookie"));
    }
    if m[0] != OP_BOOTREQUEST {
        return Ok(None);
    }
    if m[2] != 6 {
        return Err(malformed("client hardware address length is not 6"));
    }
    let mut facts = DhcpFacts {
        client_mac: m[28..34].try_into().expect("6 bytes"),
        ..DhcpFacts::default()
    };
    let mut opts = &m[HEADER + 4..];
    while let Some((&code, rest)) = opts.split_first() {
        match code {
            OPT_PAD => {
                opts = rest;
                continue;
            }
            OPT_END => break,
            _ => {}
        }
        let (&len, rest) = rest
            .split_first()
            .ok_or_else(|| malformed("option without a length"))?;
        let value = rest
            .get(..len as usize)
            .ok_or_else(|| malformed("option longer than the message"))?;
        opts = &rest[len as usize..];
        // The first occurrence of each option is the one kept.
        match code {
            OPT_HOSTNAME if facts.hostname.is_none() => facts.hostname = Some(text(value)),
            OPT_VENDOR_CLASS if facts.vendor_class.is_none() => {
                facts.vendor_class = Some(text(value))
            }
            OPT_PRL if facts.parameter_request_list.is_empty() => {
                facts.parameter_request_list = value.to_vec()
            }
            OPT_CLIENT_ID if facts.client_id.is_none() => {
                facts.client_id = Some(value.iter().take(64).map(|b| format!("{b:02x}")).collect())
            }
            OPT_MUD_URL if facts.mud_url.is_none() => facts.mud_url = Some(text(value)),
            _ => {}
        }
    }
    Ok(Some(facts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::frames as fixture;

    /// The values tcpdump prints for the same capture (dhcp-mud.out).
    #[test]
    fn relayed_request_with_a_mud_url() {
        let frames = fixture("tcpdump/dhcp-mud.pcap");
        let f = decode(&frames[0]).unwrap().expect("a request");
        assert_eq!(f.client_mac, [0xb8, 0x27, 0xeb, 0xb8, 0x53, 0xc8]);
        assert_eq!(f.hostname.as_deref(), Some("raspberrypi"));
        assert_eq!(
            f.vendor_class.as_deref(),
            Some("dhcpcd-6.11.5:Linux-4.1.18-v7+:armv7l:BCM2709")
        );
        assert_eq!(
            f.mud_url.as_deref(),
            Some("https://mudctl.example.com/.well-known/mud/v1/rasbp101")
        );
        assert_eq!(
            f.parameter_request_list,
            vec![
                1, 121, 33, 3, 6, 12, 15, 28, 42, 51, 54, 58, 59, 100, 101, 119
            ]
        );
        assert_eq!(f.client_id.as_deref(), Some("01b827ebb853c8"));
        // The reply is the server's, not the client's.
        assert_eq!(decode(&frames[1]), Ok(None));
    }

    /// Requests and replies in the other DHCP captures: each request's client, host name
    /// and parameter request list as tshark and tcpdump (dhcp-rfc4388.out,
    /// dhcp-option-33.out) decode them; replies are the server's, not facts.
    #[test]
    fn option_captures_give_what_tshark_and_tcpdump_show() {
        type Want = (
            usize,
            Option<(&'static str, Option<&'static str>, &'static [u8])>,
        );
        let rfc4388_prl: &[u8] = &[1, 28, 2, 121, 15, 6, 12, 40, 41, 42, 26, 119, 3];
        let feanor_prl: &[u8] = &[1, 3, 6, 15, 119, 95, 252, 44, 46];
        let cases: [(&str, Vec<Want>); 5] = [
            (
                "tcpdump/dhcp-rfc3004.pcap",
                vec![
                    (
                        0,
                        Some(("00:0c:29:1f:74:06", None, &[1, 28, 2, 3, 15, 6, 12])),
                    ),
                    (1, None),
                    (
                        2,
                        Some(("00:0c:29:1f:74:06", None, &[1, 28, 2, 3, 15, 6, 12])),
                    ),
                    (3, None),
                ],
            ),
            (
                "charrua/dhcp.pcap",
                vec![
                    (0, Some(("68:5b:35:aa:29:16", Some("feanor"), feanor_prl))),
                    (1, Some(("68:5b:35:aa:29:16", Some("feanor"), feanor_prl))),
                    (2, None),
                ],
            ),
            (
                "charrua/dhcp2.pcap",
                vec![
                    (0, Some(("00:0b:82:01:fc:42", None, &[1, 3, 6, 42]))),
                    (1, None),
                    (2, Some(("00:0b:82:01:fc:42", None, &[1, 3, 6, 42]))),
                    (3, None),
                ],
            ),
            (
                "tcpdump/dhcp-rfc4388.pcap",
                vec![
                    (0, Some(("5a:4f:34:b1:af:66", None, rfc4388_prl))),
                    (2, None),
                    (3, Some(("5a:4f:34:b1:af:66", None, rfc4388_prl))),
                    (4, None),
                    // A leasequery: a request without a parameter list.
                    (8, Some(("5a:4f:34:b1:af:66", None, &[]))),
                    (9, None),
                ],
            ),
            (
                "tcpdump/dhcp-option-33.pcap",
                (0..4).map(|i| (i, None)).collect(),
            ),
        ];
        for (path, wants) in cases {
            let frames = fixture(path);
            for (i, want) in wants {
                let got = decode(&frames[i]).unwrap_or_else(|e| panic!("{path} #{i}: {e}"));
                let got = got.map(|f| {
                    (
                        f.client_mac.to_string(),
                        f.hostname,
                        f.parameter_request_list,
                    )
                });
                let want = want.map(|(m, h, p)| (m.to_string(), h.map(str::to_string), p.to_vec()));
                assert_eq!(got, want, "{path} frame {}", i + 1);
            }
        }
    }

    #[test]
    fn the_fuzzed_capture_decodes_without_panicking() {
        let frames = fixture("ndpi/dhcp-fuzz.pcapng");
        for f in &frames {
            // tshark calls it malformed (an unknown message type); structurally it is a
            // request, and whatever it says stays bounded.
            if let Ok(Some(facts)) = decode(f) {
                assert!(facts.hostname.is_none_or(|h| h.chars().count() <= 255));
            }
        }
    }

    /// Mutated real requests: never a panic, text always bounded, errors say why.
    #[test]
    fn mutated_requests_never_panic() {
        let frames = fixture("tcpdump/dhcp-mud.pcap");
        let mut rng = fastrand::Rng::with_seed(161);
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..20_000 {
            let mut f = frames[0].clone();
            for _ in 0..rng.usize(1..6) {
                if f.len() <= 43 {
                    break;
                }
                match rng.u8(0..3) {
                    0 => {
                        let i = rng.usize(42..f.len());
                        f[i] = rng.u8(..);
                    }
                    1 => f.truncate(rng.usize(42..f.len())),
                    _ => {
                        let i = rng.usize(42..f.len());
                        f.splice(i..i, (0..rng.usize(1..300)).map(|_| rng.u8(..)));
                    }
                }
            }
            match decode(&f) {
                Ok(Some(facts)) => {
                    ok += 1;
                    for t in [&facts.hostname, &facts.vendor_class, &facts.mud_url]
                        .into_iter()
                        .flatten()
                    {
                        assert!(t.chars().count() <= 255 && !t.chars().any(char::is_control));
                    }
                }
                Ok(None) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    bad += 1;
                }
            }
        }
        assert!(
            ok > 0 && bad > 0,
            "both outcomes occur: ok {ok}, errors {bad}"
        );
    }

    #[test]
    fn a_vendor_class_is_a_model_unless_it_names_the_client() {
        assert_eq!(vendor_class_model("udhcp 1.36.1"), None);
        assert_eq!(
            vendor_class_model("dhcpcd-6.11.5:Linux-4.1.18-v7+:armv7l:BCM2709"),
            None
        );
        assert_eq!(vendor_class_model("MSFT 5.0"), None);
        assert_eq!(vendor_class_model("android-dhcp-13"), None);
        assert_eq!(vendor_class_model("PXEClient:Arch:00000:UNDI:002001"), None);
        assert_eq!(vendor_class_model("  "), None);
        assert_eq!(
            vendor_class_model("Cisco Systems, Inc. IP Phone CP-8841"),
            Some("Cisco Systems, Inc. IP Phone CP-8841")
        );
    }
}
