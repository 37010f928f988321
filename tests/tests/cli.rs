//! The command line a user meets first: config checking with file:line errors, version,
//! and bad arguments.

use std::process::Command;

use kettlewatch_tests::env::{self, TempDir};

fn kw(args: &[&str]) -> std::process::Output {
    Command::new(env::kettlewatch())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn check_config_names_file_and_line_of_an_unknown_key() {
    let dir = TempDir::new();
    let path = dir.join("kw.toml");
    std::fs::write(&path, "[sensor]\nname = \"gw\"\npoll_intervall = \"1s\"\n").unwrap();
    let out = kw(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:1:", path.display())), "{err}");
    assert!(err.contains("unknown field `poll_intervall`"), "{err}");
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = TempDir::new();
    let path = dir.join("kw.toml");
    std::fs::write(
        &path,
        "[sensor]\nname = \"gw-lab-1\"\npoll_interval = \"500ms\"\nmax_flows = 131072\n\n[output]\npath = \"-\"\n",
    )
    .unwrap();
    let out = kw(&["check-config", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

#[test]
fn a_bad_config_stops_replay_and_run_before_they_start() {
    let dir = TempDir::new();
    let path = dir.join("kw.toml");
    std::fs::write(&path, "[output]\npath = 3\n").unwrap();
    for cmd in [
        vec![
            "replay",
            "--config",
            path.to_str().unwrap(),
            "/nonexistent.pcap",
        ],
        vec!["run", "--iface", "lo", "--config", path.to_str().unwrap()],
    ] {
        let out = kw(&cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}:2:8:", path.display())),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn missing_config_file_is_named() {
    let out = kw(&["check-config", "/nonexistent/kw.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kw.toml: No such file"));
}

#[test]
fn version_and_bad_arguments() {
    let out = kw(&["version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("kettlewatch 0."));
    let out = kw(&["replay", "--gateway-mac", "nonsense", "x.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a MAC address"));
}

#[test]
fn without_privileges_the_error_says_what_to_grant() {
    if !env::have_root() || !env::have_tool("setpriv") {
        return;
    }
    // Root's euid, every capability dropped: the kernel refuses the BPF objects.
    let out = Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(env::kettlewatch())
        .args(["run", "--iface", "lo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON"),
        "{err}"
    );
}

#[test]
fn a_bad_classification_rules_file_is_named_with_its_line() {
    let dir = TempDir::new();
    let rules = dir.join("my-rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nfact = \"hostname\"\nmatch = \"kw-*\"\ncategory = \"appliance\"\nweight = 2.0\n\n[[rule]]\nfact = \"hostname\"\nmatch = \"[unclosed\"\ncategory = \"light\"\nweight = 1.0\n",
    )
    .unwrap();
    let cfg = dir.join("kw.toml");
    // Relative to the configuration file.
    std::fs::write(&cfg, "[classify]\nrules = \"my-rules.toml\"\n").unwrap();
    let out = kw(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:9:9: bad pattern", rules.display())),
        "{err}"
    );
}

#[test]
fn devices_without_a_state_directory_says_so() {
    let dir = TempDir::new();
    let out = kw(&["devices", "--state-dir", dir.join("none").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state.db") && err.contains("no state here yet"),
        "{err}"
    );
}

#[test]
fn check_config_says_the_mode_each_policy_runs_in_and_the_effective_settings() {
    let dir = TempDir::new();
    let path = dir.join("kw.toml");
    std::fs::write(
        &path,
        "[metrics]\nlisten = \"127.0.0.1:9561\"\n\n[baseline]\nmode = \"enforce\"\n\n[[policy]]\nname = \"cams\"\ncategories = [\"camera\"]\nallow = [\"203.0.113.10\"]\n\n\
         [[policy]]\nname = \"plugs\"\ncategories = [\"plug-switch\"]\nmode = \"learn\"\nlearn_for = \"12h\"\n",
    )
    .unwrap();
    let out = kw(&["check-config", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("devices without a declared policy: enforce"),
        "{text}"
    );
    assert!(
        text.contains("policy \"cams\": enforce (from [baseline] mode = \"enforce\")"),
        "a policy without a mode enforces when the baseline does: {text}"
    );
    assert!(
        text.contains("policy \"plugs\": learn, each device for 12h (its own mode)"),
        "{text}"
    );
    // The rest of what a run takes from the file, defaults filled in.
    assert!(
        text.contains("metrics: http://127.0.0.1:9561/metrics"),
        "{text}"
    );
    assert!(
        text.contains("output: standard output (queue 65536 lines"),
        "{text}"
    );
    assert!(
        text.contains("stats every 1m"),
        "the default stats interval: {text}"
    );
}

/// A state directory whose learned baseline cannot be read stops a replay at start,
/// naming the database, instead of replaying as if nothing had been learned (`run` goes
/// through the same builder).
#[test]
fn an_unreadable_baseline_stops_replay_and_names_the_database() {
    if !env::have_root() {
        return;
    }
    let dir = TempDir::new();
    let sd = dir.join("state");
    std::fs::create_dir_all(&sd).unwrap();
    // A baseline table of another layout: the store opens, the baseline does not read.
    let db = rusqlite::Connection::open(sd.join("state.db")).unwrap();
    db.execute_batch("CREATE TABLE baseline (something TEXT);")
        .unwrap();
    drop(db);
    let capture = env::workspace().join("tests/fixtures/captures/charrua/dhcp.pcap");
    let eve = dir.join("eve.json");
    let out = kw(&[
        "replay",
        "--state-dir",
        sd.to_str().unwrap(),
        "--output",
        eve.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reading the learned baseline from") && err.contains("state.db"),
        "{err}"
    );
    let written = std::fs::read_to_string(&eve).unwrap_or_default();
    assert!(written.is_empty(), "no event before the error: {written}");
}

/// A run on an interface or as a user that does not exist stops before it creates
/// anything: no state directory is left behind to puzzle over.
#[test]
fn a_missing_interface_or_user_is_said_before_anything_is_created() {
    let dir = TempDir::new();
    let state = dir.join("state");
    let out = kw(&[
        "run",
        "--iface",
        "kwnope0",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no interface named \"kwnope0\""), "{err}");
    assert!(!state.exists(), "the state directory was created");
    let out = kw(&[
        "run",
        "--iface",
        "lo",
        "--user",
        "kw-no-such-user",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kw-no-such-user"), "{err}");
    assert!(!state.exists(), "the state directory was created");
}

/// `check-config` loads every file the configuration names, as `run` would: per file what
/// it gave and each refused line with file:line and why; exit 0 with "N lines refused"
/// when only lines are refused, non-zero when a file cannot be used at all.
#[test]
fn check_config_loads_every_file_and_names_each_refused_line() {
    let dir = TempDir::new();
    let fx = env::fixtures();
    // A real feed with garbage lines appended: the garbage is refused line by line.
    let mut feed = std::fs::read_to_string(fx.join("intel/feodo/ipblocklist.csv")).unwrap();
    let real_lines = feed.lines().count();
    if !feed.ends_with('\n') {
        feed.push('\n');
    }
    feed.push_str("\"2024-02-08 19:20:49\",\"not-an-ip\",\"5000\",\"offline\",\"\",\"x\"\n");
    feed.push_str("\"2024-02-08 19:20:49\",\"10.0.0.1\",\"5000\",\"offline\",\"\",\"x\"\n");
    std::fs::write(dir.join("feodo.csv"), feed).unwrap();
    let mud = dir.join("mud");
    std::fs::create_dir(&mud).unwrap();
    std::fs::copy(fx.join("mud/osmud/MUDFILE.NEST"), mud.join("nest.json")).unwrap();
    let vulns = fx.join("vulns");
    let cfg = dir.join("kw.toml");
    let good = format!(
        "[[intel.feed]]\npath = \"feodo.csv\"\nformat = \"feodo-csv\"\n\n[mud]\ndir = \"{}\"\n\n\
         [[vulns.feed]]\npath = \"{}\"\nformat = \"nvd\"\n\n[[vulns.feed]]\npath = \"{}\"\nformat = \"kev\"\n",
        mud.display(),
        vulns.join("nvdcve-2.0-slice.json").display(),
        vulns.join("kev-slice.json").display(),
    );
    std::fs::write(&cfg, &good).unwrap();
    let out = kw(&["check-config", cfg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let feed_path = dir.join("feodo.csv");
    let shown = feed_path.display();
    assert!(
        text.contains(&format!("intel feed {shown} (feodo-csv): ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{shown}:{}: ", real_lines + 1)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{shown}:{}: 10.0.0.1/32 refused: private",
            real_lines + 2
        )),
        "{text}"
    );
    assert!(text.contains(": 2 lines refused"), "{text}");
    assert!(
        text.contains("MUD file ") && text.contains("/nest"),
        "{text}"
    );
    assert!(
        text.contains("(NVD CVE JSON 2.0): 25 records loaded, 0 refused"),
        "{text}"
    );
    assert!(
        text.contains("(CISA KEV): 27 records loaded, 0 refused, dated 2025-02-13"),
        "{text}"
    );
    assert!(
        text.contains("vulnerabilities: 25 CVEs, 27 known exploited"),
        "{text}"
    );

    // A file that cannot be used at all: non-zero, named.
    std::fs::write(
        dir.join("broken.json"),
        "{\"catalogVersion\": \"1\",\n  oops\n",
    )
    .unwrap();
    for (extra, want) in [
        (
            "[[vulns.feed]]\npath = \"broken.json\"\nformat = \"kev\"\n".to_string(),
            format!("{}:2:", dir.join("broken.json").display()),
        ),
        (
            format!(
                "[[vulns.feed]]\npath = \"{}\"\nformat = \"kev\"\n",
                vulns.join("nvdcve-2.0-slice.json").display()
            ),
            "configured as format \"kev\" but the file is NVD CVE JSON 2.0".to_string(),
        ),
        (
            "[[intel.feed]]\npath = \"nowhere.txt\"\nformat = \"plain\"\n".to_string(),
            "nowhere.txt: cannot be read".to_string(),
        ),
    ] {
        std::fs::write(&cfg, format!("{good}\n{extra}")).unwrap();
        let out = kw(&["check-config", cfg.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{extra}: {text}");
        assert!(text.contains(&want), "{extra}: {text}");
        assert!(text.contains("file(s) cannot be used"), "{text}");
    }
    // A MUD file that does not import is one that cannot be used.
    std::fs::write(mud.join("broken.json"), "{}").unwrap();
    std::fs::write(&cfg, &good).unwrap();
    let out = kw(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MUD file not usable: "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
