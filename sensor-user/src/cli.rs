//! The command line: `run`, `replay`, `check-config`, `devices`, `version`.

use sensor_common::MacAddr;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    config::Config,
    ingest::live::{self, RunArgs},
    ingest::replay::{self, ReplayArgs},
    kernel::loader::{AttachMode, EgressAttach},
    store::state::{self, Store},
};

/// kettlewatch: an in-kernel IoT traffic sensor for Linux gateways.
#[derive(Parser, Debug)]
#[command(name = "kettlewatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Watch a LAN interface and stream events as JSON lines.
    Run {
        /// The gateway's LAN-facing interface.
        #[arg(long)]
        iface: String,
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where events go: a file, or - for standard output (overrides [output] path).
        #[arg(long)]
        output: Option<String>,
        /// json: EVE lines; text: one readable line per alert and device change and a
        /// periodic summary (the JSON still goes to --output when it is a file); auto:
        /// text when events would go to a terminal.
        #[arg(long, value_enum, default_value = "auto")]
        format: crate::emit::text::Format,
        /// XDP attach mode.
        #[arg(long, value_enum, default_value = "auto")]
        xdp_mode: AttachMode,
        /// How the egress (TC) program is attached.
        #[arg(long, value_enum, default_value = "auto")]
        egress_attach: EgressAttach,
        /// Once attached, run as this user with no capabilities.
        #[arg(long)]
        user: Option<String>,
        /// Where the device inventory persists (SQLite).
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
    },
    /// Run the sensor over pcap/pcapng captures, with time from the capture.
    Replay {
        /// Capture files, replayed in order.
        #[arg(required = true)]
        captures: Vec<PathBuf>,
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where events go: a file, or - for standard output (overrides [output] path).
        #[arg(long)]
        output: Option<String>,
        /// json: EVE lines; text: one readable line per alert and device change and a
        /// periodic summary (the JSON still goes to --output when it is a file); auto:
        /// text when events would go to a terminal.
        #[arg(long, value_enum, default_value = "auto")]
        format: crate::emit::text::Format,
        /// The gateway's MAC: its frames are not LAN ingress. Inferred when absent.
        #[arg(long, value_parser = parse_mac)]
        gateway_mac: Option<MacAddr>,
        /// Keep the inventory here (default: nothing persists, every replay starts fresh).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Print the device inventory from the state directory (also while `run` writes it).
    Devices {
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
        /// One JSON object per device, one a line.
        #[arg(long)]
        json: bool,
        /// List every gateway's devices from the fleet's NATS bucket at this server
        /// instead (credentials, TLS and bucket name from --config's [output.nats]).
        #[arg(long)]
        nats: Option<String>,
        /// Configuration file whose [output.nats] says how to reach the bucket.
        #[arg(long, requires = "nats")]
        config: Option<PathBuf>,
    },
    /// The alert history in the state directory, newest first (also while `run` writes).
    Alerts {
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
        /// Only this device's.
        #[arg(long, value_parser = parse_mac)]
        device: Option<MacAddr>,
        /// Only this rule's (`beacon`, `unexpected_destination`, ...).
        #[arg(long)]
        rule: Option<String>,
        /// Only this severe or more (1 high .. 3 low).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
        severity: Option<u8>,
        /// Only this recent (`24h`, `7d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// The EVE lines as they were written, one a line.
        #[arg(long)]
        json: bool,
    },
    /// Correct what the sensor says of a device; a running sensor takes it in within seconds.
    Device {
        #[command(subcommand)]
        what: DeviceCommand,
    },
    /// Mute one rule for one device (or one device and destination): its alerts are still
    /// counted and kept, marked `muted`, but not for notifying.
    Mute {
        #[command(flatten)]
        what: MuteTarget,
        /// For how long (`7d`); for good when absent.
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Lift a mute.
    Unmute {
        #[command(flatten)]
        what: MuteTarget,
    },
    /// Who did what to which device, newest first.
    Audit {
        /// Only this device's.
        #[arg(long, value_parser = parse_mac)]
        device: Option<MacAddr>,
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
    },
    /// Serve the web console over a state directory (what `[console] listen` serves
    /// inside `run`), until interrupted.
    Console {
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:9561")]
        listen: std::net::SocketAddr,
        /// The name in the pages' titles.
        #[arg(long, default_value = "kettlewatch")]
        name: String,
        /// A file holding the token every request must carry; required off loopback.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Serve every gateway's devices and alerts from the fleet's NATS server instead,
        /// read-only (credentials, TLS, bucket and subjects from --config's [output.nats]).
        #[arg(long)]
        nats: Option<String>,
        /// Configuration file whose [output.nats] says how to reach the fleet.
        #[arg(long, requires = "nats")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file; prints each problem with file:line:column.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// The learned baseline in the state directory.
    Baseline {
        #[command(subcommand)]
        what: BaselineCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum BaselineCommand {
    /// Every device's learned destinations.
    Show {
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
    },
    /// Accept a destination into a device's baseline: allowed from now on.
    Accept(Decide),
    /// Reject a destination: out of the device's baseline, and never learned again.
    Reject(Decide),
    /// The learned destinations as `[[policy]]` TOML to review and declare.
    Export {
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
    },
}

/// What a mute is of: a device's rule, perhaps for one destination.
#[derive(clap::Args, Debug)]
struct MuteTarget {
    /// The device.
    #[arg(value_parser = parse_mac)]
    mac: MacAddr,
    /// The rule (`iot.rule.id`: beacon, unexpected_destination, ...).
    #[arg(long, value_parser = parse_rule)]
    rule: String,
    /// Only its alerts about this destination: an address, `address:port/proto` or a
    /// DNS name.
    #[arg(long)]
    dest: Option<String>,
    /// Who (default: $SUDO_USER, else $USER).
    #[arg(long)]
    by: Option<String>,
    /// The state directory `run` uses.
    #[arg(long, default_value = state::DEFAULT_DIR)]
    state_dir: PathBuf,
}

/// A decision about one destination of one device's baseline.
#[derive(clap::Args, Debug)]
struct Decide {
    /// The device.
    #[arg(value_parser = parse_mac)]
    mac: MacAddr,
    /// The allow entry (`203.0.113.20:443/tcp`, `api.example.com:443/tcp`), as `baseline
    /// show` prints it.
    #[arg(value_parser = parse_entry)]
    entry: String,
    /// Who (default: $SUDO_USER, else $USER).
    #[arg(long)]
    by: Option<String>,
    /// The state directory `run` uses.
    #[arg(long, default_value = state::DEFAULT_DIR)]
    state_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum DeviceCommand {
    /// Set its category and/or name (shown as `category_source: "operator"`).
    Set {
        /// The device.
        #[arg(value_parser = parse_mac)]
        mac: MacAddr,
        /// Its category.
        #[arg(long, value_parser = parse_category)]
        category: Option<String>,
        /// Its name.
        #[arg(long)]
        name: Option<String>,
        /// Who (default: $SUDO_USER, else $USER).
        #[arg(long)]
        by: Option<String>,
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
    },
    /// Put it in a state (`authorised`, `investigating`) or take it out (`none`); with
    /// `[states]`, a state sets its policy mode (say, `investigating = "enforce"`).
    State {
        /// The device.
        #[arg(value_parser = parse_mac)]
        mac: MacAddr,
        /// The state, or `none`.
        // Spelled out so clap does not take it for an optional argument: the value is
        // required, and `none` is the one that clears.
        #[arg(value_parser = parse_state)]
        state: std::option::Option<&'static str>,
        /// Who.
        #[arg(long)]
        by: Option<String>,
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
    },
    /// Drop what was set by hand: the sensor's own view applies again.
    Clear {
        /// The device.
        #[arg(value_parser = parse_mac)]
        mac: MacAddr,
        /// Who.
        #[arg(long)]
        by: Option<String>,
        /// The state directory `run` uses.
        #[arg(long, default_value = state::DEFAULT_DIR)]
        state_dir: PathBuf,
    },
}

/// Until SIGINT or SIGTERM.
async fn until_stopped() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// How to reach the fleet's broker at `url`: `[output.nats]` of `config` (its paths
/// relative to it), else the defaults.
fn fleet_nats(
    url: String,
    config_file: Option<&PathBuf>,
) -> anyhow::Result<crate::config::NatsConfig> {
    let config = config(config_file)?;
    let mut nats = config.output.nats.unwrap_or_default();
    nats.url = toml::Spanned::new(0..0, vec![url]);
    if let Some(base) = &config.base_dir {
        for p in [
            &mut nats.creds,
            &mut nats.tls_ca,
            &mut nats.tls_cert,
            &mut nats.tls_key,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
    Ok(nats)
}

fn parse_state(s: &str) -> Result<Option<&'static str>, String> {
    crate::model::vocab::parse_device_state(s)
}

fn parse_category(s: &str) -> Result<String, String> {
    crate::model::vocab::CATEGORIES
        .iter()
        .find(|c| **c == s && **c != "unknown")
        .map(|c| c.to_string())
        .ok_or_else(|| {
            let all: Vec<&str> = crate::model::vocab::CATEGORIES
                .iter()
                .copied()
                .filter(|c| *c != "unknown")
                .collect();
            format!("{s:?} is not a category; one of {}", all.join(", "))
        })
}

fn parse_entry(s: &str) -> Result<String, String> {
    s.parse::<crate::judge::policy::allow::AllowRule>()
        .map(|r| r.to_string())
        .map_err(|e| format!("{s:?}: {e}"))
}

fn parse_rule(s: &str) -> Result<String, String> {
    crate::judge::rules::ALL
        .iter()
        .find(|r| r.id == s)
        .map(|r| r.id.to_string())
        .ok_or_else(|| {
            let all: Vec<&str> = crate::judge::rules::ALL.iter().map(|r| r.id).collect();
            format!("{s:?} is not a rule; one of {}", all.join(", "))
        })
}

/// Who is acting: `--by`, else the user sudo ran for, else the login.
fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|w| !w.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn parse_mac(s: &str) -> Result<MacAddr, String> {
    s.parse::<MacAddr>()
        .map_err(|_| format!("{s:?} is not a MAC address like 02:00:5e:10:00:01"))
}

fn config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => crate::engine::check::load(p)?,
        None => Config::default(),
    })
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KETTLEWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match dispatch(cli.command) {
        Ok(code) => code,
        // `kettlewatch devices | head`: the reader left; nothing went wrong.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            iface,
            config: cfg,
            output,
            format,
            xdp_mode,
            egress_attach,
            user,
            state_dir,
        } => {
            let config = config(cfg.as_ref())?;
            let output = output.unwrap_or_else(|| config.output.path.clone());
            live::run(RunArgs {
                config_path: cfg.clone(),
                iface,
                config,
                format: format.resolve(&output),
                output,
                mode: xdp_mode,
                egress_attach,
                user,
                state_dir,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            captures,
            config: cfg,
            output,
            format,
            gateway_mac,
            state_dir,
        } => {
            let config = config(cfg.as_ref())?;
            let output = output.unwrap_or_else(|| config.output.path.clone());
            let errors = replay::replay(ReplayArgs {
                captures,
                config,
                format: format.resolve(&output),
                output,
                gateway_mac,
                state_dir,
            })?;
            for e in &errors {
                eprintln!("error: {e}");
            }
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::CheckConfig { file } => {
            let config = crate::engine::check::load(&file)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            // Every file it names, loaded as `run` loads it.
            let mut files = crate::engine::check::files(&config, now);
            if let Some(path) = config.console.as_ref().and_then(|c| c.token_file.as_ref()) {
                match crate::console::read_token(path) {
                    Ok(_) => files
                        .lines
                        .push(format!("console token file {}: ok", path.display())),
                    Err(e) => {
                        files.unusable += 1;
                        files.lines.push(e.to_string());
                    }
                }
            }
            if files.unusable == 0 {
                println!("{}: ok", file.display());
            } else {
                println!("{}: names files that cannot be used", file.display());
            }
            for line in crate::engine::check::effective_settings(&config) {
                println!("  {line}");
            }
            for line in crate::judge::policy::effective_modes(&config) {
                println!("  {line}");
            }
            for line in &files.lines {
                println!("  {line}");
            }
            if files.unusable > 0 {
                println!(
                    "{}: {} file(s) cannot be used, {} lines refused",
                    file.display(),
                    files.unusable,
                    files.refused
                );
                return Ok(ExitCode::FAILURE);
            }
            if files.refused > 0 {
                println!("{}: {} lines refused", file.display(), files.refused);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Devices {
            json,
            nats: Some(url),
            config: cfg,
            ..
        } => {
            let nats = fleet_nats(url, cfg.as_ref())?;
            let devices = crate::emit::nats::fleet::list(&nats)?;
            let mut out = std::io::stdout().lock();
            if json {
                crate::store::print::fleet_json(&mut out, &devices)?;
            } else {
                crate::store::print::fleet_table(&mut out, &devices)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Devices {
            state_dir, json, ..
        } => {
            let store = Store::open_readonly(&state_dir)?;
            let devices = store.devices()?;
            let mut out = std::io::stdout().lock();
            if json {
                crate::store::print::json(&mut out, &devices)?;
            } else {
                let states = store
                    .device_states()?
                    .into_iter()
                    .map(|s| (s.mac, s.state))
                    .collect();
                crate::store::print::table(&mut out, &devices, &states)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Baseline {
            what: what @ (BaselineCommand::Accept(_) | BaselineCommand::Reject(_)),
        } => {
            let (accepted, d) = match what {
                BaselineCommand::Accept(d) => (true, d),
                BaselineCommand::Reject(d) => (false, d),
                _ => unreachable!("matched above"),
            };
            let Decide {
                mac,
                entry,
                by,
                state_dir,
            } = d;
            let mut store = Store::open(&state_dir)?;
            store.decide(&crate::store::actions::Decision {
                mac: mac.to_string(),
                entry: entry.clone(),
                accepted,
                by: who(by),
                at_ns: crate::model::clock::realtime_ns(),
            })?;
            println!(
                "{mac}: {entry} {} (a running sensor takes it in within seconds)",
                if accepted { "accepted" } else { "rejected" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Baseline { what } => {
            let (dir, export) = match what {
                BaselineCommand::Show { state_dir } => (state_dir, false),
                BaselineCommand::Export { state_dir } => (state_dir, true),
                BaselineCommand::Accept(_) | BaselineCommand::Reject(_) => {
                    unreachable!("matched above")
                }
            };
            let store = Store::open_readonly(&dir)?;
            let rows = store.learned()?;
            let mut out = std::io::stdout().lock();
            if export {
                crate::store::print::baseline_toml(&mut out, &rows)?;
            } else {
                let windows = store.windows()?;
                let now = crate::model::clock::realtime_ns();
                crate::store::print::baseline_table(&mut out, &rows, &windows, now)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts {
            state_dir,
            device,
            rule,
            severity,
            since,
            limit,
            json,
        } => {
            let store = Store::open_readonly(&state_dir)?;
            let now = crate::model::clock::realtime_ns();
            let alerts = store.alerts(&crate::store::alerts::AlertFilter {
                mac: device.map(|m| m.to_string()),
                rule,
                max_severity: severity,
                since_ns: since.map(|d| now.saturating_sub(d.as_nanos() as u64)),
                limit: Some(limit),
            })?;
            let mut out = std::io::stdout().lock();
            if json {
                crate::store::print::alerts_json(&mut out, &alerts)?;
            } else {
                crate::store::print::alerts_table(&mut out, &alerts)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Device { what } => {
            let now = crate::model::clock::realtime_ns();
            match what {
                DeviceCommand::Set {
                    mac,
                    category,
                    name,
                    by,
                    state_dir,
                } => {
                    if category.is_none() && name.is_none() {
                        anyhow::bail!("nothing to set: give --category, --name or both");
                    }
                    let mut store = Store::open(&state_dir)?;
                    store.set_override(&crate::store::actions::Override {
                        mac: mac.to_string(),
                        category,
                        name,
                        by: who(by),
                        at_ns: now,
                    })?;
                    println!("{mac}: set (a running sensor takes it in within seconds)");
                }
                DeviceCommand::State {
                    mac,
                    state,
                    by,
                    state_dir,
                } => {
                    let mut store = Store::open(&state_dir)?;
                    store.set_state(&mac.to_string(), state, &who(by), now)?;
                    println!("{mac}: state {}", state.unwrap_or("none"));
                }
                DeviceCommand::Clear { mac, by, state_dir } => {
                    let mut store = Store::open(&state_dir)?;
                    store.clear_override(&mac.to_string(), &who(by), now)?;
                    println!("{mac}: cleared");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Mute { what, duration } => {
            let now = crate::model::clock::realtime_ns();
            let mut store = Store::open(&what.state_dir)?;
            let m = crate::store::actions::Mute {
                mac: what.mac.to_string(),
                rule: what.rule,
                dest: what.dest,
                until_ns: duration.map(|d| now.saturating_add(d.as_nanos() as u64)),
                by: who(what.by),
                at_ns: now,
            };
            store.mute(&m)?;
            println!(
                "{}: {} muted{}{}",
                m.mac,
                m.rule,
                m.dest
                    .as_ref()
                    .map_or(String::new(), |d| format!(" for {d}")),
                m.until_ns.map_or(String::new(), |u| format!(
                    " until {}",
                    crate::model::clock::eve_timestamp(u)
                ))
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Unmute { what } => {
            let now = crate::model::clock::realtime_ns();
            let mut store = Store::open(&what.state_dir)?;
            let (mac, rule, dest) = (what.mac, what.rule, what.dest);
            if !store.unmute(&mac.to_string(), &rule, dest.as_deref(), &who(what.by), now)? {
                anyhow::bail!(
                    "{mac} has no mute of {rule}{}",
                    dest.map_or(String::new(), |d| format!(" for {d}"))
                );
            }
            println!("{mac}: {rule} unmuted");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { device, state_dir } => {
            let store = Store::open_readonly(&state_dir)?;
            let trail = store.audit(device.map(|m| m.to_string()).as_deref(), 1000)?;
            let mut out = std::io::stdout().lock();
            crate::store::print::audit_table(&mut out, &trail)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Console {
            listen,
            name,
            token_file,
            nats: Some(url),
            config: cfg,
            ..
        } => {
            let token = token_file
                .as_deref()
                .map(crate::console::read_token)
                .transpose()?;
            let history = config(cfg.as_ref())?.history;
            let nats = fleet_nats(url, cfg.as_ref())?;
            let keep = crate::store::alerts::Retention {
                max_age_ns: u64::MAX,
                max_count: history.max_alerts,
            };
            // The copy is private to this process and goes with it.
            let dir =
                std::env::temp_dir().join(format!("kettlewatch-fleet-{}", std::process::id()));
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                .recursive(true)
                .create(&dir)?;
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let mut mirror = crate::ingest::fleet::Mirror::open(nats, &dir, keep).await?;
                    let (devices, alerts) = mirror.refresh().await?;
                    tokio::spawn(mirror.run());
                    let c = crate::console::Console::start(listen, dir.clone(), &name, token, true)?;
                    eprintln!("fleet: {devices} devices, {alerts} alerts (read-only; refreshed every {} s)", crate::ingest::fleet::EVERY.as_secs());
                    eprintln!("console at http://{}/", c.addr);
                    until_stopped().await
                });
            let _ = std::fs::remove_dir_all(&dir);
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Console {
            state_dir,
            listen,
            name,
            token_file,
            ..
        } => {
            let token = token_file
                .as_deref()
                .map(crate::console::read_token)
                .transpose()?;
            // The store must exist: a typo in the directory is said now, not per page.
            Store::open_readonly(&state_dir)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async move {
                    let c = crate::console::Console::start(listen, state_dir, &name, token, false)?;
                    eprintln!("console at http://{}/", c.addr);
                    until_stopped().await
                })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("kettlewatch {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    }
}
