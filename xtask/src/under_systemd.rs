//! `cargo xtask package --check`, after `package::check`: the unit run by a real systemd.
//!
//! This host's PID 1 is not systemd, so `systemd-nspawn --boot` starts one: the container's
//! root is this host's root under a RAM overlay (nothing it writes reaches the host), its
//! network is a namespace made here with one veth whose far end is a "device" in a second
//! namespace. Inside, the package is installed with dpkg, the interface set in
//! /etc/default/kettlewatch, and `systemctl start kettlewatch` must give a sensor that,
//! under every hardening line of the unit, attaches its XDP program, runs as a dynamic
//! user with exactly the unit's three capabilities, writes the device's traffic to its
//! event file, and detaches on `systemctl stop`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

/// CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39): the unit's bounding set.
const UNIT_CAPS: u64 = (1 << 12) | (1 << 38) | (1 << 39);

/// Everything the check made, undone on every exit path.
struct Container {
    tag: String,
    dir: PathBuf,
    nspawn: Option<Child>,
    init: Option<u32>,
}

impl Container {
    fn ns(&self) -> String {
        self.tag.clone()
    }
    fn device_ns(&self) -> String {
        format!("{}d", self.tag)
    }
    fn iface(&self) -> String {
        format!("{}a", self.tag)
    }
    fn merged(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// A command run inside the container, in all of its namespaces.
    fn inside(&self, args: &[&str]) -> Result<String> {
        let init = self.init.context("the container has not booted")?;
        crate::package::sh(
            Command::new("nsenter")
                .args(["-t", &init.to_string(), "-a", "--"])
                .args(args),
        )
        .context("in the container")
    }

    /// A property of the kettlewatch unit (`systemctl show -p NAME --value`).
    fn unit(&self, name: &str) -> Result<String> {
        Ok(self
            .inside(&["systemctl", "show", "-p", name, "--value", "kettlewatch"])?
            .trim()
            .to_string())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut nspawn) = self.nspawn.take() {
            // SIGTERM makes nspawn power the container off; a PID 1 still there after
            // that takes its whole PID namespace with it when killed.
            let _ = Command::new("kill")
                .args(["-TERM", &nspawn.id().to_string()])
                .status();
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until && matches!(nspawn.try_wait(), Ok(None)) {
                sleep(Duration::from_millis(200));
            }
            // Only while nspawn lives is the PID still the container's.
            if let (Some(init), Ok(None)) = (self.init, nspawn.try_wait()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &init.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = nspawn.kill();
            let _ = nspawn.wait();
        }
        let root = self.merged();
        let upper = self.dir.join("upper");
        for m in [&root, &upper] {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        for ns in [self.ns(), self.device_ns()] {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    crate::package::sh(cmd).map(drop)
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args))
}

/// Polls `f` until it gives `Some` or `secs` pass.
fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        sleep(Duration::from_millis(300));
    }
}

/// Boots systemd in a container over this host's root, installs `deb` there, and checks
/// the sensor the unit starts.
pub fn check(deb: &Path) -> Result<()> {
    for tool in ["systemd-nspawn", "nsenter"] {
        if !crate::toolchain::on_path(tool) {
            bail!("{tool} is needed (cargo xtask setup installs systemd-container)");
        }
    }
    let tag = format!("kwsd{}", std::process::id() % 10_000_000);
    let dir = std::env::temp_dir().join(format!("{tag}-systemd"));
    let mut c = Container {
        tag,
        dir,
        nspawn: None,
        init: None,
    };

    // The network: the container's namespace with the LAN side, a device beside it.
    for ns in [c.ns(), c.device_ns()] {
        ip(&["netns", "add", &ns])?;
    }
    let (ns, dev_ns, iface) = (c.ns(), c.device_ns(), c.iface());
    let peer = format!("{}b", c.tag);
    ip(&["link", "add", &iface, "type", "veth", "peer", "name", &peer])?;
    ip(&["link", "set", &iface, "netns", &ns])?;
    ip(&["link", "set", &peer, "netns", &dev_ns])?;
    ip(&["-n", &ns, "addr", "add", "192.0.2.1/24", "dev", &iface])?;
    ip(&["-n", &dev_ns, "addr", "add", "192.0.2.10/24", "dev", &peer])?;
    for (n, l) in [(&ns, &iface), (&ns, &"lo".to_string()), (&dev_ns, &peer)] {
        ip(&["-n", n, "link", "set", l, "up"])?;
    }
    let out = Command::new("ip")
        .args(["-n", &dev_ns, "-j", "link", "show", &peer])
        .output()?;
    let link: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let device_mac = link[0]["address"]
        .as_str()
        .context("the device's MAC")?
        .to_string();

    // The root: this host's, under a RAM overlay.
    let upper = c.dir.join("upper");
    let root = c.merged();
    std::fs::create_dir_all(&upper)?;
    std::fs::create_dir_all(&root)?;
    run(Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&upper))?;
    std::fs::create_dir_all(upper.join("u"))?;
    std::fs::create_dir_all(upper.join("w"))?;
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir=/,upperdir={},workdir={}",
            upper.join("u").display(),
            upper.join("w").display()
        ))
        .arg(&root))?;
    std::fs::copy(deb, root.join("root/kettlewatch.deb")).context("copying the package in")?;

    let log = std::fs::File::create(c.dir.join("upper/console.log"))?;
    c.nspawn = Some(
        Command::new("systemd-nspawn")
            .arg("--boot")
            .arg("--directory")
            .arg(&root)
            .arg(format!("--machine={}", c.tag))
            // No systemd on the host to register with or to make a scope.
            .args(["--register=no", "--keep-unit", "--link-journal=no"])
            .arg(format!("--network-namespace-path=/run/netns/{ns}"))
            // Not in nspawn's default set; the unit asks for them.
            .args([
                "--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN",
                "--system-call-filter=bpf perf_event_open",
                "--console=pipe",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting systemd-nspawn")?,
    );
    let nspawn_pid = c.nspawn.as_ref().map(Child::id).unwrap_or_default();
    c.init = wait_for(30, || {
        let kids =
            std::fs::read_to_string(format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children"))
                .ok()?;
        kids.split_whitespace().next()?.parse().ok()
    });
    let console = || std::fs::read_to_string(c.dir.join("upper/console.log")).unwrap_or_default();
    if c.init.is_none() {
        bail!("systemd-nspawn started no container:\n{}", console());
    }
    let booted = wait_for(90, || {
        let s = c.inside(&["systemctl", "is-system-running"]).ok()?;
        (s.trim() == "running" || s.trim() == "degraded").then_some(())
    });
    if booted.is_none() {
        bail!(
            "systemd in the container did not finish booting:\n{}",
            console()
        );
    }
    let pid1 = c.inside(&["cat", "/proc/1/comm"])?;
    if pid1.trim() != "systemd" {
        bail!("PID 1 in the container is {pid1:?}, not systemd");
    }

    // A fresh machine: a sensor run by hand on this host may have left its default state
    // directory, which DynamicUser would try to move into /var/lib/private (across the
    // overlay, where the move fails).
    c.inside(&[
        "rm",
        "-rf",
        "/var/lib/kettlewatch",
        "/var/lib/private/kettlewatch",
        "/var/log/kettlewatch",
    ])?;
    c.inside(&["dpkg", "-i", "/root/kettlewatch.deb"])?;
    c.inside(&[
        "sed",
        "-i",
        &format!("s/^KETTLEWATCH_IFACE=.*/KETTLEWATCH_IFACE={iface}/"),
        "/etc/default/kettlewatch",
    ])?;
    let status = || {
        let journal = c
            .inside(&["journalctl", "--no-pager", "-n", "40", "-u", "kettlewatch"])
            .unwrap_or_else(|e| format!("{e:#}"));
        let status = c
            .inside(&["systemctl", "status", "--no-pager", "kettlewatch"])
            .unwrap_or_else(|e| format!("{e:#}"));
        format!("{status}\n{journal}")
    };
    if let Err(e) = c.inside(&["systemctl", "start", "kettlewatch"]) {
        bail!("{e:#}\n{}", status());
    }

    // Attached: the XDP program on the interface, and the sensor's first stats record.
    let attached = wait_for(60, || {
        let out = Command::new("ip")
            .args(["-n", &ns, "-d", "link", "show", &iface])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("prog/xdp")
            .then_some(())
    });
    if attached.is_none() {
        bail!("the unit's sensor attached no XDP program:\n{}", status());
    }
    let main_pid: u32 = c.unit("MainPID")?.parse().context("MainPID")?;
    let proc_status = c.inside(&["cat", &format!("/proc/{main_pid}/status")])?;
    let field = |name: &str| {
        proc_status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let uid = field("Uid:");
    if uid.is_empty() || uid.contains(&"0") {
        bail!("the sensor runs with uid {uid:?}: the unit's DynamicUser did not take");
    }
    let cap_eff = field("CapEff:");
    let cap_eff =
        u64::from_str_radix(cap_eff.first().copied().unwrap_or(""), 16).context("CapEff")?;
    if cap_eff != UNIT_CAPS {
        bail!(
            "the sensor's effective capabilities are {cap_eff:#x}, the unit gives {UNIT_CAPS:#x}"
        );
    }
    let no_new_privs = field("NoNewPrivs:");
    if no_new_privs.first() != Some(&"1") {
        bail!("NoNewPrivs is {no_new_privs:?} for the sensor");
    }

    // A device's traffic reaches the event file the unit names.
    let dev = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &dev_ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    let seen = wait_for(60, || {
        let _ = dev(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "192.0.2.1"]);
        let eve = c.inside(&["cat", "/var/log/kettlewatch/eve.json"]).ok()?;
        eve.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| {
                e["event_type"] == "flow"
                    && e["src_ip"] == "192.0.2.10"
                    && e["iot"]["device"]["mac"]
                        .as_str()
                        .is_some_and(|m| m.eq_ignore_ascii_case(&device_mac))
            })
            .then_some(())
    });
    if seen.is_none() {
        let eve = c
            .inside(&["tail", "-n", "5", "/var/log/kettlewatch/eve.json"])
            .unwrap_or_default();
        bail!(
            "no flow event from the device {device_mac} in /var/log/kettlewatch/eve.json:\n{eve}\n{}",
            status()
        );
    }
    let state = c.inside(&["ls", "/var/lib/kettlewatch"])?;
    if state.trim().is_empty() {
        bail!("the sensor wrote nothing to its StateDirectory");
    }

    // SIGHUP through the unit's ExecReload (the policy reloads, the output reopens)
    // under the system-call filter: still the same process, never restarted.
    c.inside(&["systemctl", "reload", "kettlewatch"])?;
    sleep(Duration::from_secs(2));
    let after: u32 = c.unit("MainPID")?.parse().context("MainPID")?;
    let restarts = c.unit("NRestarts")?;
    if after != main_pid || restarts != "0" {
        bail!(
            "after systemctl reload the sensor is PID {after} (was {main_pid}), restarted {} times:\n{}",
            restarts,
            status()
        );
    }

    // A clean stop: the program detached and the unit's result a success.
    c.inside(&["systemctl", "stop", "kettlewatch"])?;
    let out = Command::new("ip")
        .args(["-n", &ns, "-d", "link", "show", &iface])
        .output()?;
    if String::from_utf8_lossy(&out.stdout).contains("prog/xdp") {
        bail!("the XDP program is still attached after systemctl stop");
    }
    let result = c.unit("Result")?;
    if result != "success" {
        bail!("systemctl stop left the unit with result {result:?}");
    }
    eprintln!(
        "xtask: under systemd (PID 1 in a container): the unit's sensor attached to {iface} \
         as uid {} with CapEff {cap_eff:#x} and NoNewPrivs, logged the device's flows, and \
         detached on stop",
        uid[0]
    );
    Ok(())
}
