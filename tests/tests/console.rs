//! The console (`sensor-user/src/console/`) and the alert history behind it: a replay of a
//! real attack capture fills a state directory; `kettlewatch alerts` lists what it
//! raised; `kettlewatch console` serves the pages over it, and a real browser (Debian's
//! chromium, headless) reads them as an operator would, following the links.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use kettlewatch_tests::{
    browser,
    env::{self, TempDir},
};
use serde_json::Value;

/// The IRC client in arkime's irc.pcap, and where it talks IRC (TCP/8000).
const CLIENT: &str = "00:13:72:c4:f1:e1";
const IRC_PORT: u64 = 8000;

/// A child process killed however the test ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kettlewatch console` over `state` on a port the kernel picks: the process (killed on
/// drop) and the address it said it listens at, once it accepts connections.
fn console(state: &std::path::Path, name: &str) -> (Guard, String) {
    console_with(state, name, &[])
}

/// [`console`] with more arguments.
fn console_with(state: &std::path::Path, name: &str, extra: &[&str]) -> (Guard, String) {
    let mut child = Command::new(env::kettlewatch())
        .args(["console", "--listen", "127.0.0.1:0", "--name", name])
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("console at ") {
                let _ = tx.send(url.trim().trim_end_matches('/').to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(env::slow(Duration::from_secs(20)))
        .expect("the console says where it listens");
    browser::wait_listening(base.trim_start_matches("http://"), Duration::from_secs(10));
    (guard, base)
}

/// Replays arkime's IRC capture into a state directory with a learning baseline, the
/// way `irc_on_any_port_is_a_suspicious_service_and_never_learned` does.
fn filled_state(dir: &TempDir) -> std::path::PathBuf {
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        "[sensor]\nname = \"console-test\"\n[baseline]\nmode = \"learn\"\nlearn_for = \"24h\"\n",
    )
    .unwrap();
    let state = dir.join("state");
    let cap = env::fixtures().join("captures/attacks-dev/arkime/irc.pcap");
    replay_into(&cap, &["--config", cfg.to_str().unwrap()], &state);
    state
}

/// `kettlewatch replay` of `cap` with `args` into the state directory `state`.
fn replay_into(cap: &std::path::Path, args: &[&str], state: &std::path::Path) {
    let out = Command::new(env::kettlewatch())
        .arg("replay")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .arg(cap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alert_history_lists_what_a_replay_raised_and_filters_it() {
    if !env::have_root() {
        return;
    }
    let dir = TempDir::new();
    let state = filled_state(&dir);
    let alerts = |extra: &[&str]| {
        let out = Command::new(env::kettlewatch())
            .arg("alerts")
            .arg("--state-dir")
            .arg(&state)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<Value> = alerts(&["--json", "--device", CLIENT])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let irc: Vec<&Value> = lines
        .iter()
        .filter(|a| a["iot"]["rule"]["id"] == "suspicious_service")
        .collect();
    assert_eq!(irc.len(), 1, "{lines:#?}");
    assert_eq!(irc[0]["dest_port"], IRC_PORT);
    assert!(
        lines.iter().all(|a| a["iot"]["device"]["mac"] == CLIENT),
        "--device keeps to one device"
    );
    // The IRC server on the LAN side is alerted on too: as many rows as the stream had.
    let all = alerts(&["--json"])
        .lines()
        .filter(|l| l.contains("\"suspicious_service\""))
        .count();
    assert!(all >= 1);
    let table = alerts(&["--rule", "suspicious_service"]);
    assert!(
        table.contains(CLIENT) && table.contains("suspicious_service"),
        "{table}"
    );
    assert!(
        table.trim_end().ends_with(&format!("{all} alerts")),
        "{table}"
    );
    let none = alerts(&["--rule", "beacon"]);
    assert!(none.trim_end().ends_with("0 alerts"), "{none}");
}

#[test]
fn the_console_shows_each_device_its_story_and_the_alerts_in_a_browser() {
    if !env::have_root() || !env::have_tool("chromium") {
        return;
    }
    let dir = TempDir::new();
    let state = filled_state(&dir);
    let (_console, base) = console(&state, "console-test");
    let profile = dir.join("chromium");

    // Devices: the IRC client is a row, with its alert count in the last day zero (the
    // capture is years old) and a link to its page.
    let devices = browser::dom(&format!("{base}/"), &profile);
    assert!(
        devices.contains("<title>Devices - kettlewatch console-test</title>"),
        "{devices}"
    );
    let row = row_of(&devices, CLIENT).unwrap_or_else(|| panic!("no row for {CLIENT}: {devices}"));
    let href = format!("href=\"/device/{CLIENT}\"");
    assert!(row.contains(&href), "{row}");

    // A filter keeps only what matches.
    let filtered = browser::dom(&format!("{base}/?q={CLIENT}"), &profile);
    assert!(filtered.contains("1 devices"), "{filtered}");

    // The device's page, as the link leads: identity, the evidence section, the alert,
    // and no learned destination on the IRC port (taken back when the payload spoke IRC).
    let page = browser::dom(&format!("{base}/device/{CLIENT}"), &profile);
    assert!(
        page.contains("id=\"identity\"") && page.contains(CLIENT),
        "{page}"
    );
    assert!(page.contains("Why this category"), "{page}");
    let alerts_section = &page[page.find("id=\"alerts\"").expect("an alerts section")..];
    assert!(
        alerts_section.contains("suspicious_service"),
        "{alerts_section}"
    );
    let learned =
        &page[page.find("id=\"destinations\"").unwrap()..page.find("id=\"traffic\"").unwrap()];
    assert!(!learned.contains(&format!(":{IRC_PORT}/tcp")), "{learned}");

    // Where it went: the IRC server, with every frame the capture has it send there.
    let traffic =
        &page[page.find("id=\"traffic\"").unwrap()..page.find("id=\"operator\"").unwrap()];
    let irc_row = traffic
        .split("<tr ")
        .find(|r| r.contains(&format!(":{IRC_PORT}/TCP")))
        .unwrap_or_else(|| panic!("no row for the IRC server: {traffic}"));
    let cells: Vec<&str> = irc_row
        .split("<td class=\"num\">")
        .skip(1)
        .map(|c| &c[..c.find('<').unwrap()])
        .collect();
    assert_eq!(
        cells[1].parse::<u64>().unwrap(),
        frames_to_irc(),
        "frames: {irc_row}"
    );

    // The timeline filtered by rule links back to the device.
    let timeline = browser::dom(&format!("{base}/alerts?rule=suspicious_service"), &profile);
    assert!(
        timeline.matches("data-rule=\"suspicious_service\"").count() >= 1
            && !timeline.contains("data-rule=\"new_device\""),
        "{timeline}"
    );
    assert!(timeline.contains(&href), "{timeline}");
    assert!(
        timeline.contains(&format!(":{IRC_PORT}/TCP")),
        "the destination: {timeline}"
    );

    // A device the store does not have is a page that says so.
    let missing = browser::dom(&format!("{base}/device/02:00:00:00:00:99"), &profile);
    assert!(missing.contains("No such device"), "{missing}");
}

/// Frames the IRC client sends to TCP port 8000 in the capture, counted from the file.
fn frames_to_irc() -> u64 {
    let cap = env::fixtures().join("captures/attacks-dev/arkime/irc.pcap");
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(cap).unwrap()).unwrap();
    let client: Vec<u8> = CLIENT
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        let d = p.unwrap().data;
        if d.len() < 14 + 20 + 4 || d[6..12] != client[..] || d[12..14] != [8, 0] || d[23] != 6 {
            continue;
        }
        let tcp = 14 + usize::from(d[14] & 0x0f) * 4;
        if u16::from_be_bytes([d[tcp + 2], d[tcp + 3]]) == IRC_PORT as u16 {
            n += 1;
        }
    }
    n
}

/// The `<tr>` of the devices table whose `data-mac` is `mac`.
fn row_of<'a>(html: &'a str, mac: &str) -> Option<&'a str> {
    let at = html.find(&format!("data-mac=\"{mac}\""))?;
    let end = html[at..].find("</tr>")? + at;
    Some(&html[at..end])
}

/// The device page's forms, driven in a real browser through chromedriver as an operator
/// would: set a category and name, mute a rule for one destination, accept a destination.
/// Each lands in the store with the operator's name (what `kettlewatch audit`, `baseline
/// show` print); a form posted from elsewhere (no origin, no token) is refused.
#[test]
fn an_operator_corrects_the_sensor_from_the_device_page_in_a_browser() {
    if !env::have_root() || !env::have_tool("chromium") || !env::have_tool("chromedriver") {
        return;
    }
    let dir = TempDir::new();
    let state = filled_state(&dir);
    let (_console, base) = console(&state, "kettlewatch");
    let hostport = base.trim_start_matches("http://").to_string();
    let b = kettlewatch_tests::webdriver::Browser::start(&dir.join("chromium"));
    let page = format!("{base}/device/{CLIENT}");

    // The three pages as an operator first sees them, for docs/console.md: made here so
    // they show what the console serves today.
    let shots = env::workspace().join("docs/console");
    std::fs::create_dir_all(&shots).unwrap();
    for (url, file) in [
        (format!("{base}/"), "devices.png"),
        (page.clone(), "device.png"),
        (format!("{base}/alerts"), "alerts.png"),
    ] {
        b.open(&url);
        b.screenshot(&shots.join(file));
    }

    b.open(&page);
    b.click("#set select[name=category] option[value=printer]");
    b.type_into("#set input[name=name]", "irc box");
    b.type_into("#set input[name=by]", "alice");
    b.click("#set button");
    let src = b.wait_for(|src| src.contains("Audit trail"), Duration::from_secs(5));
    assert_eq!(b.url(), page, "back on the device's page");
    assert!(
        src.contains("Audit trail") && src.contains("category=printer name=irc box"),
        "{src}"
    );

    b.click("#mute select[name=rule] option[value=suspicious_service]");
    b.type_into("#mute input[name=dest]", "203.0.113.66");
    b.type_into("#mute input[name=for]", "7d");
    b.type_into("#mute input[name=by]", "alice");
    b.click("#mute button");
    b.wait_for(
        |src| src.contains("Muted rules") && src.contains("Unmute"),
        Duration::from_secs(5),
    );

    b.type_into("#accept input[name=entry]", "198.51.100.9:443/tcp");
    b.type_into("#accept input[name=by]", "alice");
    b.click("#accept button");
    b.wait_for(
        |src| src.contains("198.51.100.9:443/tcp"),
        Duration::from_secs(5),
    );

    b.click("#state select[name=state] option[value=investigating]");
    b.type_into("#state input[name=by]", "alice");
    b.click("#state button");
    b.wait_for(
        |src| src.contains("id=\"device-state\">investigating"),
        Duration::from_secs(5),
    );
    b.open(&format!("{base}/?q=investigating"));
    let listed = b.wait_for(|src| src.contains("1 devices"), Duration::from_secs(5));
    assert!(
        listed.contains(&format!("data-mac=\"{CLIENT}\"")),
        "{listed}"
    );

    // A bad entry is refused with why, and nothing changes.
    b.open(&page);
    b.type_into("#accept input[name=entry]", "198.51.100.9:99999/tcp");
    b.click("#accept button");
    b.wait_for(|src| src.contains("Not done"), Duration::from_secs(5));

    let kw = |args: &[&str]| {
        let out = Command::new(env::kettlewatch())
            .args(args)
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let audit = kw(&["audit", "--device", CLIENT]);
    let alice: Vec<&str> = audit.lines().filter(|l| l.contains("alice")).collect();
    assert_eq!(alice.len(), 4, "{audit}");
    assert!(
        alice[0].contains("state=investigating")
            && alice[1].contains("accept")
            && alice[2].contains("mute")
            && alice[3].contains("set"),
        "{audit}"
    );
    assert!(kw(&["baseline", "show"]).contains("198.51.100.9:443/tcp"));

    // A form from elsewhere: no origin, no token.
    let body = "category=camera";
    let mut s = std::net::TcpStream::connect(&hostport).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "POST /device/{CLIENT}/set HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(
        kw(&["audit"]).lines().filter(|l| l.contains("set")).count(),
        1
    );
}

/// What a device says about itself reaches the page as text: a DHCP host name made of
/// markup and script is shown as the characters they are, in a real
/// browser, and nothing of them runs or becomes an element.
#[test]
fn a_device_that_names_itself_with_markup_is_shown_as_text_and_runs_nothing() {
    use kettlewatch_tests::{
        announce::dhcp_discover_with,
        frames::{cat, eth, ipv4, udp},
    };
    use sensor_common::MacAddr;
    if !env::have_root() || !env::have_tool("chromium") || !env::have_tool("chromedriver") {
        return;
    }
    const HOST: &str =
        "<script>document.title='pwned'</script>\"><img src=x onerror=\"document.title='pwned'\">";
    let dev = MacAddr([0x02, 0, 0x5e, 0, 0, 0x66]);
    let dir = TempDir::new();
    let cap = dir.join("markup.pcap");
    {
        let mut w = pcap_file::pcap::PcapWriter::new(std::fs::File::create(&cap).unwrap()).unwrap();
        let dhcp = dhcp_discover_with(dev, &[(12, HOST.as_bytes())]);
        let frames = [
            cat(&[
                &eth(MacAddr([0xff; 6]), dev, &[], 0x0800),
                &ipv4([0; 4], [255; 4], 17, &[], 0, &udp(68, 67, &dhcp)),
            ]),
            cat(&[
                &eth(MacAddr([0x02, 0, 0x5e, 0, 0, 1]), dev, &[], 0x0800),
                &ipv4(
                    [192, 0, 2, 66],
                    [203, 0, 113, 10],
                    17,
                    &[],
                    0,
                    &udp(40000, 443, &[0; 20]),
                ),
            ]),
        ];
        for (i, f) in frames.iter().enumerate() {
            let ts = Duration::from_secs(1_700_000_000 + i as u64);
            w.write_packet(&pcap_file::pcap::PcapPacket::new(ts, f.len() as u32, f))
                .unwrap();
        }
    }
    let state = dir.join("state");
    replay_into(&cap, &[], &state);
    let (_console, base) = console(&state, "kettlewatch");
    let b = kettlewatch_tests::webdriver::Browser::start(&dir.join("chromium"));
    for page in [format!("{base}/"), format!("{base}/device/{dev}")] {
        b.open(&page);
        let seen = b.execute(
            "return [document.title, document.querySelectorAll('script, img').length, \
             document.body.innerText]",
        );
        assert!(
            seen[0].as_str().unwrap().contains("kettlewatch") && seen[1] == 0,
            "{page}: {seen}"
        );
        assert!(
            seen[2].as_str().unwrap().contains(HOST),
            "{page} shows the name as text: {seen}"
        );
    }
}

/// A console with a token: every request without it is refused and asked for it; with
/// it, as a bearer token or as a browser's Basic password, the pages are served, each
/// with a policy that lets a page load nothing but the console's style sheet. Off
/// loopback, a console without a token does not start, and `check-config` says why.
#[test]
fn a_console_with_a_token_admits_only_requests_that_carry_it() {
    use std::io::{Read, Write};
    if !env::have_root() || !env::have_tool("chromium") || !env::have_tool("chromedriver") {
        return;
    }
    let dir = TempDir::new();
    let state = filled_state(&dir);
    let token = "5f0c3a9e1b7d4c2a8e6f0b1d3c5a7e9f";
    let file = dir.join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (_console, base) = console_with(
        &state,
        "kettlewatch",
        &["--token-file", file.to_str().unwrap()],
    );
    let hostport = base.trim_start_matches("http://").to_string();
    let get = |path: &str, auth: Option<&str>| {
        let mut s = std::net::TcpStream::connect(&hostport).unwrap();
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    for path in ["/", "/alerts", &format!("/device/{CLIENT}"), "/style.css"] {
        let a = get(path, None);
        assert!(a.starts_with("HTTP/1.1 401"), "{path}: {a}");
        assert!(
            a.to_ascii_lowercase().contains("www-authenticate: basic"),
            "{a}"
        );
        assert!(!a.contains(CLIENT), "{a}");
        let a = get(path, Some(&format!("Bearer {}0", &token[1..])));
        assert!(a.starts_with("HTTP/1.1 401"), "{path}: {a}");
    }
    let a = get("/", Some(&format!("Bearer {token}")));
    assert!(a.starts_with("HTTP/1.1 200") && a.contains(CLIENT), "{a}");
    let policy = a
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .unwrap_or_else(|| panic!("a policy: {a}"));
    assert!(
        policy.contains("default-src 'none'") && policy.contains("style-src 'self'"),
        "{policy}"
    );

    // A browser that has the token as its password sees the page, styled.
    let b = kettlewatch_tests::webdriver::Browser::start(&dir.join("chromium"));
    b.open(&format!("http://operator:{token}@{hostport}/"));
    let seen = b.execute(
        "return [document.body.innerText, \
         getComputedStyle(document.querySelector('header')).display]",
    );
    assert!(seen[0].as_str().unwrap().contains(CLIENT), "{seen}");
    assert_eq!(seen[1], "flex", "the style sheet applied");

    // Off loopback there must be a token.
    let out = Command::new(env::kettlewatch())
        .args(["console", "--listen", "0.0.0.0:0", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("token_file"), "{err}");
    let cfg = dir.join("open.toml");
    std::fs::write(&cfg, "[console]\nlisten = \"0.0.0.0:9561\"\n").unwrap();
    let out = Command::new(env::kettlewatch())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("open.toml:2:10") && err.contains("token_file"),
        "{err}"
    );
}
