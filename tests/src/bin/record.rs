//! Records the lab captures of `tests/fixtures/captures/lab/`: one namespace lab per
//! behaviour, a real program or socket in a device doing it, tcpdump on the gateway's
//! LAN side writing what crosses it. The captures are regenerated, never edited:
//!
//! ```text
//! cargo build -p kettlewatch-tests --bin record
//! sudo target/debug/record tests/fixtures/captures/lab [NAME.pcap ...]
//! ```
//!
//! Names given: only those captures are made again.
//!
//! Each capture's device starts the behaviour at once, so a replay with a learning
//! window sees it while the device learns (as `cargo xtask eval` replays it). Every
//! address is the lab's own (198.51.100.0/24 LAN, 203.0.113.0/24 "internet").

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use kettlewatch_tests::{
    announce,
    env::TempDir,
    lab::{Lab, SERVERS_V4},
    registrar::Registrar,
    sshd::Sshd,
};

/// XMRig's login line, as its `Client.cpp` writes one (the wallet made up).
const XMRIG_LOGIN: &[u8] = b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0\",\"algo\":[\"rx/0\"]}}\n";
/// A CryptoNote pool's job push, as the answer.
const POOL_JOB: &[u8] = b"{\"jsonrpc\":\"2.0\",\"method\":\"job\",\"params\":{\"blob\":\"0707\",\"job_id\":\"1\",\"target\":\"b88d0600\"}}\n";

/// tcpdump on the gateway's `lan0`, writing `path` until dropped.
struct Recording(Child);

impl Recording {
    fn start(lab: &Lab, path: &Path) -> Result<Self> {
        let child = lab
            .gw
            .cmd("tcpdump")
            // Immediate mode: otherwise the last second's frames wait in a kernel block
            // that the SIGINT below discards (a recording lost its last burst so).
            .args(["-i", "lan0", "--immediate-mode", "-U", "-s", "0", "-w"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tcpdump")?;
        std::thread::sleep(Duration::from_millis(800));
        Ok(Self(child))
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(500));
        // SIGINT, so tcpdump flushes and closes the file.
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

/// A server in the internet side at `at` answering each of `n` connections with
/// `answer` after reading what the client sent.
fn serve(lab: &Lab, at: SocketAddr, n: usize, greet: &'static [u8], answer: &'static [u8]) {
    let l = lab.inet.run(move || TcpListener::bind(at).expect("bind"));
    std::thread::spawn(move || {
        for c in l.incoming().take(n) {
            let Ok(mut c) = c else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = c.write_all(greet);
            let mut buf = [0u8; 2048];
            let _ = c.read(&mut buf);
            let _ = c.write_all(answer);
        }
    });
}

/// Device 0 connects to `to`, sends `first`, reads the answer.
fn client(lab: &Lab, to: SocketAddr, first: &[u8]) {
    let first = first.to_vec();
    lab.devices[0].ns.run(move || {
        if let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_secs(3)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = s.write_all(&first);
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
        }
    });
}

/// Device 0 runs `openssl s_client` to `to`, asking for `name` (none when empty), and
/// sends `input` once connected.
fn tls_client(lab: &Lab, to: SocketAddr, name: &str, input: &'static [u8]) {
    let (target, name) = (to.to_string(), name.to_string());
    lab.devices[0].ns.run(move || {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-quiet", "-connect", &target]);
        if name.is_empty() {
            cmd.arg("-noservername");
        } else {
            cmd.args(["-servername", &name]);
        }
        let mut c = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl");
        if let Some(mut i) = c.stdin.take() {
            let _ = i.write_all(input);
        }
        std::thread::sleep(Duration::from_millis(700));
        let _ = c.kill();
        let _ = c.wait();
    });
}

/// Jitter, ms, from a fixed sequence: the same beacon every recording.
const JITTER: [i64; 14] = [
    0, 300, -240, 120, -360, 180, -60, 340, -180, 40, 220, -320, 80, -120,
];

fn stratum(lab: &Lab) {
    let pool = SocketAddr::new(SERVERS_V4[0].into(), 443);
    serve(lab, pool, 6, b"", POOL_JOB);
    for _ in 0..6 {
        client(lab, pool, XMRIG_LOGIN);
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn tor(lab: &Lab) {
    // Three relays by address, each asked for a made-up name as tor does.
    for (i, name) in [
        "www.q7xwzp2bcdn6kexm.com",
        "www.4sgxzmcvx3ls.com",
        "www.ab3dk7tq.com",
    ]
    .iter()
    .enumerate()
    {
        let relay = SocketAddr::new(SERVERS_V4[i].into(), 443);
        serve(lab, relay, 1, b"", b"");
        tls_client(lab, relay, name, b"");
    }
}

fn tls_beacon(lab: &Lab, dir: &Path) -> Result<()> {
    // A real TLS server with a self-signed certificate made now.
    let (key, cert) = (dir.join("k.pem"), dir.join("c.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=c2.lab"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if !ok {
        bail!("openssl req failed");
    }
    let mut server = lab
        .inet
        .cmd("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", "203.0.113.10:4443"])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    let c2 = SocketAddr::new(SERVERS_V4[0].into(), 4443);
    for j in JITTER {
        tls_client(lab, c2, "", b"GET /checkin HTTP/1.0\r\n\r\n");
        std::thread::sleep(Duration::from_millis((1300 + j) as u64));
    }
    let _ = server.kill();
    let _ = server.wait();
    Ok(())
}

fn dns_txt(lab: &Lab) {
    let _dns = lab.dnsmasq_dns(&[("c2.example", "")]);
    let from: std::net::IpAddr = lab.devices[0].v4.into();
    for i in 0..12u16 {
        let q = announce::dns_query_for(i, "cmd.c2.example", simple_dns::TYPE::TXT);
        lab.devices[0].ns.run(move || {
            let s = std::net::UdpSocket::bind((from, 0)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.send_to(&q, "198.51.100.1:53").unwrap();
            let mut buf = [0u8; 1500];
            let _ = s.recv(&mut buf);
        });
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn ssh(lab: &Lab) {
    let server = SocketAddr::new(SERVERS_V4[2].into(), 2222);
    serve(lab, server, 10, b"SSH-2.0-OpenSSH_9.9\r\n", b"");
    for _ in 0..10 {
        client(lab, server, b"SSH-2.0-OpenSSH_9.6\r\n");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// hydra through ten passwords against a real sshd, four connections at a time.
fn ssh_guessing(lab: &Lab, dir: &Path) -> Result<()> {
    let server = SocketAddr::new(SERVERS_V4[0].into(), 22);
    let _sshd = Sshd::start(&lab.inet, server);
    let words = dir.join("passwords");
    let list: Vec<String> = (0..10).map(|i| format!("kettle-guess-{i}")).collect();
    std::fs::write(&words, list.join("\n") + "\n")?;
    let out = lab.devices[0]
        .ns
        .cmd("hydra")
        .args(["-l", "root", "-t", "4", "-I", "-P"])
        .arg(&words)
        .arg(format!("ssh://{}", server.ip()))
        .output()
        .context("hydra")?;
    if !String::from_utf8_lossy(&out.stdout).contains("0 valid password") {
        bail!("hydra did not finish: {out:?}");
    }
    Ok(())
}

/// SIPVicious' svcrack through 300 passwords against a real registrar.
fn sip_guessing(lab: &Lab) -> Result<()> {
    let server = SocketAddr::new(SERVERS_V4[0].into(), 5060);
    let _kamailio = Registrar::start(&lab.inet, server, "kettle-7319");
    let out = lab.devices[0]
        .ns
        .cmd("svcrack")
        .args(["-u", "1000", "-r", "100-399", "-p", "5060"])
        .arg(server.ip().to_string())
        .output()
        .context("svcrack")?;
    if !out.status.success() {
        bail!("svcrack: {out:?}");
    }
    Ok(())
}

/// Sends a query for `name` (type `ty`) from device 0 to `server`, and waits a moment
/// for an answer (none may come).
fn query(lab: &Lab, id: u16, name: &str, ty: simple_dns::TYPE, server: &'static str) {
    let from: std::net::IpAddr = lab.devices[0].v4.into();
    let q = announce::dns_query_for(id, name, ty);
    lab.devices[0].ns.run(move || {
        let s = std::net::UdpSocket::bind((from, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s.send_to(&q, server).unwrap();
        let mut buf = [0u8; 1500];
        let _ = s.recv(&mut buf);
    });
}

/// A bot retrying its dead command server: a connect() to TCP/5050 where nothing
/// listens (each refused: one SYN) ten times a second for fifteen seconds.
fn c2_retries(lab: &Lab) {
    let dead = SocketAddr::new(SERVERS_V4[1].into(), 5050);
    for _ in 0..150 {
        lab.devices[0].ns.run(move || {
            let _ = TcpStream::connect_timeout(&dead, Duration::from_millis(300));
        });
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A DGA bot looking for its server: three small bursts of two generated `.com` names
/// (14 letters and digits), 20 s apart, each answered NXDOMAIN by the LAN's resolver.
fn dga_bursts(lab: &Lab) {
    let _dns = lab.dnsmasq_dns(&[("com", "")]);
    for burst in 0..3u16 {
        for i in 0..2u16 {
            let n = burst * 2 + i;
            let name = format!(
                "{}.com",
                announce::made_up(
                    u64::from(n) + 77,
                    14,
                    b"abcdefghijklmnopqrstuvwxyz0123456789"
                )
            );
            query(lab, n, &name, simple_dns::TYPE::A, "198.51.100.1:53");
        }
        if burst < 2 {
            std::thread::sleep(Duration::from_secs(20));
        }
    }
}

/// A tunnel to its own name server: twelve A queries for 24-character base32 names sent
/// straight to a lab server's address (nothing answers there), one a second.
fn tunnel_own_resolver(lab: &Lab) {
    for i in 0..12u16 {
        let name = format!(
            "{}.ns.example",
            announce::made_up(u64::from(i) + 7000, 24, announce::BASE32)
        );
        query(lab, i, &name, simple_dns::TYPE::A, "203.0.113.30:53");
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// An agent checking in over HTTP on TCP/8888 with a server it resolves by its own name
/// (through the LAN's resolver), fourteen times, a second apart with jitter.
fn named_beacon(lab: &Lab) {
    let _dns = lab.dnsmasq_dns(&[("agent.c2.example", "203.0.113.20")]);
    let c2 = SocketAddr::new(SERVERS_V4[1].into(), 8888);
    serve(
        lab,
        c2,
        JITTER.len(),
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    );
    query(
        lab,
        1,
        "agent.c2.example",
        simple_dns::TYPE::A,
        "198.51.100.1:53",
    );
    for (i, j) in JITTER.iter().enumerate() {
        let body = format!("{{\"id\":\"agent-7\",\"n\":{:02}}}", i % 10);
        let req = format!(
            "POST /beacon HTTP/1.1\r\nHost: agent.c2.example:8888\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        client(lab, c2, req.as_bytes());
        std::thread::sleep(Duration::from_millis((1000 + j / 2) as u64));
    }
}

fn main() -> Result<()> {
    let out: PathBuf = std::env::args()
        .nth(1)
        .context("usage: record OUTDIR [NAME.pcap ...]")?
        .into();
    let only: Vec<String> = std::env::args().skip(2).collect();
    std::fs::create_dir_all(&out)?;
    let tmp = TempDir::new();
    type Scenario = Box<dyn Fn(&Lab) -> Result<()>>;
    // A scenario that cannot fail but by panicking.
    let plain = |f: fn(&Lab)| -> Scenario {
        Box::new(move |l| {
            f(l);
            Ok(())
        })
    };
    let dir = tmp.join("certs");
    std::fs::create_dir_all(&dir)?;
    let words = tmp.join("words");
    std::fs::create_dir_all(&words)?;
    let scenarios: Vec<(&str, Scenario)> = vec![
        ("stratum-on-443.pcap", plain(stratum)),
        ("tor-names-on-443.pcap", plain(tor)),
        (
            "tls-beacon-on-4443.pcap",
            Box::new(move |l| tls_beacon(l, &dir)),
        ),
        ("dns-txt-channel.pcap", plain(dns_txt)),
        ("ssh-logins-on-2222.pcap", plain(ssh)),
        (
            "ssh-guessing-hydra.pcap",
            Box::new(move |l| ssh_guessing(l, &words)),
        ),
        ("sip-guessing-svcrack.pcap", Box::new(sip_guessing)),
        ("c2-retries-on-5050.pcap", plain(c2_retries)),
        ("dga-nxdomain-bursts.pcap", plain(dga_bursts)),
        ("dns-tunnel-own-resolver.pcap", plain(tunnel_own_resolver)),
        ("http-beacon-by-name-on-8888.pcap", plain(named_beacon)),
    ];
    for (name, run) in scenarios {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let lab = Lab::build(1);
        let path = out.join(name);
        {
            let _rec = Recording::start(&lab, &path)?;
            run(&lab)?;
        }
        println!("{}", path.display());
    }
    Ok(())
}
