//! `cargo xtask fuzz`: a long run of the XDP fuzzer; with `--parser-seeds`, the starting
//! inputs of the userspace parsers' fuzz targets (`cargo xtask fuzz-parsers`).

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
    /// Write the parser fuzz targets' seeds under DIR/TARGET/ and exit.
    #[arg(long, value_name = "DIR")]
    parser_seeds: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let fixtures = env::fixtures();
    if let Some(dir) = args.parser_seeds {
        return write_parser_seeds(&fixtures, &dir);
    }
    let seeds = fuzz::seeds(Some(&fixtures));
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

fn write_parser_seeds(fixtures: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    use anyhow::Context as _;
    let doc = env::workspace().join("docs/configuration.md");
    let text = std::fs::read_to_string(&doc).with_context(|| doc.display().to_string())?;
    let seeds = sensor_user::fuzzing::seeds(fixtures, &text);
    anyhow::ensure!(
        seeds.iter().any(|(t, _)| *t == "config"),
        "{} has no ```toml block with [sensor]: the config target would have no seed",
        doc.display()
    );
    for (i, (target, bytes)) in seeds.iter().enumerate() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).with_context(|| d.display().to_string())?;
        std::fs::write(d.join(format!("seed-{i:05}")), bytes)?;
    }
    let mut per: std::collections::BTreeMap<&str, usize> = Default::default();
    for (t, _) in &seeds {
        *per.entry(t).or_default() += 1;
    }
    eprintln!("seeds under {}: {per:?}", dir.display());
    Ok(())
}
