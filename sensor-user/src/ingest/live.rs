//! Live mode: attach to the LAN interface, read the ring buffer as events arrive, poll
//! the maps every `poll_interval`, reload and reopen the output file on SIGHUP, stop
//! cleanly on SIGINT or SIGTERM or when the output's reader goes away.

use anyhow::Context as _;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
    time::MissedTickBehavior,
};

use crate::{
    config::Config,
    emit::{eve::Eve, sinks::Sinks},
    engine::{build, sensor::Sensor, writes::KernelWrites},
    ingest::map_reader::MapReader,
    ingest::watch::Watch,
    kernel::loader::{self, AttachMode, EgressAttach, MapSizes},
    kernel::maps::{KernelMaps, intel::IntelMaps, policy::PolicyMaps},
    model::clock::{TimeBase, realtime_ns},
    store::state::Store,
};

/// Flows of a poll taken in between two looks at the ring buffer: an alert raised during
/// a sweep waits for at most this many (`cargo xtask bench` times the slices of a sweep
/// of a million flows: 0.4 ms the longest; the last runs the stages that look at the
/// whole poll, about 18 ms after a poll in which a million flows changed).
pub const POLL_ROWS_PER_SLICE: usize = 512;

/// What `run` was asked to do.
pub struct RunArgs {
    /// The LAN interface.
    pub iface: String,
    /// The configuration.
    pub config: Config,
    /// Output path (`-` for stdout).
    pub output: String,
    /// JSON, or the terminal view (resolved: not `auto`).
    pub format: crate::emit::text::Format,
    /// XDP attach mode.
    pub mode: AttachMode,
    /// How the egress program is attached.
    pub egress_attach: EgressAttach,
    /// Drop to this user once attached.
    pub user: Option<String>,
    /// The state directory.
    pub state_dir: std::path::PathBuf,
    /// The configuration file, reloaded on SIGHUP or when it changes.
    pub config_path: Option<std::path::PathBuf>,
}

/// Runs until SIGINT or SIGTERM.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<()> {
    // Before anything is attached, so a signal at any later moment is a clean stop.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut watch = Watch::new(args.config_path.as_deref(), &args.config);
    let builder = build::Builder::new(&args.config)?;
    // What can be checked is, before the state directory or anything else is created.
    if if_index(&args.iface) == 0 {
        return Err(loader::LoadError::NoInterface(args.iface.clone()).into());
    }
    if let Some(user) = &args.user {
        crate::kernel::privileges::lookup(user)?;
    }
    // Opened (and its WAL created) before privileges are dropped: the directory stays
    // root's, 0700.
    let store = Store::open(&args.state_dir)?;
    tracing::info!(path = %store.path().display(), "state store open");
    let sizes = MapSizes::from(&args.config.sensor);
    let mut ebpf = loader::load(
        sizes,
        loader::Mode::LIVE.payloads(args.config.sensor.payload_sampling),
    )?;
    let (link, mode) = loader::attach(&mut ebpf, &args.iface, args.mode)?;
    // What the gateway sends devices (DNS answers, for domain policies). Without it the
    // sensor still counts and alerts; domain entries just never resolve.
    let egress = match loader::attach_egress(&mut ebpf, &args.iface, args.egress_attach) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(
                error = %e,
                "egress program not attached: domain-based policy entries will not match (no DNS answers seen)"
            );
            None
        }
    };
    let (mut maps, ring) = KernelMaps::take(&mut ebpf)?;
    maps.flows
        .read_changes(*args.config.sensor.flow_sweep_interval.get_ref());
    let kernel = KernelWrites::new(
        PolicyMaps::take(&mut ebpf, maps.generations.clone())?,
        IntelMaps::take(&mut ebpf)?,
    );
    // SAFETY: the ring buffer owns its fd and lives inside the AsyncFd until both drop.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("watching the ring buffer: {e}"))?;
    let (out, view) =
        crate::emit::text::open_outputs(&args.output, args.format, args.config.output.queue_lines)
            .with_context(|| format!("opening {}", args.output))?;
    let eve = Eve {
        host: args.config.sensor.name.clone(),
        in_iface: args.iface.clone(),
        flow_id_seed: crate::emit::eve::random_flow_id_seed(),
        time: TimeBase::live(),
    };
    let mut sinks = Sinks::new(out);
    if let Some(v) = view {
        sinks.add(Box::new(crate::emit::sinks::TextSink::new(v)));
    }
    // Its spool is opened now, before privileges are dropped, in the state directory.
    if let Some(n) = &args.config.output.nats {
        sinks.add(Box::new(crate::emit::nats::Fleet::start(
            n,
            args.config.base_dir.as_deref(),
            &args.config.sensor.name,
            Some(&args.state_dir),
            args.config.output.queue_lines,
        )?));
    }
    let now = realtime_ns();
    let parts = build::Parts {
        eve,
        sinks,
        store: Some(store),
        kernel: Some(kernel),
        local: crate::judge::policy::interface_prefixes(&args.iface),
    };
    let mut sensor = builder.build(parts, now)?;
    sensor.slice_polls(true);
    // Bound before privileges are dropped; served on this runtime, from a snapshot the
    // loop refreshes at each poll, so a scrape never touches the sensor's tables.
    let metrics = match &args.config.metrics {
        Some(m) => Some(crate::emit::metrics::Metrics::start(
            m.listen,
            now / 1_000_000_000,
        )?),
        None => None,
    };
    // Its pages read the state directory, not the sensor: a slow page holds nothing up.
    if let Some(c) = &args.config.console {
        // Read as root, before privileges are dropped: the file may be root's alone.
        let token = c
            .token_file
            .as_deref()
            .map(crate::console::read_token)
            .transpose()?;
        crate::console::Console::start(
            *c.listen.get_ref(),
            args.state_dir.clone(),
            &args.config.sensor.name,
            token,
            false,
        )?;
    }
    let mut tick = tokio::time::interval(*args.config.sensor.poll_interval.get_ref());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    if let Some(user) = &args.user {
        use crate::kernel::privileges;
        let netlink = matches!(egress, Some((_, "netlink")));
        let needed = privileges::still_needed_here(netlink);
        let keep: Vec<_> = needed.iter().map(|(c, _)| *c).collect();
        privileges::drop_to(user, &keep)?;
        if keep.is_empty() {
            tracing::info!(user = %user, "running with no capabilities");
        } else {
            let why: Vec<_> = needed.iter().map(|(_, why)| *why).collect();
            tracing::info!(
                user = %user,
                keeps = %privileges::names(&keep),
                why = %why.join("; "),
                "running with only the capabilities it still needs"
            );
        }
    }
    let maps = std::sync::Arc::new(maps);
    let mut reader = MapReader::start(maps.clone()).context("starting the map reader thread")?;
    let ifindex = if_index(&args.iface);
    let mut gone = None;
    // Said once everything is in place: from here on events flow.
    tracing::info!(
        iface = %args.iface,
        xdp_mode = %mode,
        egress = egress.as_ref().map_or("not attached", |(_, how)| *how),
        flows = sizes.flows,
        devices = sizes.devices,
        "watching {}",
        args.iface
    );

    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                take_records(guard.get_inner_mut(), &mut sensor);
                guard.clear_ready();
            }
            _ = tick.tick() => {
                let now = realtime_ns();
                // Deleting the interface takes the XDP link with it; going down and up
                // does not, so only the first ends the run.
                if if_index(&args.iface) != ifindex {
                    gone = Some(args.iface.clone());
                    break;
                }
                if watch.changed() {
                    reload(&args, &mut sensor, &mut watch, "a file changed");
                }
                if sensor.output_closed() {
                    tracing::info!("the output's reader closed it; stopping");
                    break;
                }
                // The next read waits until the last one is taken in: a sweep slower
                // than the interval delays polls rather than piling them up.
                if !sensor.folding() {
                    reader.ask(now);
                }
            }
            Some(read) = reader.reads.recv() => {
                reader.busy = false;
                if let Some(done) = sensor.apply_poll(read) {
                    polled(&mut sensor, metrics.as_ref(), done);
                }
            }
            // A poll is taken in a slice at a time. The ring buffer is read before each
            // slice without waiting for its readiness, which the runtime only learns
            // when the loop yields; the yield lets signals and ticks in.
            _ = std::future::ready(()), if sensor.folding() => {
                take_records(ring.get_mut(), &mut sensor);
                if let Some(done) = sensor.fold_slice(POLL_ROWS_PER_SLICE) {
                    polled(&mut sensor, metrics.as_ref(), done);
                }
                tokio::task::yield_now().await;
            }
            _ = sighup.recv() => {
                // logrotate moved the file: later lines go to a new one at the path.
                sensor.reopen_output();
                reload(&args, &mut sensor, &mut watch, "SIGHUP");
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
        sensor.flush_output();
    }

    reader.stop();
    match &gone {
        None => {
            tracing::info!(iface = %args.iface, "stopping: detaching");
            loader::xdp(&mut ebpf)?
                .detach(link)
                .context("detaching the XDP program")?;
            if let Some((l, _)) = egress {
                loader::egress(&mut ebpf)?
                    .detach(l)
                    .context("detaching the TC program")?;
            }
        }
        Some(iface) => tracing::error!(
            iface = %iface,
            "interface no longer exists (deleted or renamed): the XDP program went with it; writing the last records and exiting"
        ),
    }
    take_records(ring.get_mut(), &mut sensor);
    // The last poll reads the whole map, so a flow evicted since the last sweep gets its
    // last record as evicted, not as cut short by the stop.
    maps.flows.sweep_next();
    let now = realtime_ns();
    sensor.poll(&maps, now);
    let k = maps.stats.read()?;
    sensor.finish(now, &k, None);
    match gone {
        Some(iface) => anyhow::bail!(
            "interface {iface} disappeared while the sensor ran; restart it once the interface is back"
        ),
        None => Ok(()),
    }
}

/// Takes in every record waiting in the ring buffer, and ends the batch when there was
/// one (a device a record changed is assessed once per batch, not per record).
fn take_records(rb: &mut aya::maps::RingBuf<aya::maps::MapData>, sensor: &mut Sensor) {
    let mut any = false;
    while let Some(item) = rb.next() {
        sensor.on_record(&item);
        any = true;
    }
    if any {
        sensor.end_batch(realtime_ns());
    }
}

/// A poll is wholly taken in: the metrics endpoint gets its snapshot, and `stats` is
/// written when due.
fn polled(
    sensor: &mut Sensor,
    metrics: Option<&crate::emit::metrics::Metrics>,
    done: crate::engine::sensor::PollDone,
) {
    let due = sensor.stats_due(done.now_ns);
    if let Some(m) = metrics {
        m.publish(sensor.metrics_snapshot(&done.stats));
    }
    if due {
        sensor.write_stats(done.now_ns, &done.stats, None);
    }
}

/// Reads the configuration again and applies its policy; a broken file is reported with
/// its location and the running configuration stays.
fn reload(args: &RunArgs, sensor: &mut Sensor, watch: &mut Watch, why: &str) {
    let Some(path) = &args.config_path else {
        tracing::info!(why, "no configuration file to reload");
        return;
    };
    match crate::engine::check::load(path) {
        Ok(c) => {
            // The feeds the new file names are the ones watched from now on.
            watch.follow(path, &c);
            let now = realtime_ns();
            let time = TimeBase::live();
            let (engine, report) = crate::judge::policy::PolicyEngine::new(
                &c,
                crate::judge::policy::interface_prefixes(&args.iface),
                time.to_kernel_ns(now),
                None,
            );
            report.log();
            sensor.reload_policy(engine, now);
            sensor.reload_intel(&c, now);
            sensor.reload_vulns(&c);
            tracing::info!(
                why,
                "configuration reloaded: [baseline], [[policy]], [mud], [intel], [canary] and [vulns] apply now; other sections take effect at restart"
            );
        }
        Err(e) => {
            tracing::error!(why, error = %e, "configuration not reloaded; the running one stays")
        }
    }
}

/// The interface's index, or 0 when there is none by that name.
fn if_index(name: &str) -> u32 {
    let Ok(c) = std::ffi::CString::new(name) else {
        return 0;
    };
    // SAFETY: a valid NUL-terminated string.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}
