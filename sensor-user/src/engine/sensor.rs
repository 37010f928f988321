//! The engine both drivers share: kernel events and polled counters in, EVE events out.
//! `run` feeds it from a live interface, `replay` from capture files, so both give the
//! same stream for the same frames.

use serde_json::Value;

use crate::{
    config::Config,
    emit::eve::{Eve, SensorCounters, Subject},
    emit::sinks::Sinks,
    judge::assess,
    judge::baseline::Baseline,
    judge::classify::Classifier,
    judge::criticality::Thresholds,
    judge::inventory::Inventory,
    kernel::maps::KernelMaps,
    model::alert::{About, Alert},
    model::clock,
    model::device::DeviceTotals,
    model::flow::FlowTotals,
    store::state::{Store, StoredDevice},
    track::devices::DeviceTable,
    track::flows::FlowTable,
};
use sensor_common::{FlowKey, MacAddr, stats};

mod fold;
mod record;
mod stats_event;

pub use fold::PollDone;

/// How often a running sensor looks for operators' actions in the store.
const ACTIONS_EVERY_NS: u64 = 2_000_000_000;

/// How often the destinations past their bounds are dropped (a scan of the table).
const PRUNE_EVERY_NS: u64 = 60_000_000_000;

/// Kernel counters as read from the stats map.
pub type KernelStats = [u64; stats::COUNT as usize];

/// The stages `engine::build` assembles before the engine.
pub(crate) struct Stages {
    /// Classification rules.
    pub classifier: Classifier,
    /// The state directory, if any.
    pub store: Option<Store>,
    /// Destination policy.
    pub baseline: Baseline,
    /// Threat intelligence and canaries.
    pub intel: crate::judge::intel::stage::Intel,
    /// Known-vulnerability feeds.
    pub vulns: crate::judge::vulns::stage::Vulns,
    /// The maps the judge's decisions are written to, when a kernel program runs.
    pub kernel: Option<crate::engine::writes::KernelWrites>,
}

/// What one poll reads from the kernel: everything `Sensor::apply_poll` needs, read in
/// one place so a driver can read it on another thread.
pub struct PollRead {
    /// When the read began (epoch).
    pub now_ns: u64,
    flows: Result<crate::kernel::maps::flows::FlowRead, crate::kernel::maps::object::MapsError>,
    devices: Result<Vec<(MacAddr, DeviceTotals)>, crate::kernel::maps::object::MapsError>,
    egress: Vec<(MacAddr, u64, u64)>,
    /// The kernel's stats counters, for `stats` and the metrics snapshot.
    pub stats: KernelStats,
    /// Whole reads of the flow map so far, and how many an overflowing change log forced.
    sweeps: (u64, u64),
}

impl PollRead {
    /// Reads flows, devices, egress counters and stats, in batches.
    pub fn read(maps: &KernelMaps, now_ns: u64) -> Self {
        Self {
            now_ns,
            flows: maps.flows.read(&maps.stats),
            devices: maps.devices.read(),
            egress: maps.devices.egress().unwrap_or_default(),
            stats: maps.stats.read().unwrap_or([0; stats::COUNT as usize]),
            sweeps: maps.flows.sweeps(),
        }
    }
}

/// The engine.
pub struct Sensor {
    eve: Eve,
    flows: FlowTable,
    devices: DeviceTable,
    inventory: Inventory,
    /// Which earlier identity each randomised MAC stands for.
    identities: crate::judge::identity::Identities,
    classifier: Classifier,
    thresholds: Thresholds,
    store: Option<Store>,
    baseline: Baseline,
    intel: crate::judge::intel::stage::Intel,
    vulns: crate::judge::vulns::stage::Vulns,
    kernel: Option<crate::engine::writes::KernelWrites>,
    anomaly: crate::judge::anomaly::Anomaly,
    /// Alerts every stage raised, written after the device records of their batch.
    alerts: Vec<Alert>,
    stats_now: bool,
    /// `device_table_pressure` was raised (once per run).
    pressure_reported: bool,
    latency: crate::emit::latency::Latency,
    sinks: Sinks,
    /// Flow records into lines, on more than one core when there are many.
    flow_lines: crate::emit::eve::FlowLines,
    counters: SensorCounters,
    /// Alerts written, per rule id (for the metrics endpoint).
    alerts_by_rule: std::collections::BTreeMap<&'static str, u64>,
    /// The poll being taken in (live: a slice at a time; see `slice_polls`).
    folding: Option<fold::Folding>,
    slice_polls: bool,
    started_ns: u64,
    stats_every_ns: u64,
    next_stats_ns: u64,
    /// How much alert history the store keeps.
    history: crate::store::alerts::Retention,
    /// How many destinations per device the store keeps, and for how long.
    destinations: crate::store::destinations::Bounds,
    /// When to prune the destinations next (epoch ns).
    next_prune_ns: u64,
    /// Operators' mutes, as last read from the store.
    mutes: Vec<crate::store::actions::Mute>,
    /// The store's actions generation last taken in, and when to look again.
    actions_seen: Option<i64>,
    next_actions_ns: u64,
    /// Whether a muted alert still goes to the stream (marked) or only to the history.
    stream_muted: bool,
}

impl Sensor {
    /// A sensor that starts at `now_ns` (epoch).
    pub(crate) fn new(
        eve: Eve,
        config: &Config,
        stages: Stages,
        sinks: Sinks,
        now_ns: u64,
    ) -> Self {
        let config_all = config;
        let Stages {
            classifier,
            store,
            baseline,
            mut intel,
            mut vulns,
            mut kernel,
        } = stages;
        if let Some(k) = &mut kernel {
            k.intel(&intel.kernel());
        }
        let inventory = Inventory::new(config, eve.time.to_kernel_ns(now_ns));
        // Identities from earlier runs: a MAC first seen today can be tied to one of them.
        let mut identities = crate::judge::identity::Identities::default();
        if let Some(s) = &store {
            for d in s.devices().unwrap_or_default() {
                if let Ok(mac) = d.mac.parse::<MacAddr>() {
                    identities.remember(mac, &d.profile, stored_tie(&d));
                    vulns.already_reported(mac, &d.vulnerabilities);
                }
            }
        }
        let thresholds = crate::judge::criticality::Thresholds::from_config(&config.inventory);
        let history = crate::store::alerts::Retention {
            max_age_ns: config
                .history
                .keep_for
                .get_ref()
                .as_nanos()
                .min(u64::MAX as u128) as u64,
            max_count: config.history.max_alerts,
        };
        let destinations = crate::store::destinations::Bounds {
            max_age_ns: history.max_age_ns,
            per_device: config.history.max_destinations,
        };
        let config = &config.sensor;
        let stats_every_ns = config.stats_interval.get_ref().as_nanos() as u64;
        let mut sensor = Self {
            eve,
            flows: FlowTable::new(*config.flow_report.get_ref()),
            devices: DeviceTable::with_capacity(*config.max_devices.get_ref() as usize),
            inventory,
            identities,
            classifier,
            thresholds,
            store,
            baseline,
            intel,
            vulns,
            kernel,
            anomaly: crate::judge::anomaly::Anomaly::new(&config_all.anomaly),
            alerts: Vec::new(),
            stats_now: false,
            pressure_reported: false,
            latency: crate::emit::latency::Latency::default(),
            sinks,
            flow_lines: Default::default(),
            counters: SensorCounters::default(),
            alerts_by_rule: Default::default(),
            folding: None,
            slice_polls: false,
            started_ns: now_ns,
            stats_every_ns,
            next_stats_ns: now_ns + stats_every_ns,
            history,
            destinations,
            next_prune_ns: 0,
            mutes: Vec::new(),
            actions_seen: None,
            next_actions_ns: 0,
            stream_muted: config_all.output.muted_alerts != crate::config::MutedAlerts::History,
        };
        // Operators' decisions hold from the first frame.
        sensor.take_actions(now_ns);
        sensor
    }

    /// Takes in what operators decided since the last look (at most every
    /// `ACTIONS_EVERY_NS`): overrides go to the inventory and their devices are assessed
    /// and reported again; mutes apply to the next alerts.
    fn take_actions(&mut self, now_ns: u64) {
        if now_ns < self.next_actions_ns {
            return;
        }
        self.next_actions_ns = now_ns.saturating_add(ACTIONS_EVERY_NS);
        let Some(store) = &self.store else { return };
        let read = store.actions_generation().and_then(|g| {
            if Some(g) == self.actions_seen {
                return Ok(None);
            }
            Ok(Some((
                g,
                store.overrides()?,
                store.mutes()?,
                store.decisions()?,
                store.device_states()?,
            )))
        });
        match read {
            Ok(Some((generation, overrides, mutes, decisions, states))) => {
                let mut accepted = Vec::new();
                let mut rejected = Vec::new();
                for d in decisions {
                    let (Ok(mac), Ok(rule)) = (d.mac.parse::<MacAddr>(), d.entry.parse()) else {
                        continue;
                    };
                    if d.accepted {
                        accepted.push((mac, rule));
                    } else {
                        rejected.push((mac, rule));
                    }
                }
                self.baseline.set_decisions(&accepted, &rejected);
                let states: std::collections::BTreeMap<MacAddr, String> = states
                    .into_iter()
                    .filter_map(|s| Some((s.mac.parse::<MacAddr>().ok()?, s.state)))
                    .collect();
                self.baseline.set_device_states(states.clone());
                self.actions_seen = Some(generation);
                let changed = self.inventory.set_operator(
                    overrides.into_iter().filter_map(|o| {
                        Some((o.mac.parse::<MacAddr>().ok()?, o.category, o.name, o.by))
                    }),
                    states,
                );
                for mac in changed {
                    self.devices.touch(&mac);
                }
                if generation > 0 {
                    tracing::info!(
                        generation,
                        mutes = mutes.len(),
                        "operator actions (generation {generation}) taken in"
                    );
                }
                self.mutes = mutes;
            }
            Ok(None) => {}
            Err(e) => self.state_failed(&e),
        }
    }

    /// The end of a batch of records: assess what changed, write it, persist it, and
    /// write what the inventory says of it.
    pub fn end_batch(&mut self, now_ns: u64) {
        self.restore_fresh();
        self.take_actions(now_ns);
        let mut to_assess = self.devices.take_peer_changes();
        to_assess.extend(self.devices.changed_macs());
        for mac in to_assess {
            let Some(d) = self.devices.get(&mac) else {
                continue;
            };
            let declared = self.inventory.declared(&mac);
            let mut a = assess::assess(d, declared, &self.classifier, &self.thresholds);
            let vulns = self.vulns.of(&d.profile, a.product.as_ref());
            self.alerts.extend(self.vulns.alerts(mac, &vulns));
            assess::with_vulnerabilities(&mut a, vulns, declared);
            if let Some(f) =
                self.inventory
                    .on_classified(mac, &a.observed, self.classifier.strong())
            {
                self.alerts.push(f);
            }
            self.devices.assess(&mac, a);
        }
        let mut rows = Vec::new();
        for mac in self.devices.changed_macs() {
            self.baseline.touch(mac);
        }
        for d in self.devices.take_changed() {
            let devices = &self.devices;
            let tie = self
                .identities
                .observe(d.mac, &d.profile, d.first_seen_ns, |m| {
                    devices.get(m).map(|o| o.last_seen_ns)
                });
            let has_keys = self.identities.has_keys(&d.mac);
            if let Some(f) = self.inventory.on_device(&d, tie.is_some(), has_keys) {
                self.alerts.push(f);
            }
            let declared = self.inventory.declared(&d.mac);
            let phase = self.baseline.engine().phase(&d.mac);
            let v = self.eve.device(now_ns, &d, declared, phase, tie);
            self.sinks.emit(&v);
            self.counters.device_records += 1;
            if self.store.is_some() || self.sinks.wants_devices() {
                let mut row = StoredDevice::from_device(
                    &d,
                    declared,
                    self.inventory.reported_new(&d.mac),
                    &self.eve.time,
                );
                row.identity = tie.map(|t| crate::store::state::StoredIdentity {
                    tied_to: t.identity.to_string(),
                    by: t.by.as_str().into(),
                });
                if let Some(r) = self.baseline.engine().rules(&d.mac) {
                    row.policies = r.policies.clone();
                    row.declared_rules = r.declared.clone();
                }
                rows.push(row);
            }
        }
        for mut m in self.devices.take_moves() {
            // An address passed between two MACs of one identity did not change hands.
            if m.previous_owner
                .is_some_and(|p| self.identities.same(&p, &m.mac))
            {
                m.previous_owner = None;
            }
            if let Some(f) = self.inventory.on_move(m) {
                self.alerts.push(f);
            }
        }
        for a in &self.alerts {
            if a.rule.id == crate::judge::rules::NEW_DEVICE.id
                && let Some(mac) = a.mac()
                && let Some(row) = rows.iter_mut().find(|r| r.mac == mac.to_string())
            {
                row.new_device_reported = true;
            }
        }
        if self.sinks.wants_devices() {
            for row in &rows {
                let json = serde_json::to_vec(row).expect("a record serializes");
                self.sinks.device(&row.mac, &json);
            }
        }
        self.persist(&rows);
        self.sync_policy(now_ns);
    }

    /// What the policy engine needs of a device: its category in effect, MUD URL and
    /// first sight (kernel time, earlier runs included).
    fn policy_facts(&self, mac: &MacAddr) -> Option<crate::judge::policy::OwnedFacts> {
        let d = self.devices.get(mac)?;
        let category = self
            .inventory
            .declared(mac)
            .and_then(|x| x.category.clone())
            .or_else(|| {
                d.assessment
                    .as_ref()
                    .map(|a| a.observed.category.clone())
                    .filter(|c| c != "unknown")
            });
        let first_seen_ns = d.first_seen_epoch_ns.map_or(d.first_seen_ns as i64, |e| {
            self.eve
                .time
                .to_kernel_ns_signed(e)
                .min(d.first_seen_ns as i64)
        });
        Some(crate::judge::policy::OwnedFacts {
            category,
            mud_url: d.profile.mud_url().map(str::to_string),
            first_seen_ns,
        })
    }

    /// Compiles the devices whose policy may have changed, writes it to the kernel, keeps
    /// what was learned, and writes the policy alerts of the batch.
    fn sync_policy(&mut self, now_ns: u64) {
        // Only the devices waiting to be compiled: a batch is one frame in a replay.
        let facts: std::collections::BTreeMap<MacAddr, _> = self
            .baseline
            .dirty()
            .filter_map(|m| Some((m, self.policy_facts(&m)?)))
            .collect();
        let update = self.baseline.sync(|m| facts.get(m).cloned());
        if let Some(k) = &mut self.kernel {
            k.policy(update);
        }
        let learned = self.baseline.take_learned();
        if let Some(store) = &mut self.store
            && let Err(e) =
                crate::engine::writes::save_learned(store, learned, now_ns, &self.eve.time)
        {
            self.state_failed(&e);
        }
        self.write_alerts(now_ns);
    }

    /// Writes the alerts raised so far, each once.
    fn write_alerts(&mut self, now_ns: u64) {
        let mut kept = Vec::new();
        for a in std::mem::take(&mut self.alerts) {
            if let Some((key, origin)) = a.flow() {
                self.note_latency(origin.ts_ns);
                self.flows.mark_alerted(&key);
            }
            let who = match a.mac() {
                Some(mac) => self.subject(&mac),
                None => Subject::default(),
            };
            let mut v = self.eve.alert(now_ns, &a, who);
            let muted = self.muted(now_ns, &v);
            if muted {
                v["iot"]["rule"]["muted"] = true.into();
                self.counters.alerts_muted += 1;
            }
            if self.store.is_some() {
                kept.push(crate::store::alerts::StoredAlert::from_eve(&v, now_ns));
            }
            if !muted || self.stream_muted {
                self.write_alert(&v, a.rule);
            }
        }
        // After the lines: the history is for looking back, the stream comes first.
        if let Some(store) = &mut self.store
            && let Err(e) = store.save_alerts(&kept, self.history, now_ns)
        {
            self.state_failed(&e);
        }
    }

    /// Whether an operator muted this alert line's rule for its device (and destination).
    fn muted(&self, now_ns: u64, v: &Value) -> bool {
        if self.mutes.is_empty() {
            return false;
        }
        let (Some(mac), Some(rule)) = (
            v["iot"]["device"]["mac"].as_str(),
            v["iot"]["rule"]["id"].as_str(),
        ) else {
            return false;
        };
        let mut dests = Vec::new();
        if let Some(ip) = v["dest_ip"].as_str() {
            dests.push(ip.to_string());
            if let Some(port) = v["dest_port"].as_u64() {
                let proto = v["proto"].as_str().unwrap_or("").to_ascii_lowercase();
                dests.push(format!("{ip}:{port}/{proto}"));
            }
        }
        if let Some(name) = v["iot"]["dns"]["rrname"].as_str() {
            dests.push(name.trim_end_matches('.').to_string());
        }
        self.mutes
            .iter()
            .any(|m| m.covers(now_ns, mac, rule, &dests))
    }

    /// What the alert stages need to say of a device: its table entry and declaration.
    fn subject(&self, mac: &MacAddr) -> Subject<'_> {
        Subject {
            device: self.devices.get(mac),
            declared: self.inventory.declared(mac),
        }
    }

    /// Writes an alert line and counts it, per rule too.
    fn write_alert(&mut self, v: &Value, rule: &'static crate::model::rule::Rule) {
        debug_assert_eq!(
            v["iot"]["rule"]["id"], rule.id,
            "the line says the rule counted"
        );
        self.emit(v);
        self.counters.alerts += 1;
        *self.alerts_by_rule.entry(rule.id).or_default() += 1;
    }

    /// An alert about a flow whose first packet the kernel stamped at `ts_ns` is being
    /// written: how long that took (live only; a capture's clock says nothing of it).
    fn note_latency(&mut self, ts_ns: u64) {
        if self.eve.time.is_live() && ts_ns != 0 {
            self.latency
                .record(clock::monotonic_ns().saturating_sub(ts_ns));
        }
    }

    /// The device table is full (a MAC flood, or a network larger than `max_devices`):
    /// new devices are counted, not tracked. Said once, as an alert.
    fn check_pressure(&mut self, now_ns: u64) {
        if self.pressure_reported || (!self.devices.full() && self.devices.dropped == 0) {
            return;
        }
        self.pressure_reported = true;
        let meta = serde_json::json!({
            "devices_tracked": [self.devices.len().to_string()],
            "devices_not_tracked": [self.devices.dropped.to_string()],
            "devices_evicted": [self.devices.evicted.to_string()],
        });
        let a = Alert::new(
            &crate::judge::rules::DEVICE_TABLE_PRESSURE,
            About::Sensor,
            "sensor",
        );
        self.alerts.push(a.with_metadata(meta));
        self.write_alerts(now_ns);
        tracing::warn!(
            devices = self.devices.len(),
            "device table full: new devices are counted, not tracked; raise [sensor] max_devices if the network is this large"
        );
    }

    /// Loads the vulnerability feeds again; every device is looked up again at the end of
    /// the next batch.
    pub fn reload_vulns(&mut self, config: &Config) {
        if self.vulns.reload(config) {
            self.devices.mark_all_changed();
            self.stats_now = true;
        }
    }

    /// A reloaded configuration's feeds and canaries take effect (as a diff).
    pub fn reload_intel(&mut self, config: &Config, now_ns: u64) {
        self.intel.reload(config, (now_ns / 1_000_000_000) as i64);
        if let Some(k) = &mut self.kernel {
            k.intel(&self.intel.kernel());
        }
        self.stats_now = true;
    }

    /// Devices seen for the first time in this run get back what earlier runs knew.
    fn restore_fresh(&mut self) {
        let Some(store) = &self.store else {
            for mac in self.devices.take_fresh() {
                self.baseline.touch(mac);
            }
            return;
        };
        let mut failures = Vec::new();
        for mac in self.devices.take_fresh() {
            self.baseline.touch(mac);
            match store.device(&mac.to_string()) {
                Ok(Some(old)) => {
                    if old.new_device_reported {
                        self.inventory.already_reported_new(mac);
                    }
                    self.identities
                        .remember(mac, &old.profile, stored_tie(&old));
                    self.devices.restore(mac, old.first_seen_ns, old.profile);
                }
                Ok(None) => {}
                Err(e) => failures.push(e),
            }
        }
        for e in failures {
            self.state_failed(&e);
        }
    }

    fn persist(&mut self, rows: &[StoredDevice]) {
        if let Some(store) = &mut self.store
            && let Err(e) = store.save(rows)
        {
            self.state_failed(&e);
        }
    }

    /// A state-store failure: counted, said once; the stream goes on.
    fn state_failed(&mut self, err: &dyn std::error::Error) {
        if self.counters.state_errors == 0 {
            tracing::error!(error = %err, "state store failed (counted as state_errors; events continue)");
        }
        self.counters.state_errors += 1;
    }

    /// A poll of the kernel maps that read every flow (taken in at once, unless
    /// `slice_polls` is on).
    pub fn on_poll(
        &mut self,
        now_ns: u64,
        flows: Vec<(FlowKey, FlowTotals)>,
        devices: Vec<(MacAddr, DeviceTotals)>,
    ) {
        self.begin_fold(
            now_ns,
            flows,
            true,
            devices,
            Vec::new(),
            [0; stats::COUNT as usize],
        );
        if !self.slice_polls {
            self.finish_fold();
        }
    }

    /// Randomised MACs that waited long enough without saying who they are: new after
    /// all. Touched, so the next batch stores that `new_device` was raised.
    fn release_held(&mut self, now_ns: u64, until_kernel: u64) {
        let released = self.inventory.release_held(until_kernel);
        for a in &released {
            if let Some(mac) = a.mac() {
                self.devices.touch(&mac);
            }
        }
        self.alerts.extend(released);
        self.write_alerts(now_ns);
    }

    /// Reads the flow and device maps and takes them in, all of it.
    pub fn poll(&mut self, maps: &KernelMaps, now_ns: u64) {
        let _ = self.apply_poll(PollRead::read(maps, now_ns));
        self.finish_fold();
    }

    /// A poll whose kernel read was made elsewhere (live: on the poll thread, so the
    /// ring buffer is served while the maps are walked). Returns it when it is already
    /// taken in (it failed, or polls are not sliced); otherwise `fold_slice` takes it in.
    pub fn apply_poll(&mut self, read: PollRead) -> Option<PollDone> {
        (self.counters.flow_sweeps, self.counters.flow_log_overflows) = read.sweeps;
        match (read.flows, read.devices) {
            (Ok(f), Ok(d)) => {
                self.begin_fold(read.now_ns, f.rows, f.complete, d, read.egress, read.stats);
                if self.slice_polls {
                    return None;
                }
                self.finish_fold()
            }
            (Err(e), _) | (_, Err(e)) => {
                self.poll_failed(&e);
                Some(PollDone {
                    now_ns: read.now_ns,
                    stats: read.stats,
                })
            }
        }
    }

    /// A poll is taken in a slice at a time (`fold_slice`), so an alert waits for one
    /// slice of a sweep, not for all of it. Off by default: replay and the tests take
    /// each poll in at once.
    pub fn slice_polls(&mut self, on: bool) {
        self.slice_polls = on;
    }

    /// A poll that failed (counted; the next one tries again).
    fn poll_failed(&mut self, err: &dyn std::error::Error) {
        if self.counters.poll_errors == 0 {
            tracing::warn!(error = %err, "reading kernel maps failed (counted as poll_errors)");
        }
        self.counters.poll_errors += 1;
    }

    /// The policy stage.
    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    /// A reloaded configuration's policy (`[baseline]`, `[[policy]]`, `[mud]`) takes
    /// effect, for flows already open too. Other sections need a restart.
    pub fn reload_policy(&mut self, engine: crate::judge::policy::PolicyEngine, now_ns: u64) {
        let facts: std::collections::BTreeMap<MacAddr, _> = self
            .devices
            .iter()
            .filter_map(|d| Some((d.mac, self.policy_facts(&d.mac)?)))
            .collect();
        let flows: Vec<_> = self.flows.opened().collect();
        let alerts = self
            .baseline
            .reload(engine, flows.into_iter(), |m| facts.get(m).cloned());
        self.alerts.extend(alerts);
        self.sync_policy(now_ns);
        self.stats_now = true;
    }

    fn write_flows(&mut self, now_ns: u64, mut records: Vec<crate::model::flow::FlowRecord>) {
        /// Lines held at once: a first poll of a million records must not hold a million.
        const CHUNK: usize = 4096;
        self.baseline.annotate(&mut records);
        for chunk in records.chunks(CHUNK) {
            let lines = self.flow_lines.serialize(&self.eve, now_ns, chunk);
            for (r, line) in chunk.iter().zip(lines) {
                self.sinks.emit_flow(line, r.delta_bytes);
                self.counters.flow_records += 1;
            }
        }
        self.save_destinations(now_ns, &records);
    }

    /// Adds the records' use to each device's destinations in the store (after the
    /// lines: the stream comes first), one row per destination however many flows.
    fn save_destinations(&mut self, now_ns: u64, records: &[crate::model::flow::FlowRecord]) {
        use crate::store::destinations::DestinationUse;
        let Some(store) = &mut self.store else { return };
        let mut rows: std::collections::HashMap<(MacAddr, [u8; 16], u16, u8), DestinationUse> =
            std::collections::HashMap::new();
        for r in records.iter().filter(|r| r.delta_packets > 0) {
            let k = &r.key;
            let (first, last) = (
                self.eve.time.to_epoch_ns(r.totals.first_seen_ns),
                self.eve.time.to_epoch_ns(r.totals.last_seen_ns),
            );
            let first_record = u64::from(r.delta_packets == r.totals.packets);
            let row = rows
                .entry((k.mac, k.addr, k.port, k.proto))
                .or_insert_with(|| DestinationUse {
                    mac: k.mac.to_string(),
                    addr: crate::model::addr::ip(k.addr).to_string(),
                    port: k.port,
                    proto: k.proto,
                    app_proto: None,
                    verdict: String::new(),
                    first_ns: first,
                    last_ns: last,
                    flows: 0,
                    packets: 0,
                    bytes: 0,
                });
            row.first_ns = row.first_ns.min(first);
            if last >= row.last_ns || row.verdict.is_empty() {
                row.verdict = r.totals.verdict.as_str().to_string();
            }
            row.last_ns = row.last_ns.max(last);
            row.flows += first_record;
            row.packets += r.delta_packets;
            row.bytes += r.delta_bytes;
            if let Some(a) = r.app_proto {
                row.app_proto = Some(a.to_string());
            }
        }
        let rows: Vec<DestinationUse> = rows.into_values().collect();
        let mut result = store.save_destinations(&rows);
        if result.is_ok() && now_ns >= self.next_prune_ns {
            self.next_prune_ns = now_ns.saturating_add(PRUNE_EVERY_NS);
            result = store
                .prune_destinations(self.destinations, now_ns)
                .map(|_| ());
        }
        if let Err(e) = result {
            self.state_failed(&e);
        }
    }

    /// Stopping: the last records of every flow, then a final `stats` event.
    pub fn finish(&mut self, now_ns: u64, kernel: &KernelStats, extra: Option<(&str, Value)>) {
        // The run ends: randomised MACs still waiting to say who they are are new.
        self.release_held(now_ns, u64::MAX);
        self.finish_fold();
        let records = self.flows.flush();
        self.write_flows(now_ns, records);
        self.end_batch(now_ns);
        self.write_stats(now_ns, kernel, extra);
    }

    /// Writes one event to every sink.
    fn emit(&mut self, v: &Value) {
        self.sinks.emit(v);
    }

    /// Hands the lines written so far to the output's writer thread (the event loop
    /// calls it after each turn; lines are batched until then).
    pub fn flush_output(&mut self) {
        self.sinks.flush();
    }

    /// The output file is opened again by path (SIGHUP, after logrotate moved it).
    pub fn reopen_output(&self) {
        self.sinks.reopen();
    }

    /// The reader closed standard output: the run has nowhere to write and ends.
    pub fn output_closed(&self) -> bool {
        self.sinks.closed()
    }

    /// Userspace counters so far.
    pub fn counters(&self) -> SensorCounters {
        self.counters
    }
}

/// A stored device's tie, if it had one.
fn stored_tie(d: &StoredDevice) -> Option<crate::model::identity::Tie> {
    let i = d.identity.as_ref()?;
    Some(crate::model::identity::Tie {
        identity: i.tied_to.parse().ok()?,
        by: crate::model::identity::Key::parse(&i.by)?,
    })
}
