//! Where `kettlewatch run` writes, when writing goes wrong: a reader that stops reading
//! does not stall the sensor, and a full disk loses counted lines and resumes when space
//! returns.

use std::{net::SocketAddr, time::Duration};

use kettlewatch_tests::{
    env::{self, TempDir},
    events,
    lab::{ATTACHED, Lab, SERVERS_V4},
    proc::Sensor,
};

/// A sensor with fast polls and stats, `extra` configuration, writing to `output`.
fn start_writing_to(lab: &Lab, dir: &TempDir, extra: &str, output: &std::path::Path) -> Sensor {
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\npoll_interval = \"200ms\"\nflow_report = \"1s\"\nstats_interval = \"1s\"\n{extra}"
        ),
    )
    .unwrap();
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    let mut sensor = Sensor::start(&lab.gw, "lan0", &args, false);
    sensor.wait_for_log(ATTACHED, Duration::from_secs(30));
    sensor
}

/// One datagram from device 0 to each of `ports` (offset by 20000) of the first server:
/// a new flow each.
fn new_flows(lab: &Lab, ports: std::ops::Range<u16>) {
    for port in ports {
        lab.send_udp(
            0,
            SocketAddr::new(SERVERS_V4[0].into(), 20000 + port),
            1,
            10,
        );
    }
}

#[test]
fn a_reader_that_stops_reading_does_not_stall_the_sensor() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let lab = Lab::build(1);
    let dir = TempDir::new();
    let fifo = dir.join("eve.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Open the read end first (non-blocking), so the sensor's open for writing proceeds.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let sensor = start_writing_to(&lab, &dir, "[output]\nqueue_lines = 8\n", &fifo);
    // Nobody reads while 300 new flows make far more output than the pipe holds.
    new_flows(&lab, 0..300);
    std::thread::sleep(Duration::from_secs(3));
    // The reader comes back and reads everything.
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    let drain = |reader: &mut std::fs::File, text: &mut Vec<u8>, buf: &mut [u8]| loop {
        match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    };
    drain(&mut reader, &mut text, &mut buf);
    std::thread::sleep(Duration::from_secs(2));
    drain(&mut reader, &mut text, &mut buf);
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    drain(&mut reader, &mut text, &mut buf);
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let evs = events::parse(&lines);
    let last = &events::of_type(&evs, "stats")
        .last()
        .expect("a final stats event")["iot"];
    assert!(
        last["sensor"]["output_dropped"].as_u64().unwrap() > 0,
        "lines were dropped: {last}"
    );
    assert_eq!(
        last["kernel"]["ringbuf_full"], 0,
        "the event loop kept reading the ring"
    );
    assert!(
        last["kernel"]["new_flows"].as_u64().unwrap() >= 300,
        "{last}"
    );
    assert!(
        out.stderr.contains("dropping lines"),
        "said what it lost: {}",
        out.stderr
    );
}

/// A tmpfs mounted for one test, unmounted on drop: a disk that can fill up.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: std::path::PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&at).unwrap();
        kettlewatch_tests::netns::sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "kwtest",
            at.to_str().unwrap(),
        ]);
        Self(at)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_loses_counted_lines_and_writing_resumes_when_space_returns() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("mount") {
        return;
    }
    let lab = Lab::build(1);
    let dir = TempDir::new();
    let disk = SmallDisk::mount(dir.join("disk"), "256k");
    let eve = disk.0.join("eve.json");
    // Fill the disk up to the last block before the sensor writes anything.
    let filler = disk.0.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = [b'x'; 4096];
        while f.write_all(&block).is_ok() {}
    }
    let mut sensor = start_writing_to(&lab, &dir, "", &eve);
    new_flows(&lab, 0..50);
    sensor.wait_for_log("writing events failed", Duration::from_secs(20));
    // Space comes back: the sensor writes again without being restarted.
    std::fs::remove_file(&filler).unwrap();
    new_flows(&lab, 50..100);
    sensor.wait_for_log("writing events works again", Duration::from_secs(20));
    let out = sensor.stop();
    assert!(
        out.status.success(),
        "kept running and stopped cleanly: {}",
        out.stderr
    );
    let text = std::fs::read_to_string(&eve).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Every line on disk is whole: a line either went out entirely or was counted lost.
    let evs = events::parse(&lines);
    let last = &events::of_type(&evs, "stats")
        .last()
        .expect("stats after the disk had room again")["iot"];
    assert!(
        last["sensor"]["output_errors"].as_u64().unwrap() > 0,
        "the lost lines are counted: {last}"
    );
    assert!(
        out.stderr.contains("lost to write errors"),
        "said at exit what it lost: {}",
        out.stderr
    );
}

/// logrotate without copytruncate: the file is moved, the sensor gets SIGHUP, and what
/// comes after goes to a new file at the same path; between the two files every flow's
/// records sum to what was sent.
#[test]
fn sighup_after_a_move_writes_to_a_new_file_and_loses_nothing() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let dir = TempDir::new();
    let eve = dir.join("eve.json");
    let rotated = dir.join("eve.json.1");
    let mut sensor = start_writing_to(&lab, &dir, "", &eve);
    new_flows(&lab, 0..5);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::rename(&eve, &rotated).unwrap();
    sensor.signal(libc::SIGHUP);
    sensor.wait_for_log("output file reopened", Duration::from_secs(10));
    new_flows(&lab, 5..10);
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let read = |p: &std::path::Path| {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        events::parse(&text.lines().collect::<Vec<_>>())
    };
    let (old, new) = (read(&rotated), read(&eve));
    let ports = |evs: &[serde_json::Value]| -> std::collections::BTreeSet<u64> {
        events::of_type(evs, "flow")
            .iter()
            .filter(|f| f["dest_ip"] == SERVERS_V4[0].to_string())
            .filter_map(|f| f["dest_port"].as_u64())
            .collect()
    };
    assert_eq!(
        ports(&old),
        (20000..20005).collect(),
        "the first flows are in the moved file"
    );
    assert!(
        ports(&new).is_superset(&(20005..20010).collect()),
        "the later ones in the new file: {:?}",
        ports(&new)
    );
    let packets: u64 = old
        .iter()
        .chain(&new)
        .filter(|e| e["event_type"] == "flow" && e["dest_ip"] == SERVERS_V4[0].to_string())
        .map(|f| f["flow"]["pkts_toserver"].as_u64().unwrap())
        .sum();
    assert_eq!(
        packets, 10,
        "one datagram a flow, counted once across both files"
    );
    assert!(
        events::of_type(&new, "stats").last().is_some(),
        "the final stats went to the new file"
    );
}
