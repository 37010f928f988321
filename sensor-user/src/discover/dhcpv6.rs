//! DHCPv6: what a client says in its requests (RFC 8415): vendor class, MUD URL
//! (option 112, RFC 8520), FQDN, the options it asks for. Relayed messages are unwrapped
//! (bounded depth). Options are (16-bit code, 16-bit length) TLVs, parsed by hand.

use sensor_common::MacAddr;

use super::{DecodeError, text};

const RELAY_FORW: u8 = 12;
/// Messages a client sends: solicit, request, confirm, renew, rebind, release, decline,
/// information-request.
const CLIENT_MESSAGES: [u8; 8] = [1, 3, 4, 5, 6, 8, 9, 11];
const OPT_CLIENTID: u16 = 1;
const OPT_ORO: u16 = 6;
const OPT_RELAY_MSG: u16 = 9;
const OPT_VENDOR_CLASS: u16 = 16;
const OPT_CLIENT_FQDN: u16 = 39;
const OPT_MUD_URL: u16 = 112;
/// Relays nest at most 32 deep (RFC 8415 HOP_COUNT_LIMIT is 8; be generous, stay bounded).
const MAX_DEPTH: usize = 32;

/// The facts of one client message.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Dhcpv6Facts {
    /// Vendor class (option 16): enterprise number and the first data item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_class: Option<String>,
    /// Enterprise number of the vendor class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<u32>,
    /// MUD URL (option 112).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mud_url: Option<String>,
    /// Client FQDN (option 39), when it carries a name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// Option request list (option 6), in order: a fingerprint like DHCPv4's option 55.
    pub option_request_list: Vec<u16>,
    /// Client DUID, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duid: Option<String>,
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::new("dhcpv6", why)
}

/// Decodes a message sent to a DHCPv6 server or relay. Returns the client's MAC (from a
/// link-layer DUID, or a relay's EUI-64 peer address, else the frame's sender) and the facts;
/// `Ok(None)` for server messages.
pub fn decode(src_mac: MacAddr, m: &[u8]) -> Result<Option<(MacAddr, Dhcpv6Facts)>, DecodeError> {
    let mut msg = m;
    let mut mac = src_mac;
    for _ in 0..MAX_DEPTH {
        let (&kind, rest) = msg
            .split_first()
            .ok_or_else(|| malformed("empty message"))?;
        if kind == RELAY_FORW {
            // hop count (1), link address (16), peer address (16), options.
            let peer = rest
                .get(17..33)
                .ok_or_else(|| malformed("short relay header"))?;
            if let Some(m) = eui64_mac(peer) {
                mac = m;
            }
            msg = options(&rest[33..])?
                .find(|(code, _)| *code == OPT_RELAY_MSG)
                .map(|(_, v)| v)
                .ok_or_else(|| malformed("relay message without a relayed message"))?;
            continue;
        }
        if !CLIENT_MESSAGES.contains(&kind) {
            return Ok(None);
        }
        let opts = rest.get(3..).ok_or_else(|| malformed("short header"))?;
        let mut f = Dhcpv6Facts::default();
        for (code, v) in options(opts)? {
            match code {
                OPT_CLIENTID if f.duid.is_none() => {
                    f.duid = Some(v.iter().take(64).map(|b| format!("{b:02x}")).collect());
                    if let Some(m) = duid_mac(v) {
                        mac = m;
                    }
                }
                OPT_ORO if f.option_request_list.is_empty() => {
                    f.option_request_list = v
                        .as_chunks::<2>()
                        .0
                        .iter()
                        .take(64)
                        .map(|c| u16::from_be_bytes(*c))
                        .collect();
                }
                OPT_VENDOR_CLASS if f.vendor_class.is_none() && v.len() >= 6 => {
                    f.enterprise = Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
                    let n = u16::from_be_bytes([v[4], v[5]]) as usize;
                    f.vendor_class = Some(text(v.get(6..6 + n).unwrap_or(&v[6..])));
                }
                OPT_CLIENT_FQDN if f.fqdn.is_none() && v.len() > 1 => {
                    let name = dns_labels(&v[1..]);
                    if !name.is_empty() {
                        f.fqdn = Some(name);
                    }
                }
                OPT_MUD_URL if f.mud_url.is_none() => f.mud_url = Some(text(v)),
                _ => {}
            }
        }
        return Ok(Some((mac, f)));
    }
    Err(malformed("relay messages nested too deep"))
}

/// The options of a message, each checked against the bytes there are.
fn options(mut p: &[u8]) -> Result<impl Iterator<Item = (u16, &[u8])>, DecodeError> {
    let mut out = Vec::new();
    while !p.is_empty() {
        let (Some(code), Some(len)) = (p.get(0..2), p.get(2..4)) else {
            return Err(malformed("option header cut short"));
        };
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let v = p
            .get(4..4 + len)
            .ok_or_else(|| malformed("option longer than the message"))?;
        out.push((u16::from_be_bytes([code[0], code[1]]), v));
        p = &p[4 + len..];
    }
    Ok(out.into_iter())
}

/// The MAC in a DUID-LLT (type 1) or DUID-LL (type 3) of an Ethernet interface.
fn duid_mac(d: &[u8]) -> Option<MacAddr> {
    let kind = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
    let hw = u16::from_be_bytes([*d.get(2)?, *d.get(3)?]);
    let lladdr = match kind {
        1 => d.get(8..)?,
        3 => d.get(4..)?,
        _ => return None,
    };
    (hw == 1 && lladdr.len() == 6).then(|| lladdr.try_into().expect("6 bytes"))
}

/// The MAC inside a modified EUI-64 interface identifier (`...:xxff:fexx:...`).
fn eui64_mac(a: &[u8]) -> Option<MacAddr> {
    let id = a.get(8..16)?;
    (id[3] == 0xff && id[4] == 0xfe)
        .then(|| MacAddr([id[0] ^ 0x02, id[1], id[2], id[5], id[6], id[7]]))
}

/// A DNS wire-format name (no compression in this option) as dotted text.
fn dns_labels(mut p: &[u8]) -> String {
    let mut labels = Vec::new();
    while let Some((&n, rest)) = p.split_first() {
        if n == 0 || n as usize > rest.len() || labels.len() > 32 {
            break;
        }
        labels.push(text(&rest[..n as usize]));
        p = &rest[n as usize..];
    }
    text(labels.join(".").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, decode as decode_frame};
    use crate::testdata::frames as fixture;

    /// The values tcpdump prints for the same capture (dhcpv6-mud.out): a relayed solicit.
    #[test]
    fn relayed_solicit_with_a_mud_url() {
        let frames = fixture("tcpdump/dhcpv6-mud.pcap");
        let d = decode_frame(&frames[0]).unwrap().unwrap();
        assert_eq!(
            d.mac,
            [0xb8, 0x27, 0xeb, 0xb8, 0x53, 0xc8],
            "client, not relay"
        );
        let Facts::Dhcpv6(f) = d.facts else {
            panic!("not DHCPv6: {:?}", d.facts)
        };
        assert_eq!(
            f.mud_url.as_deref(),
            Some("https://mudctl.example.com/.well-known/mud/v1/rasbp101")
        );
        assert_eq!(f.enterprise, Some(40712));
        assert_eq!(
            f.vendor_class.as_deref(),
            Some("dhcpcd-6.11.5:Linux-4.1.18-v7+:armv7l:BCM2709")
        );
        // DNS-server DNS-search-list SNTP-servers Client-FQDN opt_82 opt_83
        assert_eq!(f.option_request_list, [23, 24, 31, 39, 82, 83]);
        // hwaddr/time type 1 time 509769483 (0x1e62770b) b827ebb853c8
        assert_eq!(f.duid.as_deref(), Some("000100011e62770bb827ebb853c8"));
    }

    #[test]
    fn server_messages_are_not_client_facts() {
        // ADVERTISE (2), no options.
        assert_eq!(decode(MacAddr([0; 6]), &[2, 0, 0, 1]), Ok(None));
    }

    #[test]
    fn mutated_messages_never_panic() {
        let frames = fixture("tcpdump/dhcpv6-mud.pcap");
        let mut rng = fastrand::Rng::with_seed(112);
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..20_000 {
            let m = crate::discover::mutate(&mut rng, &frames[0], 62);
            match decode_frame(&m) {
                Ok(Some(d)) => {
                    ok += 1;
                    if let Facts::Dhcpv6(f) = d.facts {
                        for t in [&f.vendor_class, &f.mud_url, &f.fqdn].into_iter().flatten() {
                            crate::discover::assert_safe(t);
                        }
                    }
                }
                Ok(None) => ok += 1,
                Err(_) => bad += 1,
            }
        }
        assert!(ok > 0 && bad > 0, "ok {ok}, errors {bad}");
    }
}
