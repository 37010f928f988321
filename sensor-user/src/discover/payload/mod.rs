//! What a flow's first payload says about the software at either end: a TLS ClientHello
//! ([`tls`]), an HTTP/1.x request or response head ([`http`]), or a greeting or head of a
//! plain-text protocol ([`banner`]: SSH, FTP, SMTP, POP3, IMAP, telnet, RTSP, SIP;
//! [`irc`]; [`stratum`], miners and pools).
//!
//! [`decode`] recognises the protocol from the bytes themselves, since devices run
//! services on any port; a port is only a tie-breaker where the bytes cannot tell (a
//! `220` greeting is FTP's and SMTP's). Every decoder is a pure function of the bytes,
//! looks at no more than [`MAX_PAYLOAD`] of them, and keeps only the facts its type
//! names, as bounded text: never the raw bytes, a path or query string, a cookie, a
//! credential or a body.

pub mod banner;
pub mod http;
pub mod irc;
pub mod stratum;
pub mod tls;

use super::DecodeError;

/// Bytes of a payload a decoder looks at: a ClientHello with post-quantum key shares
/// fits, and a hostile sample cannot make a decoder walk more.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// Longest list a decoder keeps (ALPN names, versions, telnet options).
pub const MAX_LIST: usize = 16;

/// What the bytes alone cannot tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hint {
    /// The server's port, when known.
    pub server_port: Option<u16>,
}

/// What one flow's first payload says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PayloadFacts {
    /// A TLS ClientHello.
    Tls(tls::TlsFacts),
    /// An HTTP/1.x request head.
    HttpRequest(http::HttpRequest),
    /// An HTTP/1.x response head.
    HttpResponse(http::HttpResponse),
    /// A greeting or request/response head of a plain-text protocol.
    Banner(banner::Banner),
}

impl PayloadFacts {
    /// The protocol the bytes speak (`tls`, `http`, `ssh`, `irc`, ...), whatever the port.
    pub fn protocol(&self) -> &'static str {
        match self {
            PayloadFacts::Tls(_) => "tls",
            PayloadFacts::HttpRequest(_) | PayloadFacts::HttpResponse(_) => "http",
            PayloadFacts::Banner(b) => b.protocol.name(),
        }
    }

    /// The service the flow is: its [`protocol`](Self::protocol), except that a TLS
    /// client asking for a name shaped like Tor's made-up ones is `tor` when no DNS answer
    /// gave the device the address (`resolved` false): Tor relays are reached by address
    /// and the name is never looked up ([`tls::tor_like`]).
    pub fn service(&self, resolved: bool) -> &'static str {
        match self {
            PayloadFacts::Tls(t) if !resolved && t.sni.as_deref().is_some_and(tls::tor_like) => {
                "tor"
            }
            _ => self.protocol(),
        }
    }

    /// What the baseline weighs of a flow going out to `port`: its
    /// [`service`](Self::service), except that a TLS client naming no server, to an
    /// address no DNS answer gave (`resolved` false), on a port not registered for TLS
    /// (`tls_port` false) is `tls-no-sni`: an encrypted channel to a server that has
    /// neither a name nor TLS's port, as implants and RATs open to their operators.
    /// Device clouds have names; on the captures here every hello without one went to
    /// 443.
    pub fn weighed_service(&self, resolved: bool, tls_port: bool) -> &'static str {
        match self {
            PayloadFacts::Tls(t) if !resolved && !tls_port && t.sni.is_none() => "tls-no-sni",
            _ => self.service(resolved),
        }
    }

    /// Whether the flow is a login: `Some(true)` for a service one logs in to (SSH,
    /// telnet, FTP, POP3, IMAP, HTTP or RTSP carrying credentials, and SIP's
    /// registrations and their challenges and refusals), `Some(false)`
    /// for one the bytes show is something else, `None` when they cannot tell (TLS hides
    /// what runs inside).
    pub fn is_login(&self) -> Option<bool> {
        use banner::Protocol as P;
        match self {
            PayloadFacts::Tls(_) => None,
            PayloadFacts::HttpRequest(r) => Some(r.auth.is_some()),
            PayloadFacts::HttpResponse(r) => Some(r.auth.is_some()),
            PayloadFacts::Banner(b) => Some(match b.protocol {
                P::Ssh | P::Telnet | P::Ftp | P::FtpOrSmtp | P::Pop3 | P::Imap => true,
                P::Rtsp => b.auth.is_some(),
                // A registration is SIP's login (RFC 3261 10.2, challenged as in 22.1).
                P::Sip => {
                    b.auth.is_some()
                        || b.method.as_deref() == Some("REGISTER")
                        || matches!(b.status, Some(401 | 403 | 407))
                }
                P::Smtp | P::Irc | P::Stratum => false,
            }),
        }
    }
}

/// Decodes a flow's first payload. `Ok(None)` when no decoder recognises it; an error
/// when one does but the bytes are malformed.
pub fn decode(payload: &[u8], hint: Hint) -> Result<Option<PayloadFacts>, DecodeError> {
    let p = &payload[..payload.len().min(MAX_PAYLOAD)];
    if tls::looks_like(p) {
        return tls::decode(p).map(|f| f.map(PayloadFacts::Tls));
    }
    match http::version_of(p) {
        Some(http::Head::Request) => {
            return http::decode_request(p).map(|r| Some(PayloadFacts::HttpRequest(r)));
        }
        Some(http::Head::Response) => {
            return http::decode_response(p).map(|r| Some(PayloadFacts::HttpResponse(r)));
        }
        None => {}
    }
    let line = match banner::decode(p, hint)? {
        Some(b) => Some(b),
        None => stratum::decode(p, hint).or_else(|| irc::decode(p, hint)),
    };
    Ok(line.map(PayloadFacts::Banner))
}

/// The lines of a text head: up to [`MAX_LIST`] * 4 of them, each without its line end,
/// stopping at the blank line. The last one is dropped when cut short, since a header
/// cut in its value would be kept wrong.
pub(crate) fn head_lines(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    let complete = p.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    p[..complete]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .take(MAX_LIST * 4)
}

/// Authentication schemes kept by name (IANA's HTTP Authentication Scheme Registry, plus
/// NTLM); anything else is `other`, so a bare token that is itself a credential is never
/// kept.
const AUTH_SCHEMES: [&str; 10] = [
    "Basic",
    "Bearer",
    "Digest",
    "HOBA",
    "Mutual",
    "Negotiate",
    "NTLM",
    "OAuth",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
];

/// The scheme of an `Authorization` or `WWW-Authenticate` value ("Basic", "Digest").
pub(crate) fn auth_scheme(value: &[u8]) -> &'static str {
    let token = value
        .split(|b| b.is_ascii_whitespace() || *b == b',')
        .find(|t| !t.is_empty())
        .unwrap_or(b"");
    AUTH_SCHEMES
        .iter()
        .find(|s| s.as_bytes().eq_ignore_ascii_case(token))
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::mutate;
    use crate::testdata::payloads;

    /// Captures whose payloads the decoders are tested on, and what each should find.
    const CAPTURES: [&str; 7] = [
        "attacks-dev/arkime/ssh2.pcap",
        "attacks-dev/arkime/ftp.pcap",
        "attacks-dev/initconf-ftp-bruteforce/1-session.pcap",
        "attacks-dev/corelight-zeek-caldera-detector/ragdoll.pcap",
        "attacks-dev/faucetsdn-networkml/IOT1-test-slice.pcap",
        "attacks-dev/faucetsdn-networkml/Two-IOT161012-node5-slice.pcap",
        "attacks-dev/initconf-sip-attacks/SIP-Bruteforce-Single-IP-slice.pcap",
    ];

    /// Every string a decoder returns is bounded and printable, checked through serde so
    /// no field is forgotten.
    fn safe(f: &PayloadFacts) {
        fn walk(v: &serde_json::Value) {
            match v {
                serde_json::Value::String(s) => crate::discover::assert_safe(s),
                serde_json::Value::Array(a) => {
                    assert!(a.len() <= MAX_LIST, "list of {}", a.len());
                    a.iter().for_each(walk)
                }
                serde_json::Value::Object(o) => o.values().for_each(walk),
                _ => {}
            }
        }
        walk(&serde_json::to_value(f).expect("facts serialize"));
    }

    #[test]
    fn the_protocol_comes_from_the_bytes_not_the_port() {
        let on_80 = Hint {
            server_port: Some(80),
        };
        let ssh = decode(b"SSH-2.0-dropbear_2019.78\r\n", on_80).unwrap();
        assert!(
            matches!(ssh, Some(PayloadFacts::Banner(b)) if b.protocol == banner::Protocol::Ssh)
        );
        let http = decode(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Hint::default()).unwrap();
        assert!(matches!(http, Some(PayloadFacts::HttpRequest(_))));
        assert_eq!(decode(b"\x00\x01binary", on_80), Ok(None));
        assert_eq!(decode(b"", on_80), Ok(None));
    }

    #[test]
    fn tls_naming_no_server_off_its_port_by_address_is_weighed_apart() {
        let nameless = PayloadFacts::Tls(tls::TlsFacts::default());
        assert_eq!(nameless.weighed_service(false, false), "tls-no-sni");
        assert_eq!(nameless.weighed_service(false, true), "tls", "on 443");
        assert_eq!(
            nameless.weighed_service(true, false),
            "tls",
            "a resolved name"
        );
        let named = PayloadFacts::Tls(tls::TlsFacts {
            sni: Some("cloud.example.com".into()),
            ..tls::TlsFacts::default()
        });
        assert_eq!(named.weighed_service(false, false), "tls");
        assert_eq!(named.protocol(), "tls", "what flows say stays the protocol");
    }

    /// Real payloads and mutations of them: no panic, and what decodes is bounded text.
    #[test]
    fn mutated_capture_payloads_never_panic() {
        let mut rng = fastrand::Rng::with_seed(3117);
        let mut decoded = 0;
        for capture in CAPTURES {
            let all = payloads(capture);
            for p in all.iter().take(40) {
                let hint = Hint {
                    server_port: Some(p.dst_port.min(p.src_port)),
                };
                if let Ok(Some(f)) = decode(&p.data, hint) {
                    safe(&f);
                }
                for _ in 0..300 {
                    let m = mutate(&mut rng, &p.data, 0);
                    if let Ok(Some(f)) = decode(&m, hint) {
                        decoded += 1;
                        safe(&f);
                    }
                }
            }
        }
        assert!(decoded > 1000, "mutations mostly still decode: {decoded}");
    }

    #[test]
    fn auth_scheme_keeps_no_credential() {
        assert_eq!(auth_scheme(b"Basic dXNlcjpwYXNz"), "Basic");
        assert_eq!(auth_scheme(b"Digest username=\"10\",realm=\"x\""), "Digest");
        assert_eq!(auth_scheme(b"  Bearer\tabc"), "Bearer");
        assert_eq!(
            auth_scheme(b"dXNlcjpwYXNz=="),
            "other",
            "a bare token may be a secret"
        );
        assert_eq!(auth_scheme(b""), "other");
    }
}
