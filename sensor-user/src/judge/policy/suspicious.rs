//! Services no IoT device should use: a flow to one of them while the device is learning
//! is alerted (`suspicious_service`) and never learned, so a bot already running when
//! learning starts does not become the baseline. A documented built-in list the user can
//! extend (`[baseline] suspicious_ports`) or switch off (`suspicious_builtin = false`).

use std::ops::RangeInclusive;

use sensor_common::proto;

/// One service: protocol, destination ports, and its name in alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// IP protocol number.
    pub proto: u8,
    /// Destination ports.
    pub ports: RangeInclusive<u16>,
    /// What it is (`irc`, `telnet`, ...), in the alert's metadata.
    pub name: String,
}

/// The built-in list: (protocol, first port, last port, name). Sources: IANA's Service
/// Name and Transport Protocol Port Number Registry (telnet 23, smtp 25, submissions 465,
/// submission 587, ircu 6665-6669, ircs-u 6697), Mirai's scanner and telnet loader on
/// 2323 (Antonakakis et al., "Understanding the Mirai Botnet", USENIX Security 2017), IRC
/// botnets' 6660-6669 (the same range IRC networks serve), Tor's default ORPort 9001 and
/// DirPort 9030 (tor(1), torrc `ORPort`/`DirPort` examples), and the stratum ports mining
/// pools publish for their miners (3333, 4444, 5555, 7777, 14444, 14433: the ports of
/// the pools' own connection guides, e.g. MoneroOcean, SupportXMR, NiceHash).
const BUILTIN: [(u8, u16, u16, &str); 13] = [
    (proto::TCP, 23, 23, "telnet"),
    (proto::TCP, 2323, 2323, "telnet"),
    (proto::TCP, 25, 25, "smtp"),
    (proto::TCP, 465, 465, "smtp"),
    (proto::TCP, 587, 587, "smtp"),
    (proto::TCP, 6660, 6669, "irc"),
    (proto::TCP, 6697, 6697, "irc"),
    (proto::TCP, 9001, 9001, "tor"),
    (proto::TCP, 9030, 9030, "tor"),
    (proto::TCP, 3333, 3333, "stratum"),
    (proto::TCP, 4444, 4444, "stratum"),
    (proto::TCP, 5555, 5555, "stratum"),
    (proto::TCP, 14433, 14444, "stratum"),
];

/// The services in force.
#[derive(Clone, Debug, Default)]
pub struct Suspicious {
    services: Vec<Service>,
    builtin: bool,
}

/// Services the first payload can show, by what no IoT device should do: bots' command
/// channels (IRC), mining (Stratum) and Tor, on any destination and in both phases; and
/// remote logins, mail out and TLS to a nameless server on a port not TLS's (telnet,
/// SSH, SMTP, `tls-no-sni`), which a learning device must not make its normal on an
/// outside address.
const ALWAYS: [&str; 3] = ["irc", "stratum", "tor"];
const NOT_LEARNED: [&str; 4] = ["telnet", "ssh", "smtp", "tls-no-sni"];

impl Suspicious {
    /// The built-in list (when `builtin`) and the user's entries (`tcp:8333`,
    /// `udp:5000-5010`, checked when the configuration is parsed; an entry that does not
    /// parse here is skipped).
    pub fn new(builtin: bool, extra: &[String]) -> Self {
        let mut services: Vec<Service> = if builtin {
            BUILTIN
                .iter()
                .map(|(p, a, b, n)| Service {
                    proto: *p,
                    ports: *a..=*b,
                    name: (*n).to_string(),
                })
                .collect()
        } else {
            Vec::new()
        };
        services.extend(extra.iter().filter_map(|e| parse(e).ok()));
        Self { services, builtin }
    }

    /// Whether a flow whose first payload shows `service` is alerted: `learning`, the
    /// device is learning; `local`, the destination is on the LAN. Part of the built-in
    /// list, so off with it.
    pub fn by_payload(&self, service: &str, learning: bool, local: bool) -> bool {
        self.builtin
            && (ALWAYS.contains(&service) || (learning && !local && NOT_LEARNED.contains(&service)))
    }

    /// The service a destination port is, if it is one of them.
    pub fn matches(&self, proto: u8, port: u16) -> Option<&str> {
        self.services
            .iter()
            .find(|s| s.proto == proto && s.ports.contains(&port))
            .map(|s| s.name.as_str())
    }
}

/// `tcp:8333` or `udp:5000-5010` (named after the entry itself in alerts).
pub fn parse(entry: &str) -> Result<Service, String> {
    let why = || format!("{entry:?} is not a service like \"tcp:8333\" or \"udp:5000-5010\"");
    let (p, ports) = entry.split_once(':').ok_or_else(why)?;
    let proto = match p.to_ascii_lowercase().as_str() {
        "tcp" => proto::TCP,
        "udp" => proto::UDP,
        _ => return Err(why()),
    };
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (a, b),
        None => (ports, ports),
    };
    let (a, b): (u16, u16) = (a.parse().map_err(|_| why())?, b.parse().map_err(|_| why())?);
    if a == 0 || a > b {
        return Err(why());
    }
    Ok(Service {
        proto,
        ports: a..=b,
        name: entry.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_the_payload_shows() {
        let s = Suspicious::new(true, &[]);
        assert!(s.by_payload("irc", false, true), "IRC anywhere, any time");
        assert!(s.by_payload("tor", false, false));
        assert!(s.by_payload("ssh", true, false), "SSH out while learning");
        assert!(
            !s.by_payload("ssh", false, false),
            "after learning the policy says it"
        );
        assert!(!s.by_payload("telnet", true, true), "a LAN login");
        assert!(!s.by_payload("tls", true, false));
        assert!(
            s.by_payload("tls-no-sni", true, false),
            "a nameless channel while learning"
        );
        assert!(!s.by_payload("tls-no-sni", false, false));
        assert!(!Suspicious::new(false, &[]).by_payload("irc", true, false));
    }

    #[test]
    fn the_builtin_list_and_user_entries() {
        let s = Suspicious::new(true, &["tcp:8333".into(), "udp:5000-5010".into()]);
        assert_eq!(s.matches(proto::TCP, 6667), Some("irc"));
        assert_eq!(s.matches(proto::TCP, 23), Some("telnet"));
        assert_eq!(s.matches(proto::TCP, 2323), Some("telnet"));
        assert_eq!(s.matches(proto::TCP, 3333), Some("stratum"));
        assert_eq!(s.matches(proto::TCP, 8333), Some("tcp:8333"));
        assert_eq!(s.matches(proto::UDP, 5005), Some("udp:5000-5010"));
        assert_eq!(s.matches(proto::UDP, 6667), None, "by protocol too");
        assert_eq!(s.matches(proto::TCP, 443), None);
        assert_eq!(
            s.matches(proto::TCP, 8883),
            None,
            "MQTT over TLS is ordinary"
        );
        let off = Suspicious::new(false, &[]);
        assert_eq!(off.matches(proto::TCP, 6667), None);
    }

    #[test]
    fn bad_entries_say_what_is_expected() {
        for e in ["8333", "icmp:1", "tcp:0", "tcp:10-5", "tcp:x", "tcp:70000"] {
            let err = parse(e).unwrap_err();
            assert!(err.contains("tcp:8333"), "{e}: {err}");
        }
    }
}
