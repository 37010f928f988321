//! `cargo xtask fuzz`: a long run of the XDP fuzzer.

use anyhow::Result;
use clap::Parser;
use kettlewatch_tests::{env, fuzz};

#[derive(Parser)]
struct Args {
    /// Frames to run.
    #[arg(long, default_value_t = 5_000_000)]
    iterations: u64,
    /// RNG seed (a failure prints the frame; the seed reproduces the run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let fixtures = env::workspace().join("../shared/fixtures");
    let seeds = fuzz::seeds(fixtures.is_dir().then_some(fixtures.as_path()));
    eprintln!(
        "{} seed frames, {} iterations, seed {}",
        seeds.len(),
        args.iterations,
        args.seed
    );
    let start = std::time::Instant::now();
    let report = fuzz::run(&seeds, args.iterations, args.seed);
    println!("{report:?}\n{:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
