//! The metrics endpoint (`[metrics] listen`), scraped by a real Prometheus in the lab: it
//! sees the sensor up, its frames, and its alerts by rule, with no per-device label.

use std::time::Duration;

use kettlewatch_tests::{
    env,
    lab::{FAST_CONFIG, Lab},
    prometheus::{Prometheus, http_get},
};

const METRICS: &str = "127.0.0.1:9560";

#[test]
fn prometheus_scrapes_frames_and_alerts_by_rule_and_no_device_appears_in_a_label() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("prometheus") {
        return;
    }
    let lab = Lab::build(1);
    let me = lab.devices[0].mac.to_string();
    let kev = env::fixtures().join("vulns/kev-slice.json");
    let config = format!(
        "{FAST_CONFIG}[metrics]\nlisten = \"{METRICS}\"\n[baseline]\nmode = \"monitor\"\n[[policy]]\nname = \"cams\"\ndevices = [\"{me}\"]\nallow = [\"203.0.113.10:4242/udp\"]\n[[vulns.feed]]\npath = \"{}\"\nformat = \"kev\"\n",
        kev.display()
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    let prom = Prometheus::start(&lab.gw, "kettlewatch", &[METRICS]);
    // The device's first frame makes it known and compiles its policy; then one allowed
    // and one unexpected destination.
    lab.udp(0, 0, "198.51.100.1:9", b"hello");
    std::thread::sleep(Duration::from_millis(500));
    lab.udp(0, 0, "203.0.113.10:4242", b"hello");
    lab.udp(0, 0, "203.0.113.20:4242", b"hello");
    let wait = Duration::from_secs(30);
    let up = prom.wait_for("up{job=\"kettlewatch\"}", |v| v == 1.0, wait);
    assert_eq!(
        up,
        Some(1.0),
        "Prometheus scraped the sensor: {}",
        prom.query("up")
    );
    let alerts = prom.wait_for(
        "kettlewatch_alerts_total{rule=\"unexpected_destination\"}",
        |v| v >= 1.0,
        wait,
    );
    assert_eq!(alerts, Some(1.0), "one unexpected destination");
    let frames = prom.wait_for("kettlewatch_frames_total", |v| v >= 3.0, wait);
    assert!(frames.is_some_and(|f| f >= 3.0), "frames: {frames:?}");
    assert_eq!(
        prom.value("kettlewatch_alerts_total{rule=\"threat_intel_ip\"}"),
        Some(0.0),
        "every rule is there from the start, so rate() works on the first alert"
    );
    assert_eq!(
        prom.value("kettlewatch_build_info{version=\"0.1.0\"}"),
        Some(1.0)
    );
    // A feed's age by its own date (2025-02-13), so a stale feed can be alerted on.
    let age = prom.value(&format!(
        "kettlewatch_vuln_feed_age_days{{feed=\"{}\"}}",
        kev.display()
    ));
    assert!(age.is_some_and(|a| a > 600.0), "feed age: {age:?}");
    // What Prometheus read, as text: conventions, and no MAC or address in any label.
    let text = http_get(&lab.gw.name, METRICS, "/metrics").expect("GET /metrics");
    assert!(
        text.contains("# TYPE kettlewatch_drops_total counter"),
        "{text}"
    );
    assert!(
        text.contains("kettlewatch_drops_total{reason=\"ringbuf_full\"} 0"),
        "{text}"
    );
    assert!(
        !text.to_lowercase().contains(&me),
        "a device in a label:\n{text}"
    );
    assert!(
        !text.contains("198.51.100."),
        "an address in a label:\n{text}"
    );
    assert!(
        http_get(&lab.gw.name, METRICS, "/").is_none(),
        "only /metrics answers 200"
    );
    drop(prom);
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
}
