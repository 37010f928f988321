//! An operator corrects a running sensor from the command line (`store/actions.rs`, the
//! engine's `take_actions`): a category and name set by hand reach the device events
//! within seconds as `category_source: "operator"`; a rule muted for one device and
//! destination still raises its alert, marked and counted, while the same rule for
//! another destination is untouched; the audit trail says who did what; bad input is
//! refused with what would be accepted.

use std::{path::Path, process::Command, time::Duration};

use kettlewatch_tests::{
    env::{self, TempDir},
    events,
    lab::{FAST_CONFIG, Lab},
};
use serde_json::Value;

fn kw(state: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env::kettlewatch())
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

/// A one-device lab, its device's MAC, and a state directory for the sensor (the
/// directory lives as long as the guard).
fn lab_with_state() -> (Lab, String, TempDir, std::path::PathBuf) {
    let lab = Lab::build(1);
    let me = lab.devices[0].mac.to_string();
    let dir = TempDir::new();
    let state = dir.join("state");
    (lab, me, dir, state)
}

/// The sensor in monitor mode over `state`, with `extra` configuration, the lab's device
/// under a policy that allows one destination (203.0.113.10:4242/udp), which it has
/// reached and been reported for.
fn watched_under_policy(
    lab: &Lab,
    me: &str,
    state: &Path,
    extra: &str,
) -> (TempDir, kettlewatch_tests::proc::Sensor) {
    let config = format!(
        "{FAST_CONFIG}{extra}[baseline]\nmode = \"monitor\"\n\n[[policy]]\nname = \"cams\"\ndevices = [\"{me}\"]\nallow = [\"203.0.113.10:4242/udp\"]\n"
    );
    let (dir, sensor) = lab.watch(&config, &["--state-dir", state.to_str().unwrap()]);
    lab.udp(0, 0, "203.0.113.10:4242", b"hello");
    assert!(
        sensor
            .wait_for_line(
                |l| l.contains("\"event_type\":\"device\"") && l.contains(me),
                env::slow(Duration::from_secs(10))
            )
            .is_some(),
        "the device is seen"
    );
    (dir, sensor)
}

/// The alert history (`kettlewatch alerts`) keeps an `unexpected_destination` alert to
/// `dest`, marked muted.
fn assert_muted_in_history(state: &Path, dest: &str) {
    let hist = kw(
        state,
        &["alerts", "--json", "--rule", "unexpected_destination"],
    );
    let kept: Vec<Value> = String::from_utf8_lossy(&hist.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        kept.iter()
            .any(|a| a["dest_ip"] == dest && a["iot"]["rule"]["muted"] == true),
        "the history keeps the alert to {dest}, marked muted: {kept:#?}"
    );
}

#[test]
fn a_category_set_and_a_rule_muted_from_the_command_line_reach_the_running_sensor() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let (lab, me, _state_dir, state) = lab_with_state();
    let (_dir, mut sensor) = watched_under_policy(&lab, &me, &state, "");

    // Bad input says what is accepted, and changes nothing.
    let bad = kw(&state, &["device", "set", &me, "--category", "toaster"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("not a category") && err.contains("printer"),
        "{err}"
    );
    let bad = kw(&state, &["mute", &me, "--rule", "nope"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a rule"));

    let set = kw(
        &state,
        &[
            "device",
            "set",
            &me,
            "--category",
            "printer",
            "--name",
            "hall printer",
            "--by",
            "alice",
        ],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let line = sensor
        .wait_for_line(
            |l| {
                l.contains("\"category_source\":\"operator\"")
                    && l.contains("\"event_type\":\"device\"")
            },
            env::slow(Duration::from_secs(10)),
        )
        .expect("the override reaches the device events within seconds");
    let d: Value = serde_json::from_str(&line).unwrap();
    let dev = &d["iot"]["device"];
    assert_eq!(dev["category"], "printer");
    // `kettlewatch devices` says who set the category (the store is written with the
    // event's batch, so within a poll).
    let row_of = |state: &std::path::Path, want: &[&str]| {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let table = String::from_utf8(kw(state, &["devices"]).stdout).unwrap();
            let row = table.lines().find(|l| l.starts_with(me.as_str()));
            if row.is_some_and(|r| want.iter().all(|w| r.contains(w))) {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "{want:?} not in: {table}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    row_of(&state, &[" printer ", " operator "]);
    assert_eq!(dev["name"], "hall printer");
    assert_eq!(dev["set_by"], "alice");
    assert_eq!(
        dev["inventory_status"], "unknown",
        "an override is not a declaration"
    );

    let mute = kw(
        &state,
        &[
            "mute",
            &me,
            "--rule",
            "unexpected_destination",
            "--dest",
            "203.0.113.20",
            "--for",
            "1h",
            "--by",
            "alice",
        ],
    );
    assert!(
        mute.status.success(),
        "{}",
        String::from_utf8_lossy(&mute.stderr)
    );
    sensor.wait_for_log("operator actions (generation 2)", Duration::from_secs(10));
    lab.udp(0, 0, "203.0.113.20:4242", b"hello"); // unexpected, muted
    lab.udp(0, 0, "203.0.113.30:4242", b"hello"); // unexpected, not muted
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let unexpected = events::alerts(&evs, "unexpected_destination");
    let by_dest = |ip: &str| {
        unexpected
            .iter()
            .find(|a| a["dest_ip"] == ip)
            .unwrap_or_else(|| panic!("no alert for {ip}: {unexpected:#?}"))
    };
    assert_eq!(by_dest("203.0.113.20")["iot"]["rule"]["muted"], true);
    assert!(
        by_dest("203.0.113.30")["iot"]["rule"]
            .get("muted")
            .is_none()
    );
    assert_eq!(events::last_stats(&evs)["sensor"]["alerts_muted"], 1);

    // The history keeps the muted alert, marked; the audit trail says who did what.
    assert_muted_in_history(&state, "203.0.113.20");
    // The device's record names the policy that applies and what it allows (the
    // console's device page lists them).
    let devices = String::from_utf8(kw(&state, &["devices", "--json"]).stdout).unwrap();
    let rec: Value = devices
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|d| d["mac"] == me)
        .unwrap_or_else(|| panic!("{devices}"));
    assert_eq!(
        rec["declared_rules"],
        serde_json::json!(["203.0.113.10:4242/udp"])
    );
    assert!(
        rec["policies"].as_array().unwrap().contains(&"cams".into()),
        "{rec}"
    );
    let audit = String::from_utf8(kw(&state, &["audit"]).stdout).unwrap();
    let rows: Vec<&str> = audit.lines().filter(|l| l.contains("alice")).collect();
    assert_eq!(rows.len(), 2, "{audit}");
    assert!(
        rows[0].contains("mute") && rows[0].contains("dest=203.0.113.20"),
        "{audit}"
    );
    assert!(
        rows[1].contains("set") && rows[1].contains("category=printer"),
        "{audit}"
    );
}

#[test]
fn a_destination_rejected_is_never_learned_and_one_accepted_after_learning_is_allowed() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let (lab, me, _state_dir, state) = lab_with_state();
    // Decided before the sensor starts: taken in at its first batch.
    let reject = kw(
        &state,
        &[
            "baseline",
            "reject",
            &me,
            "203.0.113.40:4242/udp",
            "--by",
            "bob",
        ],
    );
    assert!(
        reject.status.success(),
        "{}",
        String::from_utf8_lossy(&reject.stderr)
    );
    let bad = kw(
        &state,
        &["baseline", "accept", &me, "203.0.113.40:99999/udp"],
    );
    assert!(!bad.status.success(), "a port out of range is refused");
    // Learning runs from the device's first frame: with 2 s, a loaded CI run once saw the
    // second destination arrive after it ended.
    let config = format!("{FAST_CONFIG}[baseline]\nmode = \"learn\"\nlearn_for = \"5s\"\n");
    let (_dir, sensor) = lab.watch(&config, &["--state-dir", state.to_str().unwrap()]);
    lab.udp(0, 0, "203.0.113.40:4242", b"hello"); // rejected: not learned
    lab.udp(0, 0, "203.0.113.41:4242", b"hello"); // learned
    let switched = sensor.wait_for_line(
        |l| l.contains("\"event_type\":\"stats\"") && l.contains("\"mode\":\"monitor\""),
        env::slow(Duration::from_secs(15)),
    );
    assert!(switched.is_some(), "a stats event says learning ended");
    let accept = kw(
        &state,
        &[
            "baseline",
            "accept",
            &me,
            "203.0.113.42:4242/udp",
            "--by",
            "bob",
        ],
    );
    assert!(
        accept.status.success(),
        "{}",
        String::from_utf8_lossy(&accept.stderr)
    );
    let mut sensor = sensor;
    sensor.wait_for_log("operator actions (generation 2)", Duration::from_secs(10));
    lab.udp(0, 0, "203.0.113.40:4242", b"hello");
    lab.udp(0, 0, "203.0.113.41:4242", b"hello");
    lab.udp(0, 0, "203.0.113.42:4242", b"hello");
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    // The accepted destination's first flow after learning is no alert; the flows are
    // judged by what the baseline holds: the rejected one is unexpected now.
    let a = events::alerts(&evs, "unexpected_destination");
    assert!(a.iter().all(|x| x["dest_ip"] != "203.0.113.42"), "{a:#?}");
    let verdict = |ip: &str| {
        events::of_type(&evs, "flow")
            .into_iter()
            .rev()
            .find(|f| f["dest_ip"] == ip)
            .unwrap_or_else(|| panic!("no flow to {ip}"))["iot"]["flow"]["verdict"]
            .clone()
    };
    assert_eq!(verdict("203.0.113.40"), "unexpected");
    assert_eq!(verdict("203.0.113.41"), "allowed");
    assert_eq!(verdict("203.0.113.42"), "allowed");
    assert_eq!(
        events::last_stats(&evs)["policy"]["rejected_not_learned"],
        1
    );
    let show = String::from_utf8(kw(&state, &["baseline", "show"]).stdout).unwrap();
    assert!(
        show.contains("203.0.113.41:4242/udp") && show.contains("203.0.113.42:4242/udp"),
        "{show}"
    );
    assert!(!show.contains("203.0.113.40"), "{show}");
    let audit = String::from_utf8(kw(&state, &["audit", "--device", &me]).stdout).unwrap();
    assert!(
        audit.contains("reject") && audit.contains("accept"),
        "{audit}"
    );
}

/// A device an operator puts under investigation, with `[states] investigating =
/// "enforce"`, is confined at once to what it was allowed: in the middle of its learning
/// window, a new destination is dropped in the kernel (not learned), a learned one still
/// passes; taken out of the state, it is back in its learning window.
#[test]
fn a_device_put_under_investigation_is_enforced_and_taken_out_learns_again() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let (lab, me, _state_dir, state) = lab_with_state();
    let config = format!(
        "{FAST_CONFIG}[baseline]\nmode = \"learn\"\nlearn_for = \"1h\"\n\n[states]\ninvestigating = \"enforce\"\n"
    );
    let (_dir, mut sensor) = lab.watch(&config, &["--state-dir", state.to_str().unwrap()]);
    lab.udp(0, 0, "203.0.113.50:4242", b"hello"); // learned
    assert!(
        sensor
            .wait_for_line(
                |l| l.contains("\"event_type\":\"flow\"") && l.contains("203.0.113.50"),
                env::slow(Duration::from_secs(10))
            )
            .is_some(),
        "the first flow is reported"
    );
    let bad = kw(&state, &["device", "state", &me, "quarantined"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("investigating"),
        "{err}"
    );
    let set = kw(
        &state,
        &["device", "state", &me, "investigating", "--by", "carol"],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let line = sensor
        .wait_for_line(
            |l| {
                l.contains("\"event_type\":\"device\"") && l.contains("\"state\":\"investigating\"")
            },
            env::slow(Duration::from_secs(10)),
        )
        .expect("the device event says its state");
    let d: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(d["iot"]["device"]["mac"], me);
    // `kettlewatch devices` shows it in its row.
    let table = String::from_utf8(kw(&state, &["devices"]).stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(me.as_str()) && l.contains(" investigating ")),
        "{table}"
    );
    // The device's policy went to the kernel in the same batch as its event.
    lab.udp(0, 0, "203.0.113.51:4242", b"hello"); // new: dropped
    lab.udp(0, 0, "203.0.113.50:4242", b"hello"); // learned: passes
    std::thread::sleep(Duration::from_millis(1500));
    let clear = kw(&state, &["device", "state", &me, "none", "--by", "carol"]);
    assert!(clear.status.success());
    sensor.wait_for_log("operator actions (generation 2)", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    lab.udp(0, 0, "203.0.113.52:4242", b"hello"); // learning again
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let verdict = |ip: &str| {
        events::of_type(&evs, "flow")
            .into_iter()
            .rev()
            .find(|f| f["dest_ip"] == ip)
            .unwrap_or_else(|| panic!("no flow to {ip}"))["iot"]["flow"]["verdict"]
            .clone()
    };
    assert_eq!(verdict("203.0.113.51"), "blocked");
    assert_eq!(verdict("203.0.113.50"), "allowed");
    assert_eq!(verdict("203.0.113.52"), "learning");
    let stats = events::last_stats(&evs);
    assert!(
        stats["kernel"]["dropped_policy"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    let show = String::from_utf8(kw(&state, &["baseline", "show"]).stdout).unwrap();
    assert!(!show.contains("203.0.113.51"), "{show}");
    assert!(show.contains("203.0.113.52"), "{show}");
    let audit = String::from_utf8(kw(&state, &["audit", "--device", &me]).stdout).unwrap();
    let carol: Vec<&str> = audit.lines().filter(|l| l.contains("carol")).collect();
    assert!(
        carol.len() == 2 && carol[0].contains("cleared") && carol[1].contains("investigating"),
        "{audit}"
    );
}

/// The console a running sensor serves (`[console] listen`), in a real browser, in the
/// lab's gateway namespace where it listens: the devices page lists the lab's device;
/// its page's forms set its category, and the sensor's next device event says
/// `category_source: "operator"`; they mute a rule for one destination, and the next
/// alert to it is marked muted and counted while another destination's is not.
#[test]
fn the_running_sensors_console_corrects_it_from_a_browser() {
    if !env::have_root()
        || !env::have_tool("ip")
        || !env::have_tool("chromium")
        || !env::have_tool("chromedriver")
    {
        return;
    }
    let (lab, me, state_dir, state) = lab_with_state();
    let console = "[console]\nlisten = \"127.0.0.1:9561\"\n\n";
    let (_dir, mut sensor) = watched_under_policy(&lab, &me, &state, console);
    let b =
        kettlewatch_tests::webdriver::Browser::start_in(&state_dir.join("chromium"), Some(&lab.gw));
    b.open("http://127.0.0.1:9561/");
    b.wait_for(
        |src| src.contains(&format!("data-mac=\"{me}\"")),
        Duration::from_secs(10),
    );
    b.click(&format!("tr[data-mac=\"{me}\"] a"));
    b.wait_for(
        |src| src.contains("id=\"identity\""),
        Duration::from_secs(5),
    );
    assert_eq!(b.url(), format!("http://127.0.0.1:9561/device/{me}"));

    b.click("#set select[name=category] option[value=printer]");
    b.type_into("#set input[name=by]", "dana");
    b.click("#set button");
    let line = sensor
        .wait_for_line(
            |l| {
                l.contains("\"event_type\":\"device\"")
                    && l.contains("\"category_source\":\"operator\"")
            },
            env::slow(Duration::from_secs(10)),
        )
        .expect("the next device event carries the operator's category");
    let d: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(d["iot"]["device"]["category"], "printer");
    assert_eq!(d["iot"]["device"]["set_by"], "dana");

    b.click("#mute select[name=rule] option[value=unexpected_destination]");
    b.type_into("#mute input[name=dest]", "203.0.113.20");
    b.type_into("#mute input[name=by]", "dana");
    b.click("#mute button");
    b.wait_for(|src| src.contains("Muted rules"), Duration::from_secs(5));
    sensor.wait_for_log("operator actions (generation 2)", Duration::from_secs(10));
    lab.udp(0, 0, "203.0.113.20:4242", b"hello"); // unexpected, muted
    lab.udp(0, 0, "203.0.113.30:4242", b"hello"); // unexpected, not muted
    std::thread::sleep(Duration::from_millis(1500));
    drop(b);
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let unexpected = events::alerts(&evs, "unexpected_destination");
    let muted = |ip: &str| {
        unexpected
            .iter()
            .find(|a| a["dest_ip"] == ip)
            .unwrap_or_else(|| panic!("no alert for {ip}: {unexpected:#?}"))["iot"]["rule"]
            .get("muted")
            .cloned()
    };
    assert_eq!(muted("203.0.113.20"), Some(Value::Bool(true)));
    assert_eq!(muted("203.0.113.30"), None);
    assert_eq!(events::last_stats(&evs)["sensor"]["alerts_muted"], 1);
}

/// `[output] muted_alerts = "history"`: a muted alert is kept in the history and counted,
/// but not written to the stream; an alert nobody muted still is.
#[test]
fn with_muted_alerts_history_a_muted_alert_stays_out_of_the_stream() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let (lab, me, _state_dir, state) = lab_with_state();
    let (_dir, mut sensor) = watched_under_policy(
        &lab,
        &me,
        &state,
        "[output]\nmuted_alerts = \"history\"\n\n",
    );
    let mute = kw(
        &state,
        &[
            "mute",
            &me,
            "--rule",
            "unexpected_destination",
            "--dest",
            "203.0.113.20",
        ],
    );
    assert!(mute.status.success(), "{mute:?}");
    sensor.wait_for_log("operator actions (generation 1)", Duration::from_secs(10));
    lab.udp(0, 0, "203.0.113.20:4242", b"hello"); // unexpected, muted
    lab.udp(0, 0, "203.0.113.30:4242", b"hello"); // unexpected, not muted
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let streamed: Vec<&str> = events::alerts(&evs, "unexpected_destination")
        .iter()
        .filter_map(|a| a["dest_ip"].as_str())
        .collect();
    assert_eq!(
        streamed,
        ["203.0.113.30"],
        "only the unmuted one is streamed"
    );
    assert_eq!(events::last_stats(&evs)["sensor"]["alerts_muted"], 1);
    assert_muted_in_history(&state, "203.0.113.20");
}
