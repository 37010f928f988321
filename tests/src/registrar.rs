//! A real SIP registrar (Debian's kamailio) in a lab namespace: REGISTER with HTTP digest
//! authentication (RFC 3261 22) against one password, no database; stopped when dropped.

use std::{
    net::{SocketAddr, UdpSocket},
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use crate::{env::TempDir, netns::Netns};

/// A running registrar.
pub struct Registrar {
    child: Child,
    _dir: TempDir,
}

/// Where Debian installs kamailio's modules (the directory names the architecture).
fn modules() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("kamailio/modules"))
        .find(|p| p.join("auth.so").is_file())
        .expect("kamailio's modules (Debian package kamailio)")
}

impl Registrar {
    /// Starts kamailio in `ns` on UDP `listen`, accepting a REGISTER only with the digest
    /// of `password` (for any user); every other request is refused.
    pub fn start(ns: &Netns, listen: SocketAddr, password: &str) -> Self {
        let dir = TempDir::new();
        let config = format!(
            r#"#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:{listen}
mpath="{modules}/"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "auth.so"

request_route {{
    if (method == "REGISTER") {{
        $var(pw) = "{password}";
        if (!pv_www_authenticate("$td", "$var(pw)", "0")) {{
            www_challenge("$td", "0");
            exit;
        }}
        sl_send_reply("200", "OK");
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"#,
            modules = modules().display()
        );
        let path = dir.join("kamailio.cfg");
        std::fs::write(&path, config).expect("write kamailio.cfg");
        std::fs::create_dir_all(dir.join("run")).expect("kamailio's run directory");
        let child = ns
            .cmd("kamailio")
            .arg("-f")
            .arg(&path)
            .args(["-DD", "-E", "-Y"])
            .arg(dir.join("run"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: kamailio forks workers, and they all go at drop.
            .process_group(0)
            .spawn()
            .expect("start kamailio");
        let r = Registrar { child, _dir: dir };
        r.wait_ready(ns, listen);
        r
    }

    /// Until an OPTIONS gets an answer (405 here): the registrar is listening.
    fn wait_ready(&self, ns: &Netns, to: SocketAddr) {
        let answered = ns.run(move || {
            let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            let until = Instant::now() + Duration::from_secs(10);
            let mut buf = [0u8; 2048];
            while Instant::now() < until {
                let local = s.local_addr().expect("local");
                let msg = format!(
                    "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ready\r\nFrom: <sip:probe@{to}>;tag=1\r\nTo: <sip:probe@{to}>\r\nCall-ID: ready@{local}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = s.send_to(msg.as_bytes(), to);
                if let Ok(n) = s.recv(&mut buf) {
                    return buf[..n].starts_with(b"SIP/2.0 ");
                }
            }
            false
        });
        assert!(answered, "kamailio did not answer on {to}");
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the group is the one spawned above.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
