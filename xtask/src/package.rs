//! `cargo xtask package`: the Debian package (cargo-deb, from the release binary), and
//! `--check`: install it on this machine, see that every file is where the unit expects
//! it, that `systemd-analyze verify` accepts the unit and `check-config` the shipped
//! configuration, then purge it and see nothing is left.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::toolchain::Tools;

/// What the package must install.
const FILES: &[&str] = &[
    "/usr/sbin/kettlewatch",
    "/etc/kettlewatch/kettlewatch.toml",
    "/etc/default/kettlewatch",
    "/etc/logrotate.d/kettlewatch",
    "/usr/lib/systemd/system/kettlewatch.service",
    "/usr/share/doc/kettlewatch/README.md",
];

/// Builds `target/debian/kettlewatch_*.deb` and returns its path.
pub fn build(tools: &Tools, root: &Path) -> Result<PathBuf> {
    // Only the binary the package holds: not the test harness's tools.
    crate::build_sensor_release(tools)?;
    crate::toolchain::install_cargo_deb()?;
    let out = root.join("target/debian");
    let _ = std::fs::remove_dir_all(&out);
    crate::run(tools.cargo().args([
        "deb",
        "-p",
        "sensor-user",
        "--no-build",
        "--output",
        out.to_str().context("utf-8 path")?,
    ]))?;
    let deb = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("cargo deb wrote no .deb")?;
    eprintln!("xtask: {}", deb.display());
    Ok(deb)
}

/// Purges the package however the check ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "kettlewatch"])
            .status();
    }
}

/// Runs `cmd`; its standard output, or an error with all it said.
pub fn sh(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs `deb` here, checks it, and purges it.
pub fn check(deb: &Path) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        bail!("package --check installs the package: run it as root");
    }
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "kettlewatch"])
        .output()?;
    if String::from_utf8_lossy(&status.stdout).contains("installed") {
        bail!("a kettlewatch package is already installed here; --check will not replace it");
    }
    let dir = tempdir()?;
    sh(Command::new("dpkg-deb").arg("--control").arg(deb).arg(&dir))?;
    let conffiles = std::fs::read_to_string(dir.join("conffiles")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    for conf in [
        "/etc/kettlewatch/kettlewatch.toml",
        "/etc/default/kettlewatch",
        "/etc/logrotate.d/kettlewatch",
    ] {
        if !conffiles.lines().any(|l| l == conf) {
            bail!(
                "{conf} is not a conffile (an upgrade would overwrite the user's edits): {conffiles}"
            );
        }
    }
    let _installed = Installed;
    sh(Command::new("dpkg").arg("-i").arg(deb))?;
    for f in FILES {
        if !Path::new(f).exists() {
            bail!("{f} was not installed");
        }
    }
    let verify = Command::new("systemd-analyze")
        .args(["verify", "/usr/lib/systemd/system/kettlewatch.service"])
        .output()?;
    let said = String::from_utf8_lossy(&verify.stderr);
    if !verify.status.success() || said.contains("kettlewatch.service") {
        bail!("systemd-analyze verify: {said}");
    }
    sh(Command::new("/usr/sbin/kettlewatch")
        .args(["check-config", "/etc/kettlewatch/kettlewatch.toml"]))?;
    // systemd's own score of the sandbox, from the unit file alone.
    let security = sh(Command::new("systemd-analyze").args([
        "security",
        "--offline=true",
        "/usr/lib/systemd/system/kettlewatch.service",
    ]))?;
    if let Some(l) = security
        .lines()
        .find(|l| l.contains("Overall exposure level"))
    {
        eprintln!("xtask: {}", l.trim_start_matches(['→', ' ']));
    }
    drop(_installed);
    for f in FILES {
        if Path::new(f).exists() {
            bail!("{f} is still there after dpkg --purge");
        }
    }
    eprintln!(
        "xtask: {} installs, its unit verifies, its configuration checks, and it purges clean",
        deb.display()
    );
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("kw-deb-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
