//! Parsing the event stream, every line validated against the project's JSON Schema, and
//! the event types Suricata also writes against Suricata's.

use std::sync::OnceLock;

use serde_json::Value;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let path = crate::env::workspace().join("sensor-user/schema/eve.schema.json");
        let text = std::fs::read_to_string(&path).expect("read schema");
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles")
    })
}

/// Suricata's own EVE schema (`tests/fixtures/eve/schema.json`, from Suricata's
/// `etc/schema.json`) with one change: the top-level `iot` object, which is ours.
fn suricata_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let path = crate::env::workspace().join("tests/fixtures/eve/schema.json");
        let text = std::fs::read_to_string(&path).expect("read Suricata's schema");
        let mut schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        schema["properties"]["iot"] = serde_json::json!({"type": "object"});
        jsonschema::options()
            .build(&schema)
            .expect("Suricata's schema compiles")
    })
}

/// Checks one event against the project's schema, and an `alert`, `flow` or `stats`
/// event against Suricata's too; panics with the line and every violation.
pub fn validate(v: &Value) {
    let mut errors: Vec<String> = validator()
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if matches!(v["event_type"].as_str(), Some("alert" | "flow" | "stats")) {
        errors.extend(
            suricata_validator()
                .iter_errors(v)
                .map(|e| format!("Suricata's schema: {} at {}", e, e.instance_path())),
        );
    }
    assert!(
        errors.is_empty(),
        "event violates the schema:\n{v}\n{}",
        errors.join("\n")
    );
}

/// Parses JSON Lines, validating each; panics naming the line that is not valid.
pub fn parse<S: AsRef<str>>(lines: &[S]) -> Vec<Value> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.as_ref().trim().is_empty())
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l.as_ref())
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {}", i + 1, l.as_ref()));
            validate(&v);
            v
        })
        .collect()
}

/// Events of one type.
pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

/// The alerts of one rule id.
pub fn alerts<'a>(evs: &'a [Value], id: &str) -> Vec<&'a Value> {
    of_type(evs, "alert")
        .into_iter()
        .filter(|a| a["iot"]["rule"]["id"] == id)
        .collect()
}

/// Our counters (`iot`) of the last stats line among raw output lines, if any (for the
/// benchmarks, which report rather than assert).
pub fn last_stats_line<S: AsRef<str>>(lines: &[S]) -> Option<Value> {
    lines
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l.as_ref()).ok())
        .find(|v| v["event_type"] == "stats")
        .map(|v| v["iot"].clone())
}

/// Our counters (`iot`: kernel, sensor, policy, ...) of the last `stats` event.
pub fn last_stats(evs: &[Value]) -> Value {
    of_type(evs, "stats").last().expect("a stats event")["iot"].clone()
}

/// The last `device` event of `mac` (written as events write it: lowercase, colons);
/// panics naming the MAC when there is none.
pub fn last_device(evs: &[Value], mac: impl AsRef<str>) -> &Value {
    let mac = mac.as_ref();
    of_type(evs, "device")
        .into_iter()
        .rev()
        .find(|d| d["iot"]["device"]["mac"] == mac)
        .unwrap_or_else(|| panic!("no device event for {mac}"))
}

/// The first `device` event of `mac`; panics naming the MAC when there is none.
pub fn first_device(evs: &[Value], mac: impl AsRef<str>) -> &Value {
    let mac = mac.as_ref();
    of_type(evs, "device")
        .into_iter()
        .find(|d| d["iot"]["device"]["mac"] == mac)
        .unwrap_or_else(|| panic!("no device event for {mac}"))
}
