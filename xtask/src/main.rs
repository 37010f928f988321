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
    /// Benchmarks (not part of the tests).
    Bench,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match cli.command {
        Cmd::Setup => {
            Tools::setup(&root)?;
        }
        Cmd::Build { release } => {
            let tools = Tools::setup(&root)?;
            build(&tools, release)?;
        }
        Cmd::Run { args } => {
            let tools = Tools::setup(&root)?;
            build(&tools, true)?;
            let bin = root.join("target/release/kettlewatch");
            ignore_sigint();
            let status = Command::new(&bin).args(&args).status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Cmd::Demo { duration } => {
            let tools = Tools::setup(&root)?;
            build(&tools, true)?;
            let mut demo = tools.cargo();
            demo.args([
                "run",
                "--release",
                "-q",
                "-p",
                "kettlewatch-tests",
                "--bin",
                "demo",
                "--",
            ]);
            demo.arg("--sensor")
                .arg(root.join("target/release/kettlewatch"));
            if let Some(d) = duration {
                demo.args(["--duration", &d.to_string()]);
            }
            ignore_sigint();
            run(&mut demo)?;
        }
        Cmd::Test { args } => {
            let tools = Tools::setup(&root)?;
            build(&tools, false)?;
            let mut test = tools.cargo();
            test.args(["test"]).args(&args);
            test.env("KETTLEWATCH_BIN", root.join("target/debug/kettlewatch"));
            run(&mut test)?;
        }
        Cmd::Lint => {
            let tools = Tools::setup(&root)?;
            run(tools.cargo().args(["fmt", "--all", "--check"]))?;
            run(tools
                .cargo()
                .args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
        }
        Cmd::Bench => {
            let tools = Tools::setup(&root)?;
            build(&tools, true)?;
            let mut bench = tools.cargo();
            bench.args([
                "run",
                "--release",
                "-q",
                "-p",
                "kettlewatch-tests",
                "--bin",
                "bench",
                "--",
            ]);
            bench.arg("--out").arg(root.join("target/bench"));
            run(&mut bench)?;
        }
    }
    Ok(())
}

fn build(tools: &Tools, release: bool) -> Result<()> {
    let mut cmd = tools.cargo();
    cmd.args(["build", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Ctrl-C reaches the whole foreground group: the child shuts down (and, for the demo,
/// tears its lab down); xtask must outlive it rather than return the prompt early.
fn ignore_sigint() {
    unsafe extern "C" {
        fn signal(sig: i32, handler: usize) -> usize;
    }
    const SIGINT: i32 = 2;
    const SIG_IGN: usize = 1;
    // SAFETY: installing SIG_IGN has no preconditions.
    unsafe { signal(SIGINT, SIG_IGN) };
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
