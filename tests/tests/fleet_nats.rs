//! `[output.nats]` against real NATS servers (Debian's `nats-server`, JetStream on) in
//! the test's own namespace: a three-node cluster whose stream leader is killed while
//! the sensor publishes loses no line and stores none twice; a broker that was down gets
//! every spooled line afterwards, in order, also those of a sensor killed with -9 while
//! it waited; the device bucket lists every device, and
//! `kettlewatch devices --nats` prints them with their gateway; a broker that wants TLS,
//! a client certificate and a password takes the lines from a sensor configured so, and
//! a wrong password keeps them spooled; `kettlewatch console --nats` serves every
//! gateway's devices and alerts, read-only; the publish latency a gateway reports
//! counts the time a line waited for the broker; `event_types` keeps flows out of the
//! stream and devices in the bucket, and a deleted or purged device is not listed.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use kettlewatch_tests::{
    env::{self, TempDir},
    events,
    frames::{cat, eth, ipv4, udp},
    nats::{Nats, Secure},
};
use sensor_common::MacAddr;
use serde_json::Value;

const GATEWAY: &str = "02:00:5e:00:00:01";
const DEVICE: MacAddr = MacAddr([0x02, 0, 0x5e, 0, 0, 0x17]);

fn prerequisites() -> bool {
    env::have_root() && env::have_tool("nats-server")
}

/// A capture of one device opening `flows` UDP flows (one destination port each) over
/// `flows` milliseconds: at the end of the replay, one flow record each.
fn many_flows(path: &Path, flows: u32) {
    let f = std::fs::File::create(path).expect("create capture");
    let mut w = pcap_file::pcap::PcapWriter::new(f).expect("pcap header");
    let gw: MacAddr = GATEWAY.parse().unwrap();
    for i in 0..flows {
        let frame = cat(&[
            &eth(gw, DEVICE, &[], 0x0800),
            &ipv4(
                [198, 51, 100, 23],
                [203, 0, 113, 10],
                17,
                &[],
                0,
                &udp(40000, 1024 + (i % 60000) as u16, &[0; 18]),
            ),
        ]);
        let ts = Duration::from_micros(1_700_000_000_000_000 + u64::from(i) * 1000);
        w.write_packet(&pcap_file::pcap::PcapPacket::new(
            ts,
            frame.len() as u32,
            &frame,
        ))
        .expect("write packet");
    }
}

fn config(dir: &TempDir, name: &str, out: &Path, nats: &str) -> std::path::PathBuf {
    let path = dir.join(&format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[sensor]\nname = \"{name}\"\nmax_flows = 32768\n[output]\npath = \"{}\"\n[output.nats]\n{nats}\n",
            out.display()
        ),
    )
    .expect("write config");
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Checks each message's subject against its line, and returns the lines of `host`.
fn published_by(messages: &[(String, String)], host: &str) -> Vec<String> {
    let prefix = format!("kettlewatch.{host}.");
    messages
        .iter()
        .filter(|(s, _)| s.starts_with(&prefix))
        .map(|(subject, line)| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("message on {subject} is not JSON ({e}): {line}"));
            assert_eq!(
                subject,
                &format!("{prefix}{}", v["event_type"].as_str().unwrap()),
                "subject is kettlewatch.<host>.<event_type>"
            );
            line.clone()
        })
        .collect()
}

/// The stream holds exactly the lines written, in order; a failure says where they part.
fn same_lines(stored: &[String], written: &[String]) {
    if stored == written {
        return;
    }
    let at = stored
        .iter()
        .zip(written)
        .position(|(a, b)| a != b)
        .unwrap_or(stored.len().min(written.len()));
    let cut =
        |l: Option<&String>| l.map_or("(none)".to_string(), |l| l.chars().take(300).collect());
    panic!(
        "stream holds {} lines, {} were written; first difference at line {at}:\n stored:  {}\n written: {}",
        stored.len(),
        written.len(),
        cut(stored.get(at)),
        cut(written.get(at)),
    );
}

fn multiset(lines: &[String]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l.as_str()).or_default() += 1;
    }
    m
}

#[test]
fn a_cluster_whose_stream_leader_is_killed_mid_stream_loses_no_line_and_stores_none_twice() {
    if !prerequisites() {
        return;
    }
    let mut nats = Nats::new("nc", 3);
    nats.start_all();
    nats.wait_ready(Duration::from_secs(30));
    let work = TempDir::new();
    let cap = work.join("flows.pcap");
    many_flows(&cap, 20_000);
    let urls: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let nats_cfg = format!(
        "url = [{}]\nreplicas = 3\ndrain_timeout = \"90s\"",
        urls.join(", ")
    );
    let replay = |cfg: &Path| {
        nats.ns
            .cmd(env::kettlewatch().to_str().unwrap())
            .args(["replay", "--gateway-mac", GATEWAY, "--config"])
            .arg(cfg)
            .arg(&cap)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kettlewatch replay")
    };
    // A first sensor makes the stream and the device bucket (three replicas each) and
    // fills them; they have settled, every replica current, before the run under test.
    // A group whose third member is still joining when its leader dies has no quorum to
    // elect another (JetStream's rule for any client): killed that early, the leader
    // took the stream down with it in two of this machine's full test runs.
    let warmup = config(&work, "gw-warmup", &work.join("warmup.json"), &nats_cfg);
    let warm = replay(&warmup).wait_with_output().expect("warm-up replay");
    assert!(
        warm.status.success(),
        "warm-up replay failed: {}",
        String::from_utf8_lossy(&warm.stderr)
    );
    let end = Instant::now() + Duration::from_secs(60);
    while !(nats.settled("KETTLEWATCH") && nats.settled("KV_kettlewatch-devices")) {
        assert!(
            Instant::now() < end,
            "the stream and bucket never settled:\n{}",
            nats.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = nats.count("KETTLEWATCH");
    let out = work.join("eve.json");
    let cfg = config(&work, "gw-cluster", &out, &nats_cfg);
    let mut sensor = replay(&cfg);
    // Read while it runs: a broker failover makes the publisher log, and a pipe nobody
    // reads fills at 64 KiB and stops the sensor mid-write.
    let stderr = sensor.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    // Mid-stream: the stream holds some of this run's lines, not all.
    let end = Instant::now() + Duration::from_secs(60);
    let mut at_kill = 0;
    while Instant::now() < end {
        at_kill = nats.count("KETTLEWATCH") - before;
        if at_kill > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(at_kill > 0, "nothing reached the stream:\n{}", nats.logs());
    let leader = nats
        .leader("KETTLEWATCH")
        .expect("a replicated stream has a leader");
    let i = nats.index(&leader).expect("the leader is one of ours");
    nats.kill(i);
    let status = sensor.wait().expect("wait for replay");
    let stderr = stderr.join().expect("the stderr reader");
    assert!(status.success(), "replay failed: {stderr}");
    let written = lines(&out);
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("NATS")).collect();
    eprintln!(
        "leader {leader} killed with {at_kill} of {} lines stored; the sensor said:\n{}",
        written.len(),
        said.join("\n")
    );
    assert!(
        at_kill < written.len() as u64,
        "the leader died after the last line was stored ({at_kill} of {}): not mid-stream",
        written.len()
    );
    let stored = published_by(&nats.messages("KETTLEWATCH"), "gw-cluster");
    assert_eq!(
        stored.len(),
        written.len(),
        "lines written {} vs stored {} (leader {leader} killed at {at_kill}); sensor said: {stderr}",
        written.len(),
        stored.len()
    );
    assert_eq!(
        multiset(&stored),
        multiset(&written),
        "the stream holds exactly the lines written, each once"
    );
    assert!(
        written.len() > 20_000,
        "one flow record per flow: {}",
        written.len()
    );
}

#[test]
fn a_broker_that_was_down_gets_every_spooled_line_in_order_and_the_fleet_lists_the_devices() {
    if !prerequisites() {
        return;
    }
    let mut nats = Nats::new("nd", 1);
    let work = TempDir::new();
    let state = work.join("state");
    let fixtures = env::fixtures().join("captures/ndpi");
    let url = format!("url = \"{}\"", nats.urls()[0]);
    // The broker is down for the whole first run: its lines wait in the spool.
    let first = work.join("first.json");
    let cfg = config(
        &work,
        "gw-edge",
        &first,
        &format!("{url}\ndrain_timeout = \"1s\""),
    );
    let run = |nats: &Nats, cfg: &Path, capture: &str| {
        let o = nats
            .ns
            .cmd(env::kettlewatch().to_str().unwrap())
            .args(["replay", "--config"])
            .arg(cfg)
            .arg("--state-dir")
            .arg(&state)
            .arg(fixtures.join(capture))
            .output()
            .expect("run kettlewatch replay");
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "replay failed: {stderr}");
        stderr
    };
    let said = run(&nats, &cfg, "tplink_shp.pcap");
    assert!(
        said.contains("wait in the spool"),
        "the sensor says where the lines are: {said}"
    );
    let down = events::parse(&lines(&first));
    assert_eq!(events::last_stats(&down)["nats"]["connected"], false);
    // Still down, and this time the sensor is killed with -9 while it waits for the
    // broker: what it had spooled is not lost.
    let killed = work.join("killed.json");
    let cfg = config(
        &work,
        "gw-edge",
        &killed,
        &format!("{url}\ndrain_timeout = \"300s\""),
    );
    let mut child = nats
        .ns
        .cmd(env::kettlewatch().to_str().unwrap())
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--state-dir")
        .arg(&state)
        .arg(fixtures.join("xiaomi.pcap"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kettlewatch replay");
    let end = Instant::now() + Duration::from_secs(60);
    // The final stats line is the last the stream gets: after it the sensor only drains.
    while Instant::now() < end
        && !std::fs::read_to_string(&killed)
            .unwrap_or_default()
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"event_type\":\"stats\""))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().expect("poll replay").is_none(),
        "the replay should still be waiting for the broker"
    );
    child.kill().expect("kill -9 the sensor");
    child.wait().expect("reap the sensor");
    // Back up: the next run sends the spool first, then its own lines.
    nats.start(0);
    nats.wait_ready(Duration::from_secs(30));
    let second = work.join("second.json");
    let cfg = config(
        &work,
        "gw-edge",
        &second,
        &format!("{url}\ndrain_timeout = \"60s\""),
    );
    run(&nats, &cfg, "tuya_lp.pcap");
    let mut written = lines(&first);
    written.extend(lines(&killed));
    written.extend(lines(&second));
    let stored = published_by(&nats.messages("KETTLEWATCH"), "gw-edge");
    same_lines(&stored, &written);

    // The bucket: every device either run saw, its latest profile, keyed by gateway.
    let evs = events::parse(&written);
    let macs: std::collections::BTreeSet<String> = events::of_type(&evs, "device")
        .iter()
        .map(|d| d["iot"]["device"]["mac"].as_str().unwrap().to_string())
        .collect();
    assert!(!macs.is_empty());
    let bucket = nats.bucket("kettlewatch-devices");
    let keys: std::collections::BTreeSet<String> = bucket.keys().cloned().collect();
    let want: std::collections::BTreeSet<String> = macs
        .iter()
        .map(|m| format!("gw-edge.{}", m.replace(':', "-")))
        .collect();
    assert_eq!(keys, want, "one key per device: <host>.<mac-with-dashes>");
    let listed = nats
        .ns
        .cmd(env::kettlewatch().to_str().unwrap())
        .args(["devices", "--json", "--nats", &nats.urls()[0]])
        .output()
        .expect("run kettlewatch devices --nats");
    assert!(
        listed.status.success(),
        "devices --nats failed: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let rows: Vec<Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let listed_macs: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["host"], "gw-edge");
            r["mac"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(listed_macs, macs);
    for mac in &macs {
        let last = events::last_device(&evs, mac);
        let row = rows.iter().find(|r| r["mac"] == mac.as_str()).unwrap();
        assert_eq!(
            row["category"], last["iot"]["device"]["category"],
            "the bucket holds {mac}'s latest category"
        );
    }
    let table = nats
        .ns
        .cmd(env::kettlewatch().to_str().unwrap())
        .args(["devices", "--nats", &nats.urls()[0]])
        .output()
        .expect("run kettlewatch devices --nats");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains(&format!("{} devices on 1 gateways", macs.len())),
        "{text}"
    );
}

#[test]
fn a_broker_with_tls_and_a_password_takes_the_lines_and_a_wrong_password_keeps_them_spooled() {
    if !prerequisites() || !env::have_tool("openssl") {
        return;
    }
    let work = TempDir::new();
    let mut nats = Nats::new("nt", 1);
    let secure = Secure::make(&work);
    let tls = format!(
        "url = \"{}\"\ntls_required = true\ntls_ca = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nuser = \"{}\"\n",
        nats.urls()[0],
        secure.ca.display(),
        secure.client.0.display(),
        secure.client.1.display(),
        secure.user.0
    );
    nats.secure(secure);
    nats.start(0);
    nats.wait_ready(Duration::from_secs(30));
    let state = work.join("state");
    let capture = env::fixtures().join("captures/ndpi/mqtt.pcap");
    let run = |name: &str, password: &str, drain: &str| {
        let out = work.join(&format!("{name}.json"));
        let cfg = config(
            &work,
            "gw-tls",
            &out,
            &format!("{tls}password = \"{password}\"\ndrain_timeout = \"{drain}\""),
        );
        let o = nats
            .ns
            .cmd(env::kettlewatch().to_str().unwrap())
            .args(["replay", "--config"])
            .arg(&cfg)
            .arg("--state-dir")
            .arg(&state)
            .arg(&capture)
            .output()
            .expect("run kettlewatch replay");
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "replay failed: {stderr}");
        (lines(&out), stderr)
    };
    let (refused, said) = run("refused", "not-the-password", "2s");
    assert!(
        said.to_lowercase().contains("authorization"),
        "the sensor says the broker refused it: {said}"
    );
    assert!(said.contains("wait in the spool"), "{said}");
    assert_eq!(
        nats.count("KETTLEWATCH"),
        0,
        "nothing got in without the password"
    );
    let (taken, said) = run("taken", "s3cret-for-tests", "60s");
    assert!(!said.contains("wait in the spool"), "{said}");
    let mut written = refused;
    written.extend(taken);
    same_lines(
        &published_by(&nats.messages("KETTLEWATCH"), "gw-tls"),
        &written,
    );
}

/// `kettlewatch console --nats`: one place to look at a fleet. Two gateways replay
/// their captures into one broker; the console started over the broker lists every
/// device of both with its gateway, the alerts both published, a device's page without
/// any form (it is read-only, and a posted form is refused), and a third replay's
/// devices and alerts within seconds, without a restart.
#[test]
fn a_fleet_console_shows_every_gateways_devices_and_alerts_read_only() {
    if !prerequisites() {
        return;
    }
    let mut nats = Nats::new("nf", 1);
    nats.start_all();
    nats.wait_ready(Duration::from_secs(30));
    let work = TempDir::new();
    let fixtures = env::fixtures().join("captures/ndpi");
    let url = nats.urls()[0].clone();
    let replay = |nats: &Nats, gateway: &str, capture: &str| {
        let cfg = config(
            &work,
            gateway,
            &work.join(&format!("{gateway}-{capture}.json")),
            &format!("url = \"{url}\"\ndrain_timeout = \"30s\""),
        );
        let o = nats
            .ns
            .cmd(env::kettlewatch().to_str().unwrap())
            .args(["replay", "--config"])
            .arg(&cfg)
            .arg("--state-dir")
            .arg(work.join(&format!("state-{gateway}")))
            .arg(fixtures.join(capture))
            .output()
            .expect("run kettlewatch replay");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    replay(&nats, "gw-a", "tplink_shp.pcap");
    replay(&nats, "gw-b", "xiaomi.pcap");

    let mut console = nats
        .ns
        .cmd(env::kettlewatch().to_str().unwrap())
        .args(["console", "--listen", "127.0.0.1:0", "--nats", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the fleet console");
    let stderr = console.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let console = Kill(console);
    let mut said = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(env::slow(Duration::from_secs(30)))
            .unwrap_or_else(|_| panic!("the console said where it listens: {said:?}"));
        if let Some(a) = line.strip_prefix("console at http://") {
            break a.trim_end_matches('/').to_string();
        }
        said.push(line);
    };
    let http = |method: &'static str, path: String| {
        let addr = addr.clone();
        nats.ns.run(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        })
    };

    // Every device in the bucket is a row, with the gateway that reported it.
    let bucket = nats.bucket("kettlewatch-devices");
    assert!(
        bucket.keys().any(|k| k.starts_with("gw-a."))
            && bucket.keys().any(|k| k.starts_with("gw-b."))
    );
    let page = http("GET", "/".into());
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    for key in bucket.keys() {
        let (gateway, mac) = key.split_once('.').unwrap();
        let mac = mac.replace('-', ":");
        let at = page
            .find(&format!("data-mac=\"{mac}\""))
            .unwrap_or_else(|| panic!("no row for {key}: {page}"));
        let row = &page[at..at + page[at..].find("</tr>").unwrap()];
        assert!(
            row.contains(&format!("<td class=\"gateway\">{gateway}</td>")),
            "{row}"
        );
    }
    assert!(
        page.contains(&format!("{} devices", bucket.len())),
        "{page}"
    );

    // The alerts both gateways published, each once.
    let messages = nats.messages("KETTLEWATCH");
    let published = |gw: &str| {
        published_by(&messages, gw)
            .iter()
            .filter(|l| l.contains("\"event_type\":\"alert\""))
            .count()
    };
    let (a, b) = (published("gw-a"), published("gw-b"));
    assert!(a > 0 && b > 0, "both gateways raised alerts: {a} {b}");
    let alerts = http("GET", "/alerts".into());
    assert_eq!(
        alerts.matches("<tr data-rule=").count(),
        a + b,
        "{said:?} {alerts}"
    );

    // A device's page says where it is and offers nothing to act with.
    let (key, _) = bucket.iter().next().unwrap();
    let (gateway, mac) = key.split_once('.').unwrap();
    let mac = mac.replace('-', ":");
    let device = http("GET", format!("/device/{mac}"));
    assert!(
        device.contains(&format!("id=\"gateway\">{gateway}</dd>"))
            && device.contains("read-only fleet view")
            && !device.contains("<form"),
        "{device}"
    );
    let posted = http("POST", format!("/device/{mac}/set"));
    assert!(posted.starts_with("HTTP/1.1 403"), "{posted}");

    // A third gateway publishes: its devices appear without a restart.
    replay(&nats, "gw-c", "tuya_lp.pcap");
    let end = Instant::now() + env::slow(Duration::from_secs(20));
    let wanted = nats.bucket("kettlewatch-devices").len();
    loop {
        let page = http("GET", "/".into());
        if page.contains(&format!("{wanted} devices"))
            && page.contains("<td class=\"gateway\">gw-c</td>")
        {
            break;
        }
        assert!(Instant::now() < end, "gw-c's devices never came: {page}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // Stopped, it leaves nothing behind: its copy of the fleet was private to it.
    let mut console = console;
    let pid = console.0.id();
    let copy = std::env::temp_dir().join(format!("kettlewatch-fleet-{pid}"));
    assert!(copy.is_dir(), "{}", copy.display());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = console.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!copy.exists(), "{} is left", copy.display());
}

/// The publish latency a gateway reports counts a line from the moment the sensor queued
/// it: lines that waited out a broker outage show the outage in the p99; lines to a
/// broker that is up show milliseconds.
#[test]
fn publish_latency_counts_the_time_a_line_waited_for_the_broker() {
    if !prerequisites() {
        return;
    }
    use sensor_user::{config::Config, emit::nats::Fleet};
    let mut nats = Nats::new("nl", 1);
    let text = format!(
        "[output.nats]\nurl = \"{}\"\ndrain_timeout = \"5s\"\n",
        nats.urls()[0]
    );
    let parse = || Config::parse(&text, "t.toml").unwrap().output.nats.unwrap();
    let (c, cfg) = (parse(), parse());
    // A gateway's fleet output, handed 20 alert lines at once.
    let twenty_alerts = |nats: &Nats, c: sensor_user::config::NatsConfig, host: &'static str| {
        let mut f = nats
            .ns
            .run(move || Fleet::start(&c, None, host, None, 1024))
            .expect("start the fleet output");
        for i in 0..20 {
            f.send("alert", format!("{{\"n\":{i}}}"));
        }
        f
    };
    let down = twenty_alerts(&nats, c, "gw-lat");
    let outage = Duration::from_secs(3);
    std::thread::sleep(outage);
    nats.start(0);
    let wait = |f: &Fleet, n: u64| {
        let end = Instant::now() + Duration::from_secs(60);
        while f.stats().published < n {
            assert!(Instant::now() < end, "{:?}\n{}", f.stats(), nats.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait(&down, 20);
    let s = down.stats();
    assert!(
        s.publish_p50_ms >= outage.as_millis() as f64 && s.publish_p99_ms >= s.publish_p50_ms,
        "lines queued before a {outage:?} outage: {s:?}"
    );
    let up = twenty_alerts(&nats, cfg, "gw-lat2");
    wait(&up, 20);
    let s = up.stats();
    assert!(
        s.publish_p50_ms > 0.0 && s.publish_p99_ms < 2_000.0,
        "lines to a broker that is up: {s:?}"
    );
}

/// `event_types` keeps flows out of the stream (the bulk of a home router's lines): the
/// stream gets exactly the written alert and device lines, and the bucket every device;
/// a device deleted or purged from the bucket is no longer listed.
#[test]
fn event_types_keeps_flows_out_of_the_stream_and_devices_in_the_bucket() {
    if !prerequisites() {
        return;
    }
    let mut nats = Nats::new("ne", 1);
    nats.start(0);
    nats.wait_ready(Duration::from_secs(30));
    let work = TempDir::new();
    let out = work.join("out.json");
    let cfg = config(
        &work,
        "gw-few",
        &out,
        &format!(
            "url = \"{}\"\nevent_types = [\"alert\", \"device\"]\ndrain_timeout = \"60s\"",
            nats.urls()[0]
        ),
    );
    let o = nats
        .ns
        .cmd(env::kettlewatch().to_str().unwrap())
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg(env::fixtures().join("captures/ndpi/tplink_shp.pcap"))
        .output()
        .expect("run kettlewatch replay");
    assert!(
        o.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let written = lines(&out);
    let evs = events::parse(&written);
    assert!(
        !events::of_type(&evs, "flow").is_empty(),
        "the file output still has every type"
    );
    let wanted: Vec<String> = written
        .iter()
        .filter(|l| {
            l.contains("\"event_type\":\"alert\"") || l.contains("\"event_type\":\"device\"")
        })
        .cloned()
        .collect();
    assert!(!wanted.is_empty());
    same_lines(
        &published_by(&nats.messages("KETTLEWATCH"), "gw-few"),
        &wanted,
    );
    let keys: std::collections::BTreeSet<String> =
        nats.bucket("kettlewatch-devices").keys().cloned().collect();
    let want: std::collections::BTreeSet<String> = events::of_type(&evs, "device")
        .iter()
        .map(|d| {
            format!(
                "gw-few.{}",
                d["iot"]["device"]["mac"]
                    .as_str()
                    .unwrap()
                    .replace(':', "-")
            )
        })
        .collect();
    assert_eq!(keys, want, "every device in the bucket");
    // A key someone deleted (a `DEL` marker) and one purged are no longer listed.
    let gone: Vec<String> = keys.iter().take(2).cloned().collect();
    assert_eq!(gone.len(), 2, "two devices to remove: {keys:?}");
    let g = gone.clone();
    nats.with_client(move |js| {
        Box::pin(async move {
            let kv = js
                .get_key_value("kettlewatch-devices")
                .await
                .expect("bucket");
            kv.delete(&g[0]).await.expect("delete a key");
            kv.purge(&g[1]).await.expect("purge a key");
        })
    });
    let listed = nats
        .ns
        .cmd(env::kettlewatch().to_str().unwrap())
        .args(["devices", "--json", "--nats", &nats.urls()[0]])
        .output()
        .expect("run kettlewatch devices --nats");
    assert!(listed.status.success());
    let listed: std::collections::BTreeSet<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).expect("JSON line");
            format!(
                "{}.{}",
                r["host"].as_str().unwrap(),
                r["mac"].as_str().unwrap().replace(':', "-")
            )
        })
        .collect();
    let left: std::collections::BTreeSet<String> =
        keys.iter().filter(|k| !gone.contains(k)).cloned().collect();
    assert_eq!(listed, left, "deleted and purged devices are not listed");
}
