//! Entry points for the coverage-guided fuzz targets (`sensor-user/fuzz`, run by `cargo
//! xtask fuzz-parsers`) and for the regression tests that replay what they found.
//!
//! Each takes arbitrary bytes, runs them through one parser the way the sensor does, and
//! panics when an invariant breaks: a panic, an unbounded or unprintable string reaching
//! an event, an error that points outside its input. The targets and `cargo test` share
//! these functions so a finding, once saved under `fuzz/regressions/TARGET/`, is replayed
//! by every test run.

use std::{io::Cursor, path::Path};

use sensor_common::MacAddr;

use crate::{
    config::{Config, ConfigError},
    discover::profile::Profile,
    discover::{self, Decoded, Facts, MAX_TEXT},
    ingest::pcap::Capture,
    judge::classify::Classifier,
    judge::intel::formats,
    judge::policy::mud,
};

/// One fuzz target: arbitrary bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// The targets, by name: what `fuzz/fuzz_targets/NAME.rs` calls.
pub const TARGETS: [(&str, Target); 10] = [
    ("discovery_frame", discovery_frame),
    ("discovery_payload", discovery_payload),
    ("flow_payload", flow_payload),
    ("intel_feed", intel_feed),
    ("mud", mud_file),
    ("config", config_file),
    ("classify_rules", classify_rules),
    ("pcap", pcap),
    ("kernel_event", kernel_event),
    ("vuln_feed", vuln_feed),
];

/// A whole Ethernet frame through the discovery router (the ingress copy) and the DNS
/// answer decoder (the egress copy), then into a device profile.
pub fn discovery_frame(data: &[u8]) {
    if let Ok(Some(d)) = discover::decode(data) {
        profile_stays_safe(d);
    }
    if let Ok(Some(a)) = discover::dns::decode_answer_frame(data) {
        answer_safe(&a);
    }
}

/// One decoder's payload, chosen by the first byte: reaches each decoder's depths without
/// the fuzzer first having to find the port.
pub fn discovery_payload(data: &[u8]) {
    let Some((&which, m)) = data.split_first() else {
        return;
    };
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let facts = match which % 12 {
        0 => discover::dhcp::decode_message(m)
            .ok()
            .flatten()
            .map(Facts::Dhcp),
        1 => discover::dhcpv6::decode(mac, m)
            .ok()
            .flatten()
            .map(|(_, f)| Facts::Dhcpv6(f)),
        2 => discover::dns::decode(m).ok().flatten().map(Facts::Dns),
        3 => discover::mdns::decode(m).ok().flatten().map(Facts::Mdns),
        4 => discover::ssdp::decode(m).ok().map(Facts::Ssdp),
        5 => discover::wsd::decode(m).ok().map(Facts::Wsd),
        6 => discover::tplink::decode(m).ok().map(Facts::Kasa),
        7 => discover::tuya::decode(6666, m).ok().map(Facts::Tuya),
        8 => discover::tuya::decode(6667, m).ok().map(Facts::Tuya),
        9 => discover::mqtt::decode(m).ok().flatten().map(Facts::Mqtt),
        10 => discover::lldp::decode(mac, m)
            .ok()
            .flatten()
            .map(|d| d.facts),
        _ => {
            if let Ok(Some(a)) = discover::dns::decode_answer(m) {
                answer_safe(&a);
            }
            None
        }
    };
    if let Some(facts) = facts {
        profile_stays_safe(Decoded { mac, facts });
    }
}

/// A flow's first payload through the payload decoders (TLS, HTTP, banners); the first
/// two bytes are the server port hint (0: none). What decodes is bounded text and lists.
pub fn flow_payload(data: &[u8]) {
    let [p0, p1, payload @ ..] = data else {
        return;
    };
    let port = u16::from_be_bytes([*p0, *p1]);
    let hint = discover::payload::Hint {
        server_port: (port != 0).then_some(port),
    };
    if let Ok(Some(f)) = discover::payload::decode(payload, hint) {
        let v = serde_json::to_value(&f).expect("payload facts serialize");
        lists_bounded(&v);
        strings_safe(&v);
        // Into a profile and its software inventory, as the engine takes it.
        let mut p = discover::profile::Profile::default();
        p.merge_payload(&f, port % 2 == 0);
        let named = discover::software::from_payload(&f);
        assert!(named.len() <= 8, "{} entries from one payload", named.len());
        p.saw_software(named, "2026-01-01T00:00:00.000000+0000");
        let v = serde_json::to_value(&p).expect("a profile serializes");
        lists_bounded(&v);
        strings_safe(&v);
    }
}

/// A vulnerability feed file: NVD or KEV by content, gzip or not. It loads, or fails
/// naming the file; what loads is looked up without panicking.
pub fn vuln_feed(data: &[u8]) {
    use crate::judge::vulns;
    let path = std::path::Path::new("fuzz.json");
    let loaded = if data.first().is_some_and(|b| b % 2 == 0) {
        vulns::nvd::read(path, &data[1..]).map(|(f, s)| (vulns::Feed::Nvd(f), s))
    } else {
        vulns::kev::read(path, data.get(1..).unwrap_or_default())
            .map(|(f, s)| (vulns::Feed::Kev(f), s))
    };
    match loaded {
        Ok((feed, summary)) => {
            assert!(summary.refusals.len() <= vulns::MAX_REFUSALS);
            let db = vulns::VulnDb::from_feeds(vec![feed]);
            for version in [None, Some("1.0"), Some("2.80"), Some("8.5p1")] {
                let _ = db.lookup(vulns::Part::Application, "openbsd", "openssh", version);
                let _ = db.lookup(vulns::Part::Hardware, "dlink", "dir-645", version);
            }
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.json"), "{e}"),
    }
}

fn lists_bounded(v: &serde_json::Value) {
    match v {
        serde_json::Value::Array(a) => {
            assert!(
                a.len() <= discover::payload::MAX_LIST,
                "list of {}",
                a.len()
            );
            a.iter().for_each(lists_bounded);
        }
        serde_json::Value::Object(o) => o.values().for_each(lists_bounded),
        _ => {}
    }
}

/// A feed file in the format the first byte picks; for `suricata-iprep`, the text after
/// the first NUL is its categories file. Every indicator kept is well formed and points
/// at a line of the file.
pub fn intel_feed(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let format = formats::FORMATS[which as usize % formats::FORMATS.len()];
    let text = String::from_utf8_lossy(rest);
    let (feed, categories) = match text.split_once('\0') {
        Some((f, c)) => (f, Some(c)),
        None => (&*text, None),
    };
    let parsed = formats::parse(format, feed, categories, 1_700_000_000);
    let lines = feed.lines().count();
    for e in &parsed.entries {
        assert!(
            e.line <= lines,
            "{format}: entry on line {} of {lines}",
            e.line
        );
        match &e.indicator {
            formats::Indicator::Net(n) => assert_eq!(*n, n.trunc(), "{format}: untruncated"),
            formats::Indicator::Domain(d) => {
                assert_eq!(formats::domain(d).as_deref(), Some(d.as_str()), "{format}")
            }
            formats::Indicator::Ja4(f) => {
                assert_eq!(formats::ja4(f).as_deref(), Some(f.as_str()), "{format}")
            }
        }
    }
    // An error at the end of the file (a JSON document cut short) is on the line after
    // the last newline.
    for (line, _) in &parsed.invalid {
        assert!(
            *line <= lines + 1,
            "{format}: invalid line {line} of {lines}"
        );
    }
}

/// A MUD file: it imports or says where (a JSON path) it is wrong.
pub fn mud_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = mud::parse(&text, "fuzz.json") {
        assert!(e.path.starts_with('$'), "not a JSON path: {e}");
    }
}

/// The configuration file: it validates or names a line and column inside it.
pub fn config_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, "fuzz.toml") {
        Ok(c) => {
            if let Err(e) = crate::engine::check::check(&c, &text, "fuzz.toml") {
                location_inside(&text, &e);
            }
        }
        Err(e) => location_inside(&text, &e),
    }
}

/// A user classification rules file.
pub fn classify_rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Classifier::parse(&text, "fuzz.toml") {
        Err(e) => location_inside(&text, &e),
        Ok(c) => {
            let c = c.classify([("dhcp.hostname", "kettle"), ("oui.vendor", "Espressif")]);
            assert!((0.0..=1.0).contains(&c.confidence), "{c:?}");
        }
    }
}

/// A pcap or pcapng file: frames until the end or the first damage, never more bytes than
/// the file holds, and nothing after an error.
pub fn pcap(data: &[u8]) {
    let Ok(mut cap) = Capture::from_reader(Path::new("fuzz.pcap"), Cursor::new(data.to_vec()))
    else {
        return;
    };
    let mut bytes = 0usize;
    while let Some(f) = cap.next_frame() {
        match f {
            Ok(f) => {
                bytes += f.data.len();
                assert!(bytes <= data.len(), "frames hold more bytes than the file");
            }
            Err(_) => {
                assert!(cap.next_frame().is_none(), "a frame after an error");
                break;
            }
        }
    }
}

/// A ring-buffer record (from the kernel; still bounds-checked).
pub fn kernel_event(data: &[u8]) {
    let _ = crate::kernel::records::decode(data);
}

/// Largest seed: bigger inputs slow every execution without reaching new code.
const MAX_SEED: usize = 16 * 1024;

/// Starting inputs for each target, from the shared fixtures (`fixtures`: the
/// `tests/fixtures` directory) and the example configuration of docs/configuration.md: real frames,
/// payloads, feeds, MUD files and captures, so the fuzzers start deep in each parser.
pub fn seeds(fixtures: &Path, config_doc: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let files = |dir: &str| -> Vec<std::path::PathBuf> {
        let mut v = Vec::new();
        let mut stack = vec![fixtures.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    v.push(p);
                }
            }
        }
        v.sort();
        v
    };
    let mut seen = std::collections::HashSet::new();
    for path in files("captures") {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "pcap" && ext != "pcapng" {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if bytes.len() <= MAX_SEED {
            out.push(("pcap", bytes));
        }
        let Ok(mut cap) = Capture::open(&path) else {
            continue;
        };
        while let Some(Ok(f)) = cap.next_frame() {
            // Frames of one conversation repeat: one seed per distinct header prefix.
            let key: Vec<u8> = f.data.iter().take(64).copied().collect();
            if !seen.insert(key) {
                continue;
            }
            if let Some(p) = payload_seed(&f.data) {
                out.push(("discovery_payload", p));
            }
            if let Some(p) = flow_payload_seed(&f.data) {
                out.push(("flow_payload", p));
            }
            if discover::decode(&f.data).is_ok()
                || discover::dns::decode_answer_frame(&f.data).is_ok()
            {
                out.push(("discovery_frame", f.data));
            }
        }
    }
    for path in files("vulns") {
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&text) else {
            continue;
        };
        // The publisher's layout with a few of its records: seeds stay small.
        if let Some(records) = v
            .get_mut("vulnerabilities")
            .and_then(serde_json::Value::as_array_mut)
        {
            records.truncate(2);
        }
        let which = if name.starts_with("kev") { 1u8 } else { 0 };
        let json = serde_json::to_vec_pretty(&v).expect("a value serializes");
        out.push(("vuln_feed", [&[which][..], &json].concat()));
    }
    for path in files("intel") {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => "feodo-csv",
            Some("json") => "stix2",
            Some("intel") => "zeek",
            _ => continue,
        };
        if let Ok(text) = std::fs::read_to_string(&path) {
            out.push(("intel_feed", feed_seed(format, &text, None)));
        }
    }
    for (format, text, categories) in [
        (
            "plain",
            "# a comment\n192.0.2.1\n198.51.100.0/24\n2001:db8::/32\n",
            None,
        ),
        ("spamhaus", "; Spamhaus DROP\n192.0.2.0/24 ; SBL1\n", None),
        (
            "firehol",
            "# firehol_level1\n203.0.113.0/24\n192.0.2.7\n",
            None,
        ),
        (
            "suricata-iprep",
            "192.0.2.1,1,90\n198.51.100.0/24,2,40\n",
            Some("1,CnC,Command and control\n2,Scanner,Scanners\n"),
        ),
        ("domains", "# domains\nbad.example\nc2.example.net.\n", None),
        (
            "hosts",
            "0.0.0.0 bad.example\n127.0.0.1 localhost\n::1 tracker.example # x\n",
            None,
        ),
    ] {
        out.push(("intel_feed", feed_seed(format, text, categories)));
    }
    for path in files("mud") {
        if let Ok(bytes) = std::fs::read(&path) {
            out.push(("mud", bytes));
        }
    }
    if let Some(config) = example_config(config_doc) {
        out.push(("config", config.into_bytes()));
    }
    out.push((
        "classify_rules",
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/classify.toml")).to_vec(),
    ));
    for kind in 0..8u8 {
        let mut ev = vec![0u8; size_of::<sensor_common::Event>()];
        ev[std::mem::offset_of!(sensor_common::Event, kind)] = kind;
        out.push(("kernel_event", ev));
    }
    out
}

/// A feed seed: the format's selector byte, then the text (cut to [`MAX_SEED`] at a line).
fn feed_seed(format: &str, text: &str, categories: Option<&str>) -> Vec<u8> {
    let which = formats::FORMATS
        .iter()
        .position(|f| *f == format)
        .expect("a known format") as u8;
    let mut cut = text.len().min(MAX_SEED);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = &text[..text[..cut].rfind('\n').map_or(cut, |i| i + 1)];
    let mut v = vec![which];
    v.extend_from_slice(text.as_bytes());
    if let Some(c) = categories {
        v.push(0);
        v.extend_from_slice(c.as_bytes());
    }
    v
}

/// The payload of a discovery frame with the selector byte [`discovery_payload`] reads.
fn payload_seed(frame: &[u8]) -> Option<Vec<u8>> {
    use etherparse::{SlicedPacket, TransportSlice};
    use sensor_common::discovery as kinds;
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let (which, m): (u8, &[u8]) = match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let (s, d) = (u.source_port(), u.destination_port());
            let which = match () {
                _ if d == kinds::DHCP_SERVER => 0,
                _ if d == kinds::DHCPV6_SERVER => 1,
                _ if d == kinds::MDNS || s == kinds::MDNS => 3,
                _ if d == kinds::DNS => 2,
                _ if s == kinds::DNS => 11,
                _ if d == kinds::SSDP || s == kinds::SSDP => 4,
                _ if d == kinds::WSD || s == kinds::WSD => 5,
                _ if d == kinds::KASA || s == kinds::KASA => 6,
                _ if d == kinds::TUYA_PLAIN => 7,
                _ if d == kinds::TUYA_ENCRYPTED => 8,
                _ => return None,
            };
            (which, u.payload())
        }
        Some(TransportSlice::Tcp(t)) if t.destination_port() == kinds::MQTT => (9, t.payload()),
        _ => {
            let e = p.ether_payload()?;
            if e.ether_type.0 != kinds::ETH_P_LLDP {
                return None;
            }
            (10, e.payload)
        }
    };
    if m.is_empty() {
        return None;
    }
    let mut v = vec![which];
    v.extend_from_slice(m);
    Some(v)
}

/// A TCP or UDP payload the payload decoders recognise, behind the port hint
/// [`flow_payload`] reads (the lower port: usually the server's).
fn flow_payload_seed(frame: &[u8]) -> Option<Vec<u8>> {
    use etherparse::{SlicedPacket, TransportSlice};
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let (s, d, m) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port(), t.payload()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), u.payload()),
        _ => return None,
    };
    let port = s.min(d);
    let hint = discover::payload::Hint {
        server_port: Some(port),
    };
    discover::payload::decode(m, hint).ok()??;
    let mut v = port.to_be_bytes().to_vec();
    v.extend_from_slice(m);
    Some(v)
}

/// The example configuration of docs/configuration.md: the TOML block that holds `[sensor]`.
fn example_config(config_doc: &str) -> Option<String> {
    config_doc
        .split("```toml")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("[sensor]"))
        .map(str::to_string)
}

fn profile_stays_safe(d: Decoded) {
    let mut p = Profile::default();
    p.merge(d.facts);
    let v = serde_json::to_value(&p).expect("a profile serializes");
    strings_safe(&v);
    // Built once: compiling the rules each run would be most of the fuzzer's time.
    static BUILTIN: std::sync::OnceLock<Classifier> = std::sync::OnceLock::new();
    let facts = p.facts();
    let c = BUILTIN
        .get_or_init(Classifier::builtin)
        .classify(facts.iter().map(|(k, v)| (*k, v.as_ref())));
    assert!((0.0..=1.0).contains(&c.confidence), "{c:?}");
}

fn strings_safe(v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) => assert_safe(s),
        serde_json::Value::Array(a) => a.iter().for_each(strings_safe),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, v)| {
            assert_safe(k);
            strings_safe(v);
        }),
        _ => {}
    }
}

/// A DNS answer: a bounded CNAME chain of safe names, a bounded address list.
fn answer_safe(a: &discover::dns::DnsAnswer) {
    assert!(a.names.len() <= 17, "CNAME chain of {}", a.names.len());
    assert!(a.addrs.len() <= 64, "{} addresses", a.addrs.len());
    a.names.iter().for_each(|n| assert_safe(n));
}

/// Text from the network that reaches an event is bounded and printable.
fn assert_safe(t: &str) {
    assert!(t.chars().count() <= MAX_TEXT, "too long: {t:?}");
    assert!(!t.chars().any(char::is_control), "control character: {t:?}");
}

fn location_inside(text: &str, e: &ConfigError) {
    if let ConfigError::Invalid { line, column, .. } = e {
        let lines = text.split('\n').count();
        assert!(*line >= 1 && *line <= lines, "line {line} of {lines}: {e}");
        assert!(*column >= 1, "column {column}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input the fuzzers saved (crashes found and fixed, and a seed per target) is
    /// replayed: a fixed finding stays fixed.
    #[test]
    fn fuzz_regressions_replay() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            let Ok(entries) = std::fs::read_dir(dir.join(name)) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let r = std::panic::catch_unwind(|| target(&data));
                assert!(r.is_ok(), "{name}: {} fails again", path.display());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no regression inputs under {}", dir.display());
    }
}
