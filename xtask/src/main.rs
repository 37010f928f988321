//! `cargo xtask`: the project's build, run, demo, test and bench entry points.
//!
//! xtask compiles with whatever toolchain a fresh machine has; it then installs the
//! pinned toolchain and bpf-linker itself and drives every real build through them.

mod cross;
mod home_assistant;
mod package;
mod toolchain;
mod under_systemd;
mod vm;

use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

use toolchain::Tools;

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the build needs: the pinned toolchain, rust-src, bpf-linker, and (as
    /// root) the Debian packages the tests and demo use.
    Setup,
    /// Build the eBPF object and the `kettlewatch` binary.
    Build {
        /// Optimised build.
        #[arg(long)]
        release: bool,
        /// Cross-build the binary for another target (aarch64-unknown-linux-gnu), with
        /// Debian's cross compiler; the eBPF object is checked to be the x86-64 build's.
        #[arg(long)]
        target: Option<String>,
    },
    /// Build and run `kettlewatch` with the given arguments.
    Run {
        /// Arguments for kettlewatch, e.g. `run --iface lan0`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A lab of simulated IoT devices in network namespaces, with the sensor streaming.
    Demo {
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Run every test: unit, BPF_PROG_TEST_RUN, namespace labs, capture replays.
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The knowledge base check, `cargo fmt --check` and `cargo clippy --all-targets -- -D warnings`.
    Lint,
    /// A long fuzzing run of the XDP program (a bounded one is part of the tests).
    Fuzz {
        /// Frames to run.
        #[arg(long, default_value_t = 5_000_000)]
        iterations: u64,
        /// RNG seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of every userspace parser:
    /// discovery decoders, feed formats, MUD, config and rules files, pcap, ring records.
    FuzzParsers {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// A smoke run: the targets built unoptimised and without AddressSanitizer, which
        /// cuts the cold build from about 17 minutes to a few (CI); the parsers are safe
        /// Rust, so what a short run finds is a panic or an overflow either way.
        #[arg(long)]
        quick: bool,
        /// Targets to run (default: every file in sensor-user/fuzz/fuzz_targets).
        targets: Vec<String>,
    },
    /// Identification quality on the labelled development set (../shared/fixtures/labels.csv):
    /// per device label against category, then accuracy, coverage, precision at `strong`.
    Eval {
        /// Also fail when a figure falls below tests/eval-floor.toml (CI runs this).
        #[arg(long)]
        check: bool,
    },
    /// The kernel-facing tests inside Debian's Linux 6.1 under qemu (KVM if it boots,
    /// else TCG): program loads through the verifier, BPF_PROG_TEST_RUN, the egress
    /// program, capture replays. Arguments after `--` filter the tests by name.
    VmTest {
        /// Kernel series: 6.1 (Debian 12's, the cloud flavour).
        #[arg(long, default_value = "6.1")]
        kernel: String,
        /// Guest architecture: x86_64, or aarch64 (the cross-built sensor under
        /// qemu-system-aarch64: load, replay, attach; not in CI, see the README).
        #[arg(long, default_value = "x86_64")]
        arch: String,
        /// Every test of the kernel-facing targets, not the selection (slow under TCG).
        #[arg(long, conflicts_with = "quick")]
        all: bool,
        /// The smaller selection CI runs.
        #[arg(long)]
        quick: bool,
        #[arg(last = true)]
        filter: Vec<String>,
    },
    /// Benchmarks (not part of the tests). Arguments after `--` go to the harness
    /// (`--rounds N`, `--e2e-only`, `--latency-only`, `--frames-only`).
    Bench {
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Import Home Assistant's discovery matchers (pinned wheel from PyPI, hash-checked)
    /// into sensor-user/data/generated/home-assistant.toml.
    ImportHa {
        /// A directory holding the wheel already (no download).
        #[arg(long)]
        wheel_dir: Option<PathBuf>,
    },
    /// The Debian package (cargo-deb): binary, hardened systemd unit, default configuration
    /// in /etc/kettlewatch, logrotate snippet; in target/debian.
    Package {
        /// Also install it here (root), check its files, unit (`systemd-analyze verify`)
        /// and configuration, and purge it; then start its unit under systemd in a
        /// container (`under_systemd.rs`).
        #[arg(long)]
        check: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match cli.command {
        Cmd::ImportHa { wheel_dir } => {
            home_assistant::import(&root, wheel_dir.as_deref())?;
        }
        Cmd::Setup => {
            Tools::setup()?;
        }
        Cmd::Build { release, target } => {
            let tools = Tools::setup()?;
            match target {
                Some(t) => {
                    cross::build(&tools, &root, &t, release)?;
                }
                None => build(&tools, release)?,
            }
        }
        Cmd::Run { args } => {
            let tools = Tools::setup()?;
            build(&tools, true)?;
            let bin = root.join("target/release/kettlewatch");
            let status = run_interruptible(Command::new(&bin).args(&args))?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Cmd::Demo { duration } => {
            let tools = Tools::setup()?;
            build(&tools, true)?;
            let mut args = vec!["--sensor".to_string()];
            args.push(
                root.join("target/release/kettlewatch")
                    .display()
                    .to_string(),
            );
            if let Some(d) = duration {
                args.extend(["--duration".to_string(), d.to_string()]);
            }
            let status = run_interruptible(&mut harness(&tools, "demo", &args))?;
            if !status.success() {
                bail!("the demo failed: {status}");
            }
        }
        Cmd::Test { args } => {
            let tools = Tools::setup()?;
            build(&tools, false)?;
            let mut test = tools.cargo();
            test.args(["test"]).args(&args);
            test.env("KETTLEWATCH_BIN", root.join("target/debug/kettlewatch"));
            let (passed, failed) = run_counting_tests(&mut test)?;
            println!("\ntests: {passed} passed, {failed} failed");
            if failed > 0 {
                bail!("{failed} tests failed");
            }
        }
        Cmd::Lint => {
            let tools = Tools::setup()?;
            // The product knowledge base's own checks (keys, globs, examples, registry).
            run(Command::new("python3").arg("sensor-user/data/products/check.py"))?;
            run(tools.cargo().args(["fmt", "--all", "--check"]))?;
            run(tools
                .cargo()
                .args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
        }
        Cmd::Fuzz { iterations, seed } => {
            let tools = Tools::setup()?;
            let args = [
                "--iterations".to_string(),
                iterations.to_string(),
                "--seed".to_string(),
                seed.to_string(),
            ];
            run(&mut harness(&tools, "fuzz", &args))?;
        }
        Cmd::FuzzParsers {
            seconds,
            quick,
            targets,
        } => {
            let tools = Tools::setup()?;
            toolchain::install_fuzzing()?;
            fuzz_parsers(&tools, &root, seconds, quick, targets)?;
        }
        Cmd::VmTest {
            kernel,
            arch,
            all,
            quick,
            filter,
        } => {
            let tools = Tools::setup()?;
            let selection = match (all, quick) {
                (true, _) => vm::Selection::All,
                (_, true) => vm::Selection::Quick,
                _ => vm::Selection::Default,
            };
            vm::run(&tools, &root, &kernel, &arch, selection, &filter)?;
        }
        Cmd::Eval { check } => {
            let tools = Tools::setup()?;
            // Only the sensor in release (the package step builds the same one); the scorer
            // runs from the debug build the tests already made, so CI compiles nothing twice.
            build_sensor_release(&tools)?;
            let sensor = root
                .join("target/release/kettlewatch")
                .display()
                .to_string();
            std::fs::create_dir_all(root.join("target/eval"))?;
            let out = root.join("target/eval/results.md").display().to_string();
            let mut args = vec!["--sensor".to_string(), sensor, "--out".to_string(), out];
            if check {
                args.push("--check".into());
                args.push(root.join("tests/eval-floor.toml").display().to_string());
            }
            let status = run_interruptible(&mut debug_harness(&tools, "eval", &args))?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Cmd::Package { check } => {
            let tools = Tools::setup()?;
            let deb = package::build(&tools, &root)?;
            if check {
                package::check(&deb)?;
                // Then the installed unit under a real systemd.
                under_systemd::check(&deb)?;
            }
        }
        Cmd::Bench { args } => {
            let tools = Tools::setup()?;
            build(&tools, true)?;
            let out = root.join("target/bench").display().to_string();
            let mut all = vec!["--out".to_string(), out];
            all.extend(args);
            run(&mut harness(&tools, "bench", &all))?;
        }
    }
    Ok(())
}

/// Builds the fuzz targets once, writes their seeds from the fixtures, runs each for
/// `seconds`, and reports executions, coverage and findings per target.
fn fuzz_parsers(
    tools: &Tools,
    root: &std::path::Path,
    seconds: u64,
    quick: bool,
    targets: Vec<String>,
) -> Result<()> {
    let fuzz_dir = root.join("sensor-user/fuzz");
    let work = root.join("target/fuzz");
    let seeds = work.join("seeds");
    let _ = std::fs::remove_dir_all(&seeds);
    run(tools
        .cargo()
        .args([
            "run",
            "-q",
            "-p",
            "kettlewatch-tests",
            "--bin",
            "fuzz",
            "--",
            "--parser-seeds",
        ])
        .arg(&seeds))?;
    let targets = if targets.is_empty() {
        let mut all: Vec<String> = std::fs::read_dir(fuzz_dir.join("fuzz_targets"))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".rs")
                    .map(str::to_string)
            })
            .collect();
        all.sort();
        all
    } else {
        targets
    };
    let cargo_fuzz = |args: &[&str]| {
        let mut cmd = Command::new("rustup");
        cmd.args(["run", toolchain::FUZZ_NIGHTLY, "cargo", "fuzz"])
            .args(args)
            .arg("--target-dir")
            .arg(work.join("build"))
            .current_dir(&fuzz_dir)
            // No bpf-linker on nightly, and the parsers need no eBPF object.
            .env("AYA_BUILD_SKIP", "1");
        cmd
    };
    // -a: debug assertions, so integer overflows are findings too. A quick build is the
    // dev profile (debug assertions on) without a sanitizer.
    let flags: &[&str] = if quick {
        &["--dev", "-s", "none"]
    } else {
        &["-a"]
    };
    run(&mut cargo_fuzz(&[&["build"], flags].concat()))?;
    let mut report = Vec::new();
    for t in &targets {
        let corpus = work.join("corpus").join(t);
        let artifacts = work.join("artifacts").join(t);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let seed_dir = seeds.join(t);
        std::fs::create_dir_all(&seed_dir)?;
        let regressions = fuzz_dir.join("regressions").join(t);
        let mut cmd = cargo_fuzz(&[&["run"], flags, &[t.as_str()]].concat());
        cmd.arg(&corpus).arg(&seed_dir);
        if regressions.is_dir() {
            cmd.arg(&regressions);
        }
        cmd.arg("--").args([
            format!("-max_total_time={seconds}"),
            "-max_len=65536".into(),
            "-timeout=10".into(),
            "-rss_limit_mb=2048".into(),
            "-print_final_stats=1".into(),
            format!("-artifact_prefix={}/", artifacts.display()),
        ]);
        eprintln!("== fuzz {t} for {seconds} s");
        let out = cmd
            .stderr(std::process::Stdio::piped())
            .output()
            .with_context(|| format!("running {cmd:?}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let stat = |name: &str| {
            log.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .map_or("?".to_string(), |v| v.trim().to_string())
        };
        let cov = log
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once(" cov: ")
                    .and_then(|(_, r)| r.split_whitespace().next())
            })
            .unwrap_or("?")
            .to_string();
        if !out.status.success() {
            eprintln!("{log}");
        }
        report.push((
            t.clone(),
            out.status.success(),
            stat("number_of_executed_units"),
            cov,
        ));
    }
    println!("\n| target | result | executions | coverage (edges) |\n|---|---|---|---|");
    for (t, ok, execs, cov) in &report {
        let result = if *ok { "ok" } else { "FINDING" };
        println!("| {t} | {result} | {execs} | {cov} |");
    }
    let failed: Vec<&str> = report
        .iter()
        .filter(|r| !r.1)
        .map(|r| r.0.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzz findings in {failed:?}: the input is under {}/artifacts/TARGET/; fix it, then copy it to sensor-user/fuzz/regressions/TARGET/ so `cargo xtask test` replays it",
            work.display()
        );
    }
    Ok(())
}

/// A release binary of the test harness crate (the demo lab, the benchmarks).
fn harness(tools: &Tools, bin: &str, args: &[String]) -> Command {
    let mut cmd = tools.cargo();
    cmd.args([
        "run",
        "--release",
        "-q",
        "-p",
        "kettlewatch-tests",
        "--bin",
        bin,
        "--",
    ]);
    cmd.args(args);
    cmd
}

/// The same tool from the debug profile, for harnesses whose own speed does not matter.
fn debug_harness(tools: &Tools, bin: &str, args: &[String]) -> Command {
    let mut cmd = tools.cargo();
    cmd.args(["run", "-q", "-p", "kettlewatch-tests", "--bin", bin, "--"]);
    cmd.args(args);
    cmd
}

/// The release sensor binary alone (what `package` and `eval` replay through).
pub(crate) fn build_sensor_release(tools: &Tools) -> Result<()> {
    run(tools.cargo().args([
        "build",
        "--release",
        "-p",
        "sensor-user",
        "--bin",
        "kettlewatch",
    ]))
}

fn build(tools: &Tools, release: bool) -> Result<()> {
    let mut cmd = tools.cargo();
    cmd.args(["build", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)
}

/// Runs `cargo test`, echoing its output, and adds up its `test result:` lines: cargo
/// ends with the doc tests' (often empty) summary, which says nothing of the whole run.
fn run_counting_tests(cmd: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead as _, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {cmd:?}"))?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split([';', '.']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next()) {
                    match (n.parse::<u64>(), what) {
                        (Ok(n), "passed") => passed += n,
                        (Ok(n), "failed") => failed += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("{cmd:?} failed: {status}");
    }
    Ok((passed, failed))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// The child a SIGINT is passed on to (0: none yet).
static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

unsafe extern "C" {
    fn signal(sig: i32, handler: usize) -> usize;
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGINT: i32 = 2;

extern "C" fn forward_sigint(_: i32) {
    let pid = CHILD.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { kill(pid, SIGINT) };
    }
}

/// Runs a long-lived child (the sensor, the demo) so that Ctrl-C stops it cleanly: xtask
/// stays alive until the child has shut down (and, for the demo, removed its lab), and a
/// SIGINT sent to xtask alone is passed on.
fn run_interruptible(cmd: &mut Command) -> Result<std::process::ExitStatus> {
    // SAFETY: installing a handler that only reads an atomic and calls kill(2).
    unsafe { signal(SIGINT, forward_sigint as extern "C" fn(i32) as usize) };
    let mut child = cmd.spawn().with_context(|| format!("running {cmd:?}"))?;
    CHILD.store(child.id() as i32, std::sync::atomic::Ordering::SeqCst);
    Ok(child.wait()?)
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
