//! A real OpenSSH server (Debian's openssh-server) in a lab namespace, with a host key and
//! a client key made per run: password logins are refused for every account here, the
//! client key logs in as the user running the test. Stopped when dropped.

use std::{
    net::{SocketAddr, TcpStream},
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{env::TempDir, netns::Netns};

/// A running sshd.
pub struct Sshd {
    child: Child,
    dir: TempDir,
}

fn keygen(path: &std::path::Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ssh-keygen {}", path.display());
}

impl Sshd {
    /// Starts sshd in `ns` on `listen`.
    pub fn start(ns: &Netns, listen: SocketAddr) -> Self {
        let dir = TempDir::new();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
            .expect("authorized_keys");
        // sshd's privilege-separation directory, which the package's service makes.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let opt = |k: &str, v: &str| ["-o".to_string(), format!("{k}={v}")];
        let mut args: Vec<String> = vec!["-D".into(), "-e".into(), "-f".into(), "/dev/null".into()];
        for (k, v) in [
            ("ListenAddress", listen.to_string()),
            ("HostKey", dir.join("host_key").display().to_string()),
            (
                "AuthorizedKeysFile",
                dir.join("authorized_keys").display().to_string(),
            ),
            ("PidFile", dir.join("sshd.pid").display().to_string()),
            ("StrictModes", "no".into()),
            ("UsePAM", "no".into()),
            ("PasswordAuthentication", "yes".into()),
            ("PermitRootLogin", "yes".into()),
        ] {
            args.extend(opt(k, &v));
        }
        let child = ns
            .cmd("/usr/sbin/sshd")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: the per-connection processes go with it at drop.
            .process_group(0)
            .spawn()
            .expect("start sshd");
        let s = Sshd { child, dir };
        let up = ns.run(move || {
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        });
        assert!(up, "sshd did not listen on {listen}");
        s
    }

    /// The private key that logs in.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_key")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the group is the one spawned above.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
