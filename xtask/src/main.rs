//! `cargo xtask`: the project's build, run, demo, test and bench entry points.
//!
//! xtask compiles with whatever toolchain a fresh machine has; it then installs the
//! pinned toolchain and bpf-linker itself and drives every real build through them.

mod toolchain;

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
    /// `cargo fmt --check` and `cargo clippy --all-targets -- -D warnings`.
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
    /// Benchmarks (not part of the tests).
    Bench,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match cli.command {
        Cmd::Setup => {
            Tools::setup()?;
        }
        Cmd::Build { release } => {
            let tools = Tools::setup()?;
            build(&tools, release)?;
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
        Cmd::Bench => {
            let tools = Tools::setup()?;
            build(&tools, true)?;
            let out = root.join("target/bench").display().to_string();
            run(&mut harness(&tools, "bench", &["--out".to_string(), out]))?;
        }
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
