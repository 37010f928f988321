//! The terminal view (`--format text`, the default when events would go to a terminal):
//! one readable line per alert and per device that appears or changes what it is, and a
//! one-line summary of flows at each `stats` event. It reads the same EVE objects the
//! JSON stream carries, so it can say nothing the stream does not.

use std::collections::HashMap;

use serde_json::Value;

use super::output::Output;

/// How `run` and `replay` print events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text on a terminal, JSON Lines otherwise.
    Auto,
    /// JSON Lines (EVE).
    Json,
    /// One readable line per alert and device change, and a periodic summary.
    Text,
}

impl Format {
    /// `auto` made concrete: text when the events would go to standard output and that is
    /// a terminal.
    pub fn resolve(self, output: &str) -> Format {
        use std::io::IsTerminal as _;
        match self {
            Format::Auto if output == "-" && std::io::stdout().is_terminal() => Format::Text,
            Format::Auto => Format::Json,
            f => f,
        }
    }
}

/// The event stream's output and the terminal view's for `path` in `format` (resolved):
/// text puts the view on standard output and the JSON in the file, or nowhere when the
/// path is `-`.
pub fn open_outputs(
    path: &str,
    format: Format,
    queue_lines: usize,
) -> std::io::Result<(Output, Option<Output>)> {
    if format != Format::Text {
        return Ok((Output::open(path, queue_lines)?, None));
    }
    let view = Output::open("-", queue_lines)?;
    let events = if path == "-" {
        Output::from_writer(Box::new(std::io::sink()), queue_lines)
    } else {
        Output::open(path, queue_lines)?
    };
    Ok((events, Some(view)))
}

/// What the view remembers of a device, to say only what changed.
#[derive(Default, PartialEq)]
struct Seen {
    name: String,
    category: String,
}

/// Turns EVE objects into text lines.
#[derive(Default)]
pub struct TextView {
    devices: HashMap<String, Seen>,
    /// Flow records and bytes since the last summary.
    records: u64,
    bytes: u64,
    alerts: u64,
}

/// `2026-12-02T18:40:01.123456+0000` as `2026-12-02 18:40:01`.
fn when(v: &Value) -> String {
    let t = v["timestamp"].as_str().unwrap_or("");
    t.get(..19).unwrap_or(t).replacen('T', " ", 1)
}

/// The device as a reader knows it: its declared or announced name, else its MAC.
fn who(d: &Value) -> String {
    let mac = d["mac"].as_str().unwrap_or("?");
    let name = d["name"]
        .as_str()
        .or_else(|| d["hostname"].as_str())
        .unwrap_or("");
    let category = d["category"].as_str().unwrap_or("unknown");
    if name.is_empty() {
        format!("{mac} ({category})")
    } else {
        format!("{name} ({mac}, {category})")
    }
}

/// Where a flow or alert went: `address:port/proto`.
fn destination(v: &Value) -> Option<String> {
    let ip = v["dest_ip"].as_str()?;
    let proto = v["proto"].as_str().unwrap_or("").to_lowercase();
    Some(match v["dest_port"].as_u64() {
        Some(p) if ip.contains(':') => format!("[{ip}]:{p}/{proto}"),
        Some(p) => format!("{ip}:{p}/{proto}"),
        None => format!("{ip}/{proto}"),
    })
}

fn human_bytes(b: u64) -> String {
    match b {
        0..1_000 => format!("{b} B"),
        1_000..1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        _ => format!("{:.1} GB", b as f64 / 1e9),
    }
}

impl TextView {
    /// A flow record reporting `bytes`: counted for the next summary, no line of its own.
    pub fn flow(&mut self, bytes: u64) {
        self.records += 1;
        self.bytes += bytes;
    }

    /// The line for one event, if it is worth one.
    pub fn line(&mut self, v: &Value) -> Option<String> {
        match v["event_type"].as_str()? {
            "alert" => {
                self.alerts += 1;
                let a = &v["alert"];
                let iot = &v["iot"];
                let subject = match iot.get("device") {
                    Some(d) => who(d),
                    None => "sensor".to_string(),
                };
                let what = a["signature"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("kettlewatch: ");
                let blocked = if a["action"] == "blocked" {
                    " BLOCKED"
                } else {
                    ""
                };
                let to = destination(v)
                    .map(|d| format!(" -> {d}"))
                    .unwrap_or_default();
                let name = iot["dns"]["rrname"]
                    .as_str()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                Some(format!(
                    "{}  ALERT{blocked}  {subject}: {what}{to}{name}  [{}]",
                    when(v),
                    iot["rule"]["id"].as_str().unwrap_or("?")
                ))
            }
            "device" => {
                let d = &v["iot"]["device"];
                let mac = d["mac"].as_str()?.to_string();
                let now = Seen {
                    name: d["name"]
                        .as_str()
                        .or_else(|| d["hostname"].as_str())
                        .unwrap_or("")
                        .to_string(),
                    category: d["category"].as_str().unwrap_or("unknown").to_string(),
                };
                let before = self.devices.get(&mac);
                if before == Some(&now) {
                    return None;
                }
                let what = match before {
                    None => "seen".to_string(),
                    Some(b) if b.category != now.category => {
                        format!("now {} (was {})", now.category, b.category)
                    }
                    Some(_) => "renamed".to_string(),
                };
                let addr = d["addresses"][0]
                    .as_str()
                    .map(|a| format!(", {a}"))
                    .unwrap_or_default();
                let line = format!("{}  DEVICE {}: {what}{addr}", when(v), who(d));
                self.devices.insert(mac, now);
                Some(line)
            }
            "flow" => {
                let f = &v["flow"];
                self.flow(
                    f["bytes_toserver"].as_u64().unwrap_or(0)
                        + f["bytes_toclient"].as_u64().unwrap_or(0),
                );
                None
            }
            "stats" => {
                let s = &v["stats"];
                let line = format!(
                    "{}  FLOWS  {} active, {} records ({}) since the last summary; devices {}, alerts so far {}",
                    when(v),
                    s["flow"]["active"].as_u64().unwrap_or(0),
                    self.records,
                    human_bytes(self.bytes),
                    v["iot"]["sensor"]["devices_tracked"].as_u64().unwrap_or(0),
                    self.alerts,
                );
                self.records = 0;
                self.bytes = 0;
                Some(line)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn device(category: &str) -> Value {
        json!({"timestamp": "2026-12-02T18:40:01.123456+0000", "event_type": "device",
               "iot": {"device": {"mac": "02:00:5e:10:00:12", "hostname": "kitchen-speaker",
                                  "category": category, "addresses": ["198.51.100.12"]}}})
    }

    #[test]
    fn a_device_is_said_when_it_appears_and_when_it_changes_what_it_is() {
        let mut t = TextView::default();
        assert_eq!(
            t.line(&device("unknown")).as_deref(),
            Some(
                "2026-12-02 18:40:01  DEVICE kitchen-speaker (02:00:5e:10:00:12, unknown): seen, 198.51.100.12"
            )
        );
        assert_eq!(
            t.line(&device("unknown")),
            None,
            "nothing a reader cares about changed"
        );
        let l = t.line(&device("speaker")).unwrap();
        assert!(l.contains("now speaker (was unknown)"), "{l}");
    }

    #[test]
    fn an_alert_says_who_what_where_and_which_rule() {
        let mut t = TextView::default();
        let a = json!({"timestamp": "2026-12-02T18:40:02.000000+0000", "event_type": "alert",
            "dest_ip": "203.0.113.99", "dest_port": 23, "proto": "TCP",
            "alert": {"action": "blocked", "signature": "kettlewatch: suspicious service"},
            "iot": {"device": {"mac": "02:00:5e:10:00:10", "name": "lobby-camera", "category": "camera"},
                    "rule": {"id": "suspicious_service"}}});
        assert_eq!(
            t.line(&a).as_deref(),
            Some(
                "2026-12-02 18:40:02  ALERT BLOCKED  lobby-camera (02:00:5e:10:00:10, camera): suspicious service -> 203.0.113.99:23/tcp  [suspicious_service]"
            )
        );
    }

    #[test]
    fn flows_are_summed_into_the_next_summary_and_not_printed() {
        let mut t = TextView::default();
        let f =
            json!({"event_type": "flow", "flow": {"bytes_toserver": 1500, "bytes_toclient": 0}});
        assert_eq!(t.line(&f), None);
        assert_eq!(t.line(&f), None);
        let s = json!({"timestamp": "2026-12-02T18:40:10.000000+0000", "event_type": "stats",
                       "stats": {"flow": {"active": 7}}, "iot": {"sensor": {"devices_tracked": 3}}});
        assert_eq!(
            t.line(&s).as_deref(),
            Some(
                "2026-12-02 18:40:10  FLOWS  7 active, 2 records (3.0 kB) since the last summary; devices 3, alerts so far 0"
            )
        );
        assert!(
            t.line(&s).unwrap().contains("0 records (0 B)"),
            "reset after each summary"
        );
    }
}
