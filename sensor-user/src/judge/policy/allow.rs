//! Allow entries: a destination (IP, CIDR, domain, or `*.` wildcard domain) with an
//! optional `:port` and `/tcp`, `/udp` or `/icmp`, as `[[policy]] allow` and MUD files
//! give them, and as `baseline export` writes them.

use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;
use sensor_common::proto;

/// Where an allow entry points.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dest {
    /// An address or prefix.
    Net(IpNet),
    /// A DNS name, lower case, no trailing dot.
    Domain(String),
    /// Every name under a suffix (`*.example.com`: `a.example.com`, not `example.com`).
    Wildcard(String),
}

/// One allow entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllowRule {
    /// The destination.
    pub dest: Dest,
    /// Destination port; any when absent.
    pub port: Option<u16>,
    /// IP protocol; any when absent.
    pub proto: Option<u8>,
}

impl Dest {
    /// Whether a name the device resolved falls under this entry.
    pub fn matches_name(&self, name: &str) -> bool {
        match self {
            Dest::Domain(d) => d == name,
            Dest::Wildcard(suffix) => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix.as_str())
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            }
            Dest::Net(_) => false,
        }
    }

    /// Whether `name` is in the same registered domain (the label under a public suffix,
    /// from the Public Suffix List: `vendor.co.uk` for `eu.api.vendor.co.uk`) as this
    /// entry's name. Wider than the entry: anyone who can get a name under that domain
    /// (a cloud provider's customers, for a provider's domain) is allowed too.
    pub fn same_registered_domain(&self, name: &str) -> bool {
        let own = match self {
            Dest::Domain(d) | Dest::Wildcard(d) => d,
            Dest::Net(_) => return false,
        };
        match (psl::domain_str(own), psl::domain_str(name)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

impl AllowRule {
    /// Whether it allows `port` over `proto`.
    pub fn allows_port(&self, port: u16, proto: u8) -> bool {
        self.proto.is_none_or(|p| p == proto) && self.port.is_none_or(|p| p == port)
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dest {
            Dest::Net(n) if n.prefix_len() == n.max_prefix_len() => write!(f, "{}", n.addr())?,
            Dest::Net(n) => write!(f, "{n}")?,
            Dest::Domain(d) => write!(f, "{d}")?,
            Dest::Wildcard(d) => write!(f, "*.{d}")?,
        }
        if let Some(p) = self.port {
            // A bare IPv6 address with a port is ambiguous; brackets say which is which.
            if matches!(&self.dest, Dest::Net(n) if n.addr().is_ipv6() && n.prefix_len() == 128) {
                return write!(f, " port {p}{}", proto_suffix(self.proto));
            }
            write!(f, ":{p}")?;
        }
        write!(f, "{}", proto_suffix(self.proto))
    }
}

fn proto_suffix(p: Option<u8>) -> String {
    match p {
        None => String::new(),
        Some(proto::TCP) => "/tcp".into(),
        Some(proto::UDP) => "/udp".into(),
        Some(proto::ICMP) | Some(proto::ICMPV6) => "/icmp".into(),
        Some(n) => format!("/{n}"),
    }
}

/// Why an allow entry does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{entry:?} is not an allow entry ({why}); write an IP, a CIDR, a domain or *.domain, then optionally :port and /tcp, /udp or /icmp"
)]
pub struct AllowError {
    entry: String,
    why: String,
}

impl FromStr for AllowRule {
    type Err = AllowError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| AllowError {
            entry: s.to_string(),
            why: why.to_string(),
        };
        let t = s.trim();
        let (rest, proto) = match t.rsplit_once('/') {
            Some((r, "tcp")) => (r, Some(proto::TCP)),
            Some((r, "udp")) => (r, Some(proto::UDP)),
            Some((r, "icmp")) => (r, Some(proto::ICMP)),
            _ => (t, None),
        };
        // "[2001:db8::1]:443" or "host:443"; a bare IPv6 address has many colons.
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner.split_once(']').ok_or_else(|| err("unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(err("text after ]")),
            };
            (h, port)
        } else if rest.matches(':').count() == 1 {
            let (h, p) = rest.split_once(':').expect("one colon");
            (h, Some(p))
        } else {
            (rest, None)
        };
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| err("port is not 1-65535"))?,
            ),
            None => None,
        };
        if host.is_empty() {
            return Err(err("no destination"));
        }
        let dest = if let Ok(n) = host.parse::<IpNet>() {
            Dest::Net(n.trunc())
        } else if let Ok(a) = host.parse::<IpAddr>() {
            Dest::Net(IpNet::from(a))
        } else {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            let (wild, name) = match name.strip_prefix("*.") {
                Some(n) => (true, n.to_string()),
                None => (false, name),
            };
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            if !valid {
                return Err(err("not an address, prefix or DNS name"));
            }
            if wild {
                Dest::Wildcard(name)
            } else {
                Dest::Domain(name)
            }
        };
        Ok(AllowRule { dest, port, proto })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AllowRule {
        s.parse().unwrap()
    }

    #[test]
    fn every_form_in_the_design_parses_and_prints_back() {
        for s in [
            "cloud.example.com:443/tcp",
            "*.ntp.example.org:123/udp",
            "198.51.100.0/24",
            "203.0.113.7",
            "2001:db8::/32",
            "198.51.100.1/icmp",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(
            p("[2001:db8::7]:443/tcp").to_string(),
            "2001:db8::7 port 443/tcp"
        );
        let r = p("cloud.example.com:443/tcp");
        assert_eq!(
            (r.dest, r.port, r.proto),
            (Dest::Domain("cloud.example.com".into()), Some(443), Some(6))
        );
        assert_eq!(p("[2001:db8::7]:443/tcp").port, Some(443));
        assert_eq!(p("2001:db8::7").port, None);
        assert_eq!(
            p("198.51.100.7/24").to_string(),
            "198.51.100.0/24",
            "host bits cleared"
        );
    }

    #[test]
    fn wildcards_match_names_under_them_only() {
        let w = p("*.ntp.example.org").dest;
        assert!(w.matches_name("a.ntp.example.org"));
        assert!(w.matches_name("x.y.ntp.example.org"));
        assert!(!w.matches_name("ntp.example.org"));
        assert!(!w.matches_name("badntp.example.org"));
    }

    #[test]
    fn bad_entries_say_why() {
        for s in [
            "",
            "cloud.example.com:0",
            "cloud.example.com:99999",
            "exa mple.com",
            "[2001:db8::1",
        ] {
            assert!(s.parse::<AllowRule>().is_err(), "{s:?}");
        }
        let e = "a..b".parse::<AllowRule>().unwrap_err().to_string();
        assert!(e.contains("not an address, prefix or DNS name"), "{e}");
    }
}
