//! A flow's service is what its first payload speaks, not its port, in a namespace lab:
//! learning devices that open IRC on TCP/8000, mine with Stratum on TCP/443, reach a
//! raw address over TLS asking for a Tor-shaped name (a real `openssl s_client`), and log
//! in to SSH on TCP/2222, beside one that does plain TLS to its cloud. Real TCP through
//! the gateway, the kernel's first-payload copy, the baseline in the state directory.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    time::Duration,
};

use kettlewatch_tests::{
    env::{self, TempDir},
    events,
    lab::{FAST_CONFIG, Lab, SERVERS_V4},
};
use serde_json::Value;

/// XMRig's login line, as its `Client.cpp` writes one (the wallet made up).
const XMRIG_LOGIN: &[u8] = b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0\",\"algo\":[\"rx/0\"]}}\n";
/// A Tor client's made-up server name (`www.` + base32 + `.com`).
const TOR_NAME: &str = "www.q7xwzp2bcdn6kexm.com";

/// A server on the internet side at `at` that answers each of `n` connections with
/// `greeting` (if any) and reads what the client sends.
fn serve(
    lab: &Lab,
    at: SocketAddr,
    n: usize,
    greeting: &'static [u8],
) -> std::thread::JoinHandle<()> {
    let l = lab
        .inet
        .run(move || TcpListener::bind(at).expect("bind in the internet side"));
    std::thread::spawn(move || {
        for c in l.incoming().take(n) {
            let Ok(mut c) = c else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            if !greeting.is_empty() {
                let _ = c.write_all(greeting);
            }
            let mut buf = [0u8; 2048];
            let _ = c.read(&mut buf);
        }
    })
}

/// Device `dev` connects to `to`, sends `first`, and reads a little.
fn client(lab: &Lab, dev: usize, to: SocketAddr, first: &'static [u8]) {
    lab.devices[dev].ns.run(move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s.write_all(first).unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
    });
}

/// Device `dev` opens TLS to `to` asking for `name` (none when `None`), with the
/// system's openssl.
fn tls_client(lab: &Lab, dev: usize, to: SocketAddr, name: Option<&str>) {
    let target = to.to_string();
    let name = name.map(str::to_string);
    lab.devices[dev].ns.run(move || {
        let named = match &name {
            Some(n) => vec!["-servername", n.as_str()],
            None => vec!["-noservername"],
        };
        let mut c = Command::new("openssl")
            .args(["s_client", "-connect", &target])
            .args(named)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl");
        // No TLS server answers: the hello is sent, then the client gives up.
        std::thread::sleep(Duration::from_millis(800));
        let _ = c.kill();
        let _ = c.wait();
    });
}

fn service_alerts<'a>(evs: &'a [Value], mac: &str) -> Vec<&'a Value> {
    events::alerts(evs, "suspicious_service")
        .into_iter()
        .filter(|a| a["iot"]["device"]["mac"] == mac)
        .collect()
}

#[test]
fn irc_mining_tor_ssh_and_nameless_tls_are_named_by_their_bytes_and_never_learned() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("openssl") {
        return;
    }
    // 0: IRC on 8000, 1: Stratum on 443, 2: Tor-shaped TLS on 443, 3: SSH on 2222
    // (ten logins: a short guessing run), 4: TLS to its cloud on 8443 (the control),
    // 5: TLS naming no server on 4443 (a RAT's channel to its operator's address).
    let lab = Lab::build(6);
    let irc_at = SocketAddr::new(SERVERS_V4[0].into(), 8000);
    let pool_at = SocketAddr::new(SERVERS_V4[0].into(), 443);
    let relay_at = SocketAddr::new(SERVERS_V4[1].into(), 443);
    let ssh_at = SocketAddr::new(SERVERS_V4[2].into(), 2222);
    let cloud_at = SocketAddr::new(SERVERS_V4[2].into(), 8443);
    let rat_at = SocketAddr::new(SERVERS_V4[1].into(), 4443);
    let servers = [
        serve(
            &lab,
            irc_at,
            1,
            b":irc.lab NOTICE * :*** Looking up your hostname\r\n",
        ),
        serve(&lab, pool_at, 1, b""),
        serve(&lab, relay_at, 1, b""),
        serve(&lab, ssh_at, 10, b"SSH-2.0-OpenSSH_9.9\r\n"),
        serve(&lab, cloud_at, 1, b""),
        serve(&lab, rat_at, 1, b""),
    ];
    let state = TempDir::new();
    let sd = state.join("state").to_str().unwrap().to_string();
    let config = format!("{FAST_CONFIG}[baseline]\nmode = \"learn\"\nlearn_for = \"1h\"\n");
    let (_dir, sensor) = lab.watch(&config, &["--state-dir", &sd]);
    client(&lab, 0, irc_at, b"NICK kw0\r\nUSER kw0 0 * :kw0\r\n");
    client(&lab, 1, pool_at, XMRIG_LOGIN);
    tls_client(&lab, 2, relay_at, Some(TOR_NAME));
    for _ in 0..10 {
        client(&lab, 3, ssh_at, b"SSH-2.0-OpenSSH_9.6\r\n");
    }
    tls_client(&lab, 4, cloud_at, Some("cloud.example.com"));
    tls_client(&lab, 5, rat_at, None);
    for s in servers {
        s.join().unwrap();
    }
    let seen = sensor.wait_for_line(|l| l.contains("\"tor\""), Duration::from_secs(10));
    assert!(seen.is_some(), "no alert about the Tor-shaped flow");
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);

    for (dev, to, service) in [
        (0, irc_at, "irc"),
        (1, pool_at, "stratum"),
        (2, relay_at, "tor"),
        (3, ssh_at, "ssh"),
    ] {
        let mac = lab.devices[dev].mac.to_string();
        let a = service_alerts(&evs, &mac);
        assert_eq!(a.len(), 1, "device {dev} ({service}): {a:#?}");
        let m = &a[0]["alert"]["metadata"];
        assert_eq!(m["service"][0], service, "{m}");
        assert_eq!(m["identified_by"][0], "payload", "{m}");
        assert_eq!(a[0]["dest_ip"], to.ip().to_string());
        assert_eq!(a[0]["dest_port"], to.port());
        let protos: Vec<&Value> = events::of_type(&evs, "flow")
            .into_iter()
            .filter(|f| f["ether"]["src_mac"] == mac && f["dest_port"] == to.port())
            .map(|f| &f["app_proto"])
            .collect();
        assert!(protos.contains(&&Value::from(service)), "{dev}: {protos:?}");
    }
    let cloud = lab.devices[4].mac.to_string();
    assert!(
        service_alerts(&evs, &cloud).is_empty(),
        "plain TLS is no suspicious service"
    );
    let rat = lab.devices[5].mac.to_string();
    let a = service_alerts(&evs, &rat);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["alert"]["metadata"]["service"][0], "tls-no-sni");
    assert_eq!(a[0]["dest_port"], rat_at.port());
    // The miner's name is in its inventory.
    let miner = &events::last_device(&evs, lab.devices[1].mac.to_string())["iot"]["device"];
    assert!(
        miner["software"].as_array().is_some_and(|s| s
            .iter()
            .any(|e| e["product"] == "XMRig" && e["version"] == "6.21.0")),
        "{miner}"
    );
    // Learning took the cloud in and none of the others.
    let shown = Command::new(env::kettlewatch())
        .args(["baseline", "show", "--state-dir", &sd])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains(&cloud_at.to_string()), "{shown}");
    for to in [irc_at, pool_at, relay_at, ssh_at, rat_at] {
        assert!(!shown.contains(&to.to_string()), "{to} learned: {shown}");
    }
}
