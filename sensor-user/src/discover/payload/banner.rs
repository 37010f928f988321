//! Greetings and heads of plain-text protocols, which often name the software and its
//! version: SSH identification strings (RFC 4253 section 4.2), FTP and SMTP `220`
//! greetings, POP3 `+OK` and IMAP `* OK` greetings, telnet option negotiation (RFC 854),
//! and RTSP and SIP first lines with their `User-Agent` and `Server` headers; IRC and
//! Stratum lines have files of their own.
//!
//! Kept: the protocol, the software and version strings, the greeting's text, the method
//! or status code, and the authentication scheme's name. Never kept: RTSP and SIP
//! request URIs (they may carry credentials), other headers, or anything a user types.
//! RTSP and SIP are parsed here because `httparse` accepts only HTTP versions.

use super::{DecodeError, Hint, MAX_LIST, auth_scheme, head_lines};
use crate::discover::text;

/// The protocol a banner belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// An SSH identification string.
    Ssh,
    /// An FTP `220` greeting.
    Ftp,
    /// An SMTP `220` greeting.
    Smtp,
    /// A `220` greeting that neither names its protocol nor came from a known port.
    FtpOrSmtp,
    /// A POP3 `+OK` greeting.
    Pop3,
    /// An IMAP `* OK` or `* PREAUTH` greeting.
    Imap,
    /// Telnet option negotiation.
    Telnet,
    /// An RTSP request or response head.
    Rtsp,
    /// A SIP request or response head.
    Sip,
    /// An IRC client's registration or a server's first words (`irc.rs`).
    Irc,
    /// A miner's or a mining pool's JSON-RPC line (`stratum.rs`).
    Stratum,
}

impl Protocol {
    /// Its name in a profile's `serves`, `speaks` and `banners`, and as a flow's service.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ssh => "ssh",
            Protocol::Ftp => "ftp",
            Protocol::Smtp => "smtp",
            Protocol::FtpOrSmtp => "ftp_or_smtp",
            Protocol::Pop3 => "pop3",
            Protocol::Imap => "imap",
            Protocol::Telnet => "telnet",
            Protocol::Rtsp => "rtsp",
            Protocol::Sip => "sip",
            Protocol::Irc => "irc",
            Protocol::Stratum => "stratum",
        }
    }
}

/// What a banner says; which fields are set depends on the protocol.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Banner {
    /// The protocol.
    pub protocol: Protocol,
    /// SSH: the protocol version (`2.0`, `1.99`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto_version: Option<String>,
    /// SSH: the software version (`OpenSSH_8.9p1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// SSH comments; the text of an FTP, SMTP, POP3 or IMAP greeting; the first text line
    /// a telnet server sends with its negotiation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// RTSP and SIP requests: the method; IRC: the first command; Stratum: the JSON-RPC
    /// method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// RTSP and SIP responses: the status code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// RTSP and SIP: the `User-Agent` header; Stratum: the miner's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// RTSP and SIP: the `Server` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// RTSP and SIP: the authentication scheme asked for or answered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Telnet: the options negotiated (WILL, WON'T, DO, DON'T), in order, at most
    /// [`MAX_LIST`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<u8>,
}

impl Banner {
    pub(super) fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            proto_version: None,
            software: None,
            text: None,
            method: None,
            status: None,
            user_agent: None,
            server: None,
            auth: None,
            options: Vec::new(),
        }
    }
}

const FTP_PORTS: [u16; 2] = [21, 2121];
const SMTP_PORTS: [u16; 4] = [25, 465, 587, 2525];

/// Telnet's interpret-as-command byte, and the commands around an option.
const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const DONT: u8 = 254;

fn malformed(protocol: &'static str, why: impl Into<String>) -> DecodeError {
    DecodeError::new(protocol, why)
}

/// The first line of `p`, without its line end; all of `p` (at most 255 bytes, SSH's
/// limit for a whole line) when it has none.
fn first_line(p: &[u8]) -> &[u8] {
    let end = p
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(p.len().min(255));
    let line = &p[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Decodes a banner. `Ok(None)` when `p` starts like none of the protocols here.
pub fn decode(p: &[u8], hint: Hint) -> Result<Option<Banner>, DecodeError> {
    if p.starts_with(b"SSH-") {
        return ssh(first_line(p)).map(Some);
    }
    if let [IAC, WILL..=DONT | SB, ..] = p {
        return Ok(Some(telnet(p)));
    }
    let line = first_line(p);
    if let Some(protocol) = head_protocol(line) {
        return head(protocol, p).map(Some);
    }
    let greeting = |protocol, rest: &[u8]| {
        let mut b = Banner::new(protocol);
        let rest = rest.trim_ascii();
        b.text = (!rest.is_empty()).then(|| text(rest));
        Ok(Some(b))
    };
    // A separator or the line's end after the code: `+OKAY` or `2200` is something else.
    let ends_word = |rest: &[u8]| rest.is_empty() || rest.starts_with(b" ");
    if let Some(rest) = line.strip_prefix(b"+OK")
        && ends_word(rest)
    {
        return greeting(Protocol::Pop3, rest);
    }
    for prefix in [&b"* OK"[..], b"* PREAUTH"] {
        if let Some(rest) = line.strip_prefix(prefix)
            && ends_word(rest)
        {
            return greeting(Protocol::Imap, rest);
        }
    }
    if let Some(rest) = line.strip_prefix(b"220")
        && (ends_word(rest) || rest.starts_with(b"-"))
    {
        let rest = &rest[rest.len().min(1)..];
        return greeting(greeting_protocol(rest, hint), rest);
    }
    Ok(None)
}

/// FTP or SMTP: what the greeting says, else the server's port.
fn greeting_protocol(rest: &[u8], hint: Hint) -> Protocol {
    let upper = rest.to_ascii_uppercase();
    let says = |w: &[u8]| upper.windows(w.len()).any(|x| x == w);
    if says(b"SMTP") {
        Protocol::Smtp
    } else if says(b"FTP") {
        Protocol::Ftp
    } else {
        match hint.server_port {
            Some(p) if FTP_PORTS.contains(&p) => Protocol::Ftp,
            Some(p) if SMTP_PORTS.contains(&p) => Protocol::Smtp,
            _ => Protocol::FtpOrSmtp,
        }
    }
}

/// `SSH-protoversion-softwareversion SP comments`.
fn ssh(line: &[u8]) -> Result<Banner, DecodeError> {
    let rest = &line[b"SSH-".len()..];
    let dash = rest
        .iter()
        .position(|&b| b == b'-')
        .ok_or_else(|| malformed("ssh", "no software version"))?;
    let (proto, rest) = (&rest[..dash], &rest[dash + 1..]);
    let (software, comments) = match rest.iter().position(|&b| b == b' ') {
        Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
        None => (rest, None),
    };
    if proto.is_empty() || software.is_empty() {
        return Err(malformed("ssh", "empty protocol or software version"));
    }
    let mut b = Banner::new(Protocol::Ssh);
    b.proto_version = Some(text(proto));
    b.software = Some(text(software));
    b.text = comments.filter(|c| !c.is_empty()).map(text);
    Ok(b)
}

/// Telnet: the options of WILL, WON'T, DO and DON'T commands in order; subnegotiations
/// skipped; the first line of text among them.
fn telnet(p: &[u8]) -> Banner {
    let mut b = Banner::new(Protocol::Telnet);
    let mut plain = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i..] {
            [IAC, IAC, ..] => {
                plain.push(IAC);
                i += 2;
            }
            [IAC, WILL..=DONT, option, ..] => {
                if b.options.len() < MAX_LIST {
                    b.options.push(option);
                }
                i += 3;
            }
            [IAC, SB, ..] => {
                // To the IAC SE that closes it, or the end.
                let end = p[i..]
                    .windows(2)
                    .position(|w| w == [IAC, SE])
                    .map_or(p.len(), |at| i + at + 2);
                i = end;
            }
            [IAC, ..] => i += 2,
            [c, ..] => {
                plain.push(c);
                i += 1;
            }
            [] => break,
        }
    }
    b.text = plain
        .split(|&c| c == b'\n' || c == b'\r' || c == 0)
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty())
        .map(text);
    b
}

/// RTSP or SIP, by the version a request line ends with or a status line starts with.
fn head_protocol(line: &[u8]) -> Option<Protocol> {
    for (protocol, version) in [
        (Protocol::Rtsp, &b"RTSP/1."[..]),
        (Protocol::Sip, b"SIP/2.0"),
    ] {
        let last = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
        if line.starts_with(version) || (last.starts_with(version) && line.contains(&b' ')) {
            return Some(protocol);
        }
    }
    None
}

/// An RTSP or SIP head: the method or status, and the headers worth keeping.
fn head(protocol: Protocol, p: &[u8]) -> Result<Banner, DecodeError> {
    let name = if protocol == Protocol::Rtsp {
        "rtsp"
    } else {
        "sip"
    };
    let line = first_line(p);
    let mut b = Banner::new(protocol);
    let mut words = line.split(|&c| c == b' ').filter(|w| !w.is_empty());
    let first = words.next().unwrap_or(b"");
    if first.starts_with(b"RTSP/") || first.starts_with(b"SIP/") {
        let code = words.next().unwrap_or(b"");
        let status = std::str::from_utf8(code)
            .ok()
            .filter(|c| c.len() == 3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| malformed(name, "no three-digit status code"))?;
        b.status = Some(status);
    } else {
        if first.is_empty() || !first.iter().all(|c| c.is_ascii_uppercase() || *c == b'-') {
            return Err(malformed(name, "no method"));
        }
        b.method = Some(text(first));
    }
    for l in head_lines(p).skip(1) {
        let Some(colon) = l.iter().position(|&c| c == b':') else {
            continue;
        };
        let (key, value) = (l[..colon].trim_ascii(), l[colon + 1..].trim_ascii());
        let slot = if key.eq_ignore_ascii_case(b"User-Agent") {
            &mut b.user_agent
        } else if key.eq_ignore_ascii_case(b"Server") {
            &mut b.server
        } else if [
            &b"Authorization"[..],
            b"Proxy-Authorization",
            b"WWW-Authenticate",
            b"Proxy-Authenticate",
        ]
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k))
        {
            if b.auth.is_none() {
                b.auth = Some(auth_scheme(value).to_string());
            }
            continue;
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(text(value));
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::payload::{PayloadFacts, decode as decode_payload};
    use crate::testdata::payload;

    fn banner(capture: &str, frame: usize) -> Banner {
        let p = payload(capture, frame);
        let hint = Hint {
            server_port: Some(p.src_port.min(p.dst_port)),
        };
        match decode_payload(&p.data, hint) {
            Ok(Some(PayloadFacts::Banner(b))) => b,
            other => panic!("{capture} {frame}: {other:?}"),
        }
    }

    /// `tshark -r ssh2.pcap -Y ssh.protocol -T fields -e frame.number -e ssh.protocol`:
    /// 4 SSH-1.99-OpenSSH_3.9p1 (the server), 6 SSH-2.0-OpenSSH_5.3 (the client).
    #[test]
    fn ssh_identification_strings_match_tshark() {
        let cap = "attacks-dev/arkime/ssh2.pcap";
        let server = banner(cap, 4);
        assert_eq!(server.protocol, Protocol::Ssh);
        assert_eq!(server.proto_version.as_deref(), Some("1.99"));
        assert_eq!(server.software.as_deref(), Some("OpenSSH_3.9p1"));
        assert_eq!(server.text, None);
        let client = banner(cap, 6);
        assert_eq!(client.proto_version.as_deref(), Some("2.0"));
        assert_eq!(client.software.as_deref(), Some("OpenSSH_5.3"));
        let c = ssh(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6").unwrap();
        assert_eq!(c.text.as_deref(), Some("Ubuntu-3ubuntu0.6"));
        assert!(ssh(b"SSH-2.0").is_err());
        assert!(ssh(b"SSH--x").is_err());
    }

    /// `tshark -r FILE -Y 'ftp.response.code==220' -T fields -e frame.number
    ///  -e ftp.response.code -e ftp.response.arg`: arkime/ftp.pcap 4 220 "Welcome to
    /// mirrors.rit.edu."; initconf 1-session.pcap 5 220 "131.243.10.12 FTP server
    /// (tnftpd 20100324+GSSAPI) ready.".
    #[test]
    fn ftp_greetings_match_tshark() {
        let rit = banner("attacks-dev/arkime/ftp.pcap", 4);
        assert_eq!(
            rit.protocol,
            Protocol::Ftp,
            "by port 21: the text does not say"
        );
        assert_eq!(rit.text.as_deref(), Some("Welcome to mirrors.rit.edu."));
        let p = payload("attacks-dev/arkime/ftp.pcap", 4);
        let no_port = decode(&p.data, Hint::default()).unwrap().unwrap();
        assert_eq!(no_port.protocol, Protocol::FtpOrSmtp);
        let lbl = banner("attacks-dev/initconf-ftp-bruteforce/1-session.pcap", 5);
        assert_eq!(lbl.protocol, Protocol::Ftp);
        assert_eq!(
            lbl.text.as_deref(),
            Some("131.243.10.12 FTP server (tnftpd 20100324+GSSAPI) ready.")
        );
    }

    /// `tshark -r SIP-Bruteforce-Single-IP-slice.pcap -T fields -e frame.number
    ///  -e sip.Method -e sip.Status-Code -e sip.User-Agent -e sip.WWW-Authenticate
    ///  -e sip.Authorization`: 1 REGISTER "Cisco v11.0.0"; 2 401 WWW-Authenticate
    /// "Digest nonce=..."; 3 REGISTER "Cisco v11.0.0" Authorization "Digest
    /// username=\"10\",...,response=..."; 4 403.
    #[test]
    fn sip_heads_match_tshark() {
        let cap = "attacks-dev/initconf-sip-attacks/SIP-Bruteforce-Single-IP-slice.pcap";
        let register = banner(cap, 1);
        assert_eq!(register.protocol, Protocol::Sip);
        assert_eq!(register.method.as_deref(), Some("REGISTER"));
        assert_eq!(register.user_agent.as_deref(), Some("Cisco v11.0.0"));
        assert_eq!(register.auth, None);
        let challenge = banner(cap, 2);
        assert_eq!(
            (challenge.status, challenge.auth.as_deref()),
            (Some(401), Some("Digest"))
        );
        let answer = banner(cap, 3);
        assert_eq!(answer.auth.as_deref(), Some("Digest"));
        let kept = serde_json::to_string(&answer).unwrap();
        assert!(
            !kept.contains("username") && !kept.contains("sip:"),
            "{kept}"
        );
        assert_eq!(banner(cap, 4).status, Some(403));
    }

    /// `tshark -r ndpi/telnet.pcap -Y telnet -T fields -e frame.number -e telnet.cmd
    ///  -e telnet.subcmd`: frame 4 (client) commands 253,251,...; options
    /// 3,24,31,32,33,34,39,5,35; frame 5 (server) 253 option 37.
    #[test]
    fn telnet_negotiation_matches_tshark() {
        let client = banner("ndpi/telnet.pcap", 4);
        assert_eq!(client.protocol, Protocol::Telnet);
        assert_eq!(client.options, [3, 24, 31, 32, 33, 34, 39, 5, 35]);
        assert_eq!(banner("ndpi/telnet.pcap", 5).options, [37]);
        let t = telnet(b"\xff\xfb\x01\xff\xfa\x18\x01\xff\xf0\r\nBusyBox v1.19.4 login: ");
        assert_eq!(
            (t.options.as_slice(), t.text.as_deref()),
            (&[1u8][..], Some("BusyBox v1.19.4 login:"))
        );
    }

    #[test]
    fn rtsp_and_mail_greetings() {
        let d = decode(
            b"DESCRIBE rtsp://admin:secret@192.0.2.7:554/h264 RTSP/1.0\r\nCSeq: 2\r\n\
              User-Agent: LibVLC/3.0.18 (LIVE555 Streaming Media v2016.11.28)\r\n\r\n",
            Hint::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (d.protocol, d.method.as_deref()),
            (Protocol::Rtsp, Some("DESCRIBE"))
        );
        assert_eq!(
            d.user_agent.as_deref(),
            Some("LibVLC/3.0.18 (LIVE555 Streaming Media v2016.11.28)")
        );
        assert!(!format!("{d:?}").contains("secret"));
        let r = decode(
            b"RTSP/1.0 401 Unauthorized\r\nServer: Hipcam RealServer/V1.0\r\n\
              WWW-Authenticate: Basic realm=\"cam\"\r\n\r\n",
            Hint::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (r.status, r.server.as_deref(), r.auth.as_deref()),
            (Some(401), Some("Hipcam RealServer/V1.0"), Some("Basic"))
        );
        assert!(decode(b"RTSP/1.0 abc\r\n\r\n", Hint::default()).is_err());
        for (greeting, protocol, text) in [
            (
                &b"+OK Dovecot ready.\r\n"[..],
                Protocol::Pop3,
                Some("Dovecot ready."),
            ),
            (
                b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n",
                Protocol::Imap,
                Some("[CAPABILITY IMAP4rev1] Dovecot ready."),
            ),
            (
                b"220 mx.example ESMTP Postfix (Debian/GNU)\r\n",
                Protocol::Smtp,
                Some("mx.example ESMTP Postfix (Debian/GNU)"),
            ),
            (
                b"220-ProFTPD 1.3.5 Server\r\n",
                Protocol::Ftp,
                Some("ProFTPD 1.3.5 Server"),
            ),
            (b"220\r\n", Protocol::FtpOrSmtp, None),
        ] {
            let b = decode(greeting, Hint::default()).unwrap().unwrap();
            assert_eq!((b.protocol, b.text.as_deref()), (protocol, text));
        }
        for other in [&b"+OKAY"[..], b"2200 x", b"hello", b"\xff\x01"] {
            assert_eq!(decode(other, Hint::default()), Ok(None), "{other:?}");
        }
    }
}
