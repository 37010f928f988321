//! The pinned toolchain, bpf-linker built against that toolchain's own libLLVM, and the
//! Debian packages the tests use (../shared/toolchain.md explains the recipe).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

/// The one place the toolchain is pinned (aya 0.16 needs Rust 1.98 or later).
pub const TOOLCHAIN: &str = "1.99.1";
const BPF_LINKER: &str = "0.13.0";
/// The parser fuzz targets need a nightly (libFuzzer's sanitizer-coverage flags); pinned so
/// a finding reproduces with the same compiler.
pub const FUZZ_NIGHTLY: &str = "nightly-2026-10-01";
const CARGO_FUZZ: &str = "0.13.2";
/// Builds the Debian package (`cargo xtask package`).
const CARGO_DEB: &str = "3.8.0";
/// What the tests and demo run: tshark (independent capture reader), iproute2 (labs),
/// iputils-ping, dnsmasq and busybox's udhcpc (real DHCP in the labs), and bpftool for
/// inspecting attachments; for `cargo xtask bench`, the counters the sensor is compared
/// with (tcpdump, pmacct, softflowd) and the plot's font; a real Prometheus that scrapes
/// the metrics endpoint. A leading `/` names a file.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("tshark", "tshark"),
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("dnsmasq", "dnsmasq-base"),
    ("busybox", "busybox"),
    ("bpftool", "bpftool"),
    ("tcpdump", "tcpdump"),
    ("pmacctd", "pmacct"),
    ("softflowd", "softflowd"),
    ("prometheus", "prometheus"),
    ("nats-server", "nats-server"),
    ("openssl", "openssl"),
    // Password guessing labs: an SSH server and hydra; a SIP registrar, a guessing tool
    // and a phone.
    ("sshd", "openssh-server"),
    ("hydra", "hydra"),
    ("kamailio", "kamailio"),
    ("svcrack", "sipvicious"),
    ("sipsak", "sipsak"),
    // `package --check` boots systemd in a container to run the unit under it.
    ("systemd-nspawn", "systemd-container"),
    // The console test's browser.
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "fonts-dejavu-core",
    ),
];

/// Paths of the installed build tools.
pub struct Tools {
    linker_bin: PathBuf,
}

impl Tools {
    /// Installs whatever is missing and says where it is.
    pub fn setup() -> Result<Self> {
        install_toolchain()?;
        let linker_bin = install_bpf_linker()?;
        install_debian_packages()?;
        Ok(Self { linker_bin })
    }

    /// `cargo` of the pinned toolchain with bpf-linker on PATH.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new("rustup");
        cmd.args(["run", TOOLCHAIN, "cargo"]);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.linker_bin.clone()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("valid PATH"));
        // Cargo run by xtask would otherwise inherit the outer toolchain's choice.
        cmd.env_remove("RUSTUP_TOOLCHAIN");
        cmd.env_remove("RUSTC");
        cmd
    }
}

fn ok(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn install_toolchain() -> Result<()> {
    let listed = output(Command::new("rustup").args(["toolchain", "list"]))?;
    let have = listed
        .lines()
        .any(|l| l.starts_with(&format!("{TOOLCHAIN}-")));
    let components = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        TOOLCHAIN,
    ]))
    .unwrap_or_default();
    if have
        && ["rust-src", "clippy", "rustfmt"]
            .iter()
            .all(|c| components.lines().any(|l| l.starts_with(c)))
    {
        return Ok(());
    }
    eprintln!("xtask: installing Rust {TOOLCHAIN} with rust-src, clippy and rustfmt");
    ok(Command::new("rustup").args([
        "toolchain",
        "install",
        TOOLCHAIN,
        "--profile",
        "minimal",
        "--component",
        "rust-src,clippy,rustfmt",
    ]))
}

/// The pinned nightly and cargo-fuzz, for `cargo xtask fuzz-parsers` only (the rest of
/// the build stays on the stable pin).
pub fn install_fuzzing() -> Result<()> {
    let listed = output(Command::new("rustup").args(["toolchain", "list"]))?;
    if !listed
        .lines()
        .any(|l| l.starts_with(&format!("{FUZZ_NIGHTLY}-")))
    {
        eprintln!("xtask: installing Rust {FUZZ_NIGHTLY} for the fuzz targets");
        ok(Command::new("rustup").args([
            "toolchain",
            "install",
            FUZZ_NIGHTLY,
            "--profile",
            "minimal",
        ]))?;
    }
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ));
    if !have {
        eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ} (once, a few minutes)");
        ok(Command::new("rustup").args([
            "run",
            TOOLCHAIN,
            "cargo",
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ,
        ]))?;
    }
    Ok(())
}

/// cargo-deb, pinned, for `cargo xtask package`.
pub fn install_cargo_deb() -> Result<()> {
    let have = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_DEB));
    if !have {
        eprintln!("xtask: installing cargo-deb {CARGO_DEB} (once, a few minutes)");
        ok(Command::new("rustup").args([
            "run",
            TOOLCHAIN,
            "cargo",
            "install",
            "cargo-deb",
            "--locked",
            "--version",
            CARGO_DEB,
        ]))?;
    }
    Ok(())
}

pub(crate) fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("kettlewatch")
}

/// bpf-linker linked against the pinned toolchain's libLLVM; built once, kept in the cache.
fn install_bpf_linker() -> Result<PathBuf> {
    let root = cache_dir().join(format!("bpf-linker-{BPF_LINKER}-rust-{TOOLCHAIN}"));
    let bin = root.join("bin");
    if bin.join("bpf-linker").is_file() {
        return Ok(bin);
    }
    let rustc = |args: &[&str]| {
        output(
            Command::new("rustup")
                .args(["run", TOOLCHAIN, "rustc"])
                .args(args),
        )
    };
    let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?);
    let lib = std::fs::read_dir(sysroot.join("lib"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .context("the toolchain ships no libLLVM.so.*")?;
    let major = rustc(&["-vV"])?
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next().map(str::to_string))
        .context("rustc -vV names no LLVM version")?;
    // bpf-linker looks for libLLVM.so under LLVM_PREFIX/lib; the rpath it records keeps
    // finding the soname there at run time.
    let shim = root.join("llvm-shim/lib");
    std::fs::create_dir_all(&shim)?;
    for name in ["libLLVM.so", lib.as_str()] {
        let link = shim.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(sysroot.join("lib").join(&lib), &link)?;
    }
    eprintln!("xtask: building bpf-linker {BPF_LINKER} against {lib} (once, about a minute)");
    ok(Command::new("rustup")
        .args([
            "run",
            TOOLCHAIN,
            "cargo",
            "install",
            "bpf-linker",
            "--locked",
        ])
        .args(["--version", BPF_LINKER, "--no-default-features"])
        .args(["--features", &format!("llvm-{major}")])
        .arg("--root")
        .arg(&root)
        .env("LLVM_PREFIX", root.join("llvm-shim")))?;
    Ok(bin)
}

pub fn on_path(name: &str) -> bool {
    if name.starts_with('/') {
        return Path::new(name).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        || Path::new("/usr/sbin").join(name).is_file()
        || Path::new("/sbin").join(name).is_file()
}

/// As root with apt, installs the missing packages; otherwise says what is missing (the
/// tests that need them then say they are skipping, or fail under CI=true).
fn install_debian_packages() -> Result<()> {
    install_packages(DEBIAN_PACKAGES)
}

/// Installs, as root with apt, the Debian packages whose commands (cmd, package) are not
/// on PATH; elsewhere says which are missing.
pub fn install_packages(wanted: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(cmd, _)| !on_path(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    if !root || !on_path("apt-get") {
        eprintln!("xtask: missing packages {missing:?}; install them (as root with apt)");
        return Ok(());
    }
    eprintln!("xtask: installing {missing:?} with apt-get");
    ok(Command::new("apt-get").arg("update").arg("-qq"))?;
    // The servers among them (sshd, kamailio, nats-server, ...) are started by the
    // tests that need them, in their namespaces: never as services of this machine.
    let _no_start = NoServiceStart::new()?;
    ok(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Debian's policy-rc.d (exit 101: "action forbidden") for the length of an install,
/// where the machine has none of its own; removed again on drop.
struct NoServiceStart(Option<&'static str>);

impl NoServiceStart {
    const PATH: &'static str = "/usr/sbin/policy-rc.d";

    fn new() -> Result<Self> {
        if std::path::Path::new(Self::PATH).exists() {
            return Ok(Self(None));
        }
        std::fs::write(
            Self::PATH,
            "#!/bin/sh\n# xtask setup: no service starts while it installs\nexit 101\n",
        )?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(Self::PATH, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self(Some(Self::PATH)))
    }
}

impl Drop for NoServiceStart {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
