//! TLS ClientHello: the server name (SNI), the ALPN protocols, the versions offered, and
//! the JA4 fingerprint of the client's TLS stack. The record and the hello are parsed by
//! `tls-parser`; only the facts below are kept, never the random, session id or key
//! shares.
//!
//! JA4 is computed as FoxIO specifies it in `technical_details/JA4.md` of
//! <https://github.com/FoxIO-LLC/ja4> (BSD-3-Clause): `t`, the version (highest of
//! supported_versions, else the hello's version), `d`/`i` for SNI present or not, cipher
//! and extension counts, the first and last characters of the first ALPN value; then the
//! first 12 hex digits of the SHA-256 of the sorted ciphers, and of the sorted extensions
//! (SNI and ALPN left out) followed by the signature algorithms in their order. GREASE
//! values are ignored everywhere.

use sha2::{Digest, Sha256};
use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extension,
    parse_tls_plaintext,
};

use super::{DecodeError, MAX_LIST};
use crate::discover::text;

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SNI: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;

/// What a ClientHello says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFacts {
    /// The server name the client asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// ALPN protocols in the client's order (at most [`MAX_LIST`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// The hello's own version field (0x0303 even for TLS 1.3 clients).
    pub legacy_version: u16,
    /// The supported_versions extension, GREASE removed (at most [`MAX_LIST`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_versions: Vec<u16>,
    /// The JA4 fingerprint, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    pub ja4: String,
}

/// Whether a server name is shaped like the ones Tor clients make up for every TLS
/// connection to a relay: `www.` + 4 to 25 random base32 characters + `.com` (tor's
/// `tor_tls_new` calls `crypto_random_hostname(4, 25, "www.", ".com")`, whose base32
/// alphabet is `a-z2-7`). At least one of the digits 2-7 is asked for, so an ordinary
/// `www.word.com` is not taken for one (that misses about one Tor name in five of length
/// eight, fewer of longer ones: a Tor client makes many connections).
pub fn tor_like(name: &str) -> bool {
    let Some(mid) = name
        .strip_prefix("www.")
        .and_then(|r| r.strip_suffix(".com"))
    else {
        return false;
    };
    (4..=25).contains(&mid.len())
        && mid
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
        && mid.bytes().any(|c| (b'2'..=b'7').contains(&c))
}

/// A TLS handshake record: worth handing to [`decode`].
pub fn looks_like(p: &[u8]) -> bool {
    matches!(p, [HANDSHAKE, 3, minor, ..] if *minor <= 4)
}

fn malformed(why: impl Into<String>) -> DecodeError {
    DecodeError::new("tls", why)
}

/// Decodes a TLS record. `Ok(None)` for handshake messages other than a ClientHello (a
/// server's hello); an error for a hello cut short, since its JA4 would be wrong.
pub fn decode(p: &[u8]) -> Result<Option<TlsFacts>, DecodeError> {
    if p.get(5) != Some(&CLIENT_HELLO) {
        return Ok(None);
    }
    let record = match parse_tls_plaintext(p) {
        Ok((_, r)) => r,
        Err(tls_parser::Err::Incomplete(_)) => {
            let need = p.get(3..5).map_or(0, |l| u16::from_be_bytes([l[0], l[1]]));
            return Err(malformed(format!(
                "ClientHello cut short: {} of {} record bytes",
                p.len().saturating_sub(5),
                need
            )));
        }
        Err(e) => return Err(malformed(format!("{e:?}"))),
    };
    let Some(TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello))) = record.msg.first()
    else {
        return Err(malformed("not a ClientHello"));
    };
    // tls-parser reads a bad extensions length as "no extensions" (`opt`), which would
    // give a wrong JA4: the hello's parts must add up to its handshake length.
    let parts = 2
        + 32
        + 1
        + hello.session_id.map_or(0, <[u8]>::len)
        + 2
        + 2 * hello.ciphers.len()
        + 1
        + hello.comp.len()
        + hello.ext.map_or(0, |e| 2 + e.len());
    let declared = p.get(6..9).map_or(0, |l| {
        usize::from(l[0]) << 16 | usize::from(l[1]) << 8 | usize::from(l[2])
    });
    if parts != declared {
        return Err(malformed(format!(
            "hello fields add up to {parts} bytes, its header says {declared}"
        )));
    }
    let ciphers: Vec<u16> = hello.ciphers.iter().map(|c| c.0).collect();
    let mut hello_facts = Hello {
        version: hello.version.0,
        ciphers,
        ..Hello::default()
    };
    let mut facts = TlsFacts {
        legacy_version: hello.version.0,
        ..TlsFacts::default()
    };
    let mut exts = hello.ext.unwrap_or(&[]);
    // Framed here rather than by `parse_tls_client_hello_extensions`, which stops silently
    // at the first extension whose content it cannot parse: every type must count in JA4.
    while let [t0, t1, l0, l1, rest @ ..] = exts {
        let (kind, len) = (
            u16::from_be_bytes([*t0, *t1]),
            usize::from(u16::from_be_bytes([*l0, *l1])),
        );
        let Some(whole) = exts.get(..4 + len) else {
            return Err(malformed(format!(
                "extension {kind:#06x} longer than the hello"
            )));
        };
        exts = &rest[len..];
        hello_facts.extensions.push(kind);
        let Ok((_, ext)) = parse_tls_client_hello_extension(whole) else {
            continue;
        };
        match ext {
            TlsExtension::SNI(names) => {
                facts.sni = names
                    .iter()
                    .find(|(t, _)| *t == SNIType::HostName)
                    .map(|(_, n)| text(n));
            }
            TlsExtension::ALPN(protocols) => {
                hello_facts.first_alpn = protocols.first().map(|p| p.to_vec());
                facts.alpn = protocols.iter().take(MAX_LIST).map(|p| text(p)).collect();
            }
            TlsExtension::SupportedVersions(v) => {
                hello_facts.supported_versions =
                    v.iter().map(|v| v.0).filter(|v| !grease(*v)).collect();
                facts.supported_versions = hello_facts
                    .supported_versions
                    .iter()
                    .copied()
                    .take(MAX_LIST)
                    .collect();
            }
            TlsExtension::SignatureAlgorithms(s) => hello_facts.signature_algorithms = s,
            _ => {}
        }
    }
    if !exts.is_empty() {
        return Err(malformed("extensions end inside an extension header"));
    }
    facts.ja4 = hello_facts.ja4();
    Ok(Some(facts))
}

/// What JA4 is computed from, as the hello lists it (GREASE still in, except in
/// `supported_versions`).
#[derive(Debug, Default)]
struct Hello {
    version: u16,
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    signature_algorithms: Vec<u16>,
    supported_versions: Vec<u16>,
    first_alpn: Option<Vec<u8>>,
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa.
fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

impl Hello {
    fn ja4(&self) -> String {
        let ciphers: Vec<u16> = self
            .ciphers
            .iter()
            .copied()
            .filter(|c| !grease(*c))
            .collect();
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|e| !grease(*e))
            .collect();
        let version = self
            .supported_versions
            .iter()
            .copied()
            .max()
            .unwrap_or(self.version);
        let version = match version {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            0x0002 => "s2",
            0xfeff => "d1",
            0xfefd => "d2",
            0xfefc => "d3",
            _ => "00",
        };
        let sni = if exts.contains(&EXT_SNI) { 'd' } else { 'i' };
        let hashed_exts: Vec<u16> = exts
            .iter()
            .copied()
            .filter(|e| *e != EXT_SNI && *e != EXT_ALPN)
            .collect();
        let sigs: Vec<u16> = self
            .signature_algorithms
            .iter()
            .copied()
            .filter(|s| !grease(*s))
            .collect();
        let ext_part = if hashed_exts.is_empty() {
            "000000000000".to_string()
        } else if sigs.is_empty() {
            hash12(&hex_list(&sorted(hashed_exts)))
        } else {
            hash12(&format!(
                "{}_{}",
                hex_list(&sorted(hashed_exts)),
                hex_list(&sigs)
            ))
        };
        let cipher_part = if ciphers.is_empty() {
            "000000000000".to_string()
        } else {
            hash12(&hex_list(&sorted(ciphers.clone())))
        };
        format!(
            "t{version}{sni}{:02}{:02}{}_{cipher_part}_{ext_part}",
            ciphers.len().min(99),
            exts.len().min(99),
            alpn_chars(self.first_alpn.as_deref()),
        )
    }
}

fn sorted(mut v: Vec<u16>) -> Vec<u16> {
    v.sort_unstable();
    v
}

fn hex_list(v: &[u16]) -> String {
    v.iter()
        .map(|x| format!("{x:04x}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn hash12(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first and last characters of the first ALPN value; of its hex form when either
/// end is not alphanumeric ASCII; `00` without one.
fn alpn_chars(first: Option<&[u8]>) -> String {
    let Some((&a, &z)) = first.and_then(|v| Some((v.first()?, v.last()?))) else {
        return "00".to_string();
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        format!("{}{}", a as char, z as char)
    } else {
        let hex = |b: u8| char::from_digit(u32::from(b), 16).unwrap_or('0');
        format!("{}{}", hex(a >> 4), hex(z & 0xf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::payload;

    #[test]
    fn tors_made_up_names_and_ordinary_ones() {
        for n in [
            "www.4sgxzmcvx3ls.com",
            "www.ab3d.com",
            "www.q7xwzp2bcdn6kexmfyt.com",
        ] {
            assert!(tor_like(n), "{n}");
        }
        for n in [
            "www.meethue.com",
            "www.example.com",
            "www.abc.com",
            "www.ab1d.com",
            "www.4sgxzmcvx3ls.net",
            "api.4sgxzmcvx3ls.com",
            "www.4SGXZMCVX3LS.com",
            "www.aaaaaaaaaaaaaaaaaaaaaaaa3a.com",
        ] {
            assert!(!tor_like(n), "{n}");
        }
    }

    /// A ClientHello record with the given fields, the rest of it plausible.
    fn client_hello(version: u16, ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend([0x11; 32]);
        body.push(0);
        body.extend(u16::try_from(ciphers.len() * 2).unwrap().to_be_bytes());
        ciphers.iter().for_each(|c| body.extend(c.to_be_bytes()));
        body.extend([1, 0]);
        let mut e = Vec::new();
        for (t, data) in exts {
            e.extend(t.to_be_bytes());
            e.extend(u16::try_from(data.len()).unwrap().to_be_bytes());
            e.extend(data);
        }
        body.extend(u16::try_from(e.len()).unwrap().to_be_bytes());
        body.extend(e);
        let mut hs = vec![CLIENT_HELLO, 0];
        hs.extend(u16::try_from(body.len()).unwrap().to_be_bytes());
        hs.extend(body);
        let mut rec = vec![HANDSHAKE, 3, 1];
        rec.extend(u16::try_from(hs.len()).unwrap().to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn u16_list(prefix_len: usize, v: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = v.len() * 2;
        if prefix_len == 2 {
            out.extend(u16::try_from(n).unwrap().to_be_bytes());
        } else {
            out.push(u8::try_from(n).unwrap());
        }
        v.iter().for_each(|x| out.extend(x.to_be_bytes()));
        out
    }

    /// FoxIO's worked example (technical_details/JA4.md, "Example" and "Raw Output"): the
    /// JA4_ro line gives the hello's ciphers, extensions and signature algorithms in
    /// their original order; the spec's JA4 for it is
    /// `t13d1516h2_8daaf6152771_e5627efa2ab1`, which FoxIO's own Rust tool also prints
    /// for Chrome's hellos in its `pcap/tls-handshake.pcapng` (snapshot
    /// `rust/ja4/src/snapshots/ja4__insta@tls-handshake.pcapng.snap`). GREASE values are
    /// added, as Chrome sends them, to check they are ignored.
    #[test]
    fn ja4_of_foxios_example_hello() {
        let ciphers = [
            0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let mut sni = vec![0, 17, 0, 0, 14];
        sni.extend(b"www.google.com");
        let mut alpn = vec![0, 12, 2];
        alpn.extend(b"h2");
        alpn.push(8);
        alpn.extend(b"http/1.1");
        let sigs = [
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ];
        let exts = [
            (0x0a0a, vec![]),
            (0x001b, vec![2, 0, 2]),
            (0x0000, sni),
            (0x0033, vec![0, 0]),
            (0x0010, alpn),
            (0x4469, vec![0, 3, 2, b'h', b'2']),
            (0x0017, vec![]),
            (0x002d, vec![1, 1]),
            (0x000d, u16_list(2, &sigs)),
            (0x0005, vec![1, 0, 0, 0, 0]),
            (0x0023, vec![]),
            (0x0012, vec![]),
            (0x002b, u16_list(1, &[0x7a7a, 0x0304, 0x0303])),
            (0xff01, vec![0]),
            (0x000b, vec![1, 0]),
            (0x000a, u16_list(2, &[0x3a3a, 0x001d, 0x0017])),
            (0x0015, vec![0; 10]),
            (0x1a1a, vec![0]),
        ];
        let f = decode(&client_hello(0x0303, &ciphers, &exts))
            .unwrap()
            .unwrap();
        assert_eq!(f.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(f.sni.as_deref(), Some("www.google.com"));
        assert_eq!(f.alpn, ["h2", "http/1.1"]);
        assert_eq!(f.legacy_version, 0x0303);
        assert_eq!(f.supported_versions, [0x0304, 0x0303]);
    }

    /// The spec's other published hashes: the extension list without signature
    /// algorithms (`6d807ffa2a79`), the empty lists (`000000000000`), and its ALPN rules.
    #[test]
    fn ja4_rules_from_the_spec() {
        let exts = [
            0x0005, 0x000a, 0x000b, 0x000d, 0x0012, 0x0015, 0x0017, 0x001b, 0x0023, 0x002b, 0x002d,
            0x0033, 0x4469, 0xff01,
        ];
        assert_eq!(hash12(&hex_list(&exts)), "6d807ffa2a79");
        let empty = Hello::default().ja4();
        assert_eq!(empty, "t00i000000_000000000000_000000000000");
        for (alpn, chars) in [
            (&b"h2"[..], "h2"),
            (b"http/1.1", "h1"),
            (b"a", "aa"),
            (b"", "00"),
            (&[0xab], "ab"),
            (&[0xab, 0xcd], "ad"),
            (&[0x30, 0xab], "3b"),
            (&[0x30, 0x31, 0xab, 0xcd], "3d"),
            (&[0x30, 0xab, 0xcd, 0x31], "01"),
        ] {
            assert_eq!(alpn_chars(Some(alpn)), chars, "{alpn:?}");
        }
        assert_eq!(alpn_chars(None), "00");
        assert!(grease(0x0a0a) && grease(0xfafa) && !grease(0x0a1a) && !grease(0x1301));
    }

    /// Real IoT hellos against tshark:
    /// `tshark -r FILE -Y 'tls.handshake.type==1' -T fields -e frame.number
    ///  -e tls.handshake.version -e tls.handshake.extensions_server_name
    ///  -e tls.handshake.extensions_alpn_str -e tls.handshake.extensions.supported_version`
    /// (no ALPN or supported_versions in these 2016 devices). tshark 4.0 has no JA4 field;
    /// the JA4 values were computed from the same tshark run's `tls.handshake.ciphersuite`,
    /// `tls.handshake.extension.type` and `tls.handshake.sig_hash_alg` by the spec's
    /// rules, independently of this code.
    #[test]
    fn iot_hellos_match_tshark() {
        for (capture, frame, version, sni, ja4) in [
            // Netatmo Welcome camera.
            (
                "IOT1-test-slice.pcap",
                1,
                0x0301,
                Some("apicom.netatmo.net"),
                "t10d350400_1f24bcc5f17d_a875e5012fde",
            ),
            (
                "IOT1-test-slice.pcap",
                2,
                0x0303,
                Some("apicom.netatmo.net"),
                "t12d560400_60163a5dee6d_ad6fb1d64183",
            ),
            // Amazon Echo: one hello without SNI.
            (
                "Two-IOT161012-node5-slice.pcap",
                1,
                0x0303,
                None,
                "t12i910500_383454ac02f4_a1e935682795",
            ),
            (
                "Two-IOT161012-node5-slice.pcap",
                2,
                0x0301,
                Some("device-metrics-us.amazon.com"),
                "t10d550500_59f835f43fe7_db1f1d781382",
            ),
            (
                "Two-IOT161012-node5-slice.pcap",
                3,
                0x0303,
                Some("www.meethue.com"),
                "t12d910600_383454ac02f4_8587f467d9ea",
            ),
        ] {
            let p = payload(&format!("attacks-dev/faucetsdn-networkml/{capture}"), frame);
            assert!(looks_like(&p.data));
            let f = decode(&p.data).unwrap().unwrap();
            assert_eq!(f.legacy_version, version, "{capture} {frame}");
            assert_eq!(f.sni.as_deref(), sni, "{capture} {frame}");
            assert_eq!(f.ja4, ja4, "{capture} {frame}");
            assert!(f.alpn.is_empty() && f.supported_versions.is_empty());
        }
    }

    #[test]
    fn cut_short_or_not_a_client_hello() {
        let p = payload("attacks-dev/faucetsdn-networkml/IOT1-test-slice.pcap", 1);
        let e = decode(&p.data[..200]).unwrap_err();
        assert!(e.why.contains("cut short"), "{e}");
        let mut bad_ext_len = p.data.clone();
        // Past the record and handshake headers, version, random, session id, ciphers
        // and compression methods: the extensions length.
        let mut at = 5 + 4 + 2 + 32;
        at += 1 + usize::from(bad_ext_len[at]);
        at += 2 + usize::from(u16::from_be_bytes([bad_ext_len[at], bad_ext_len[at + 1]]));
        at += 1 + usize::from(bad_ext_len[at]);
        bad_ext_len[at] = 0xff;
        assert!(
            decode(&bad_ext_len).is_err(),
            "a wrong extensions length is an error"
        );
        let mut server_hello = p.data.clone();
        server_hello[5] = 2;
        assert_eq!(decode(&server_hello), Ok(None));
        assert!(!looks_like(b"\x17\x03\x03\x00\x10"));
    }
}
