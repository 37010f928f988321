//! The engine both drivers share: kernel events and polled counters in, EVE events out.
//! `run` feeds it from a live interface, `replay` from capture files, so both give the
//! same stream for the same frames.

use serde_json::{Value, json};

use crate::{
    addr, assess,
    classify::Classifier,
    clock,
    config::Config,
    criticality::Thresholds,
    devices::{DeviceTable, DeviceTotals},
    discovery,
    eve::{Eve, SensorCounters},
    events::{self, KernelEvent},
    flows::{FlowTable, FlowTotals, Origin},
    inventory::{Finding, Inventory},
    kernel_maps::KernelMaps,
    output::Output,
    rules,
    state::{Store, StoredDevice},
};
use sensor_common::{FLOW_SERVING, FlowKey, stats};

/// Kernel counters as read from the stats map.
pub type KernelStats = [u64; stats::COUNT as usize];

/// The engine.
pub struct Sensor {
    eve: Eve,
    flows: FlowTable,
    devices: DeviceTable,
    inventory: Inventory,
    classifier: Classifier,
    thresholds: Thresholds,
    store: Option<Store>,
    out: Output,
    counters: SensorCounters,
    /// Findings of the current batch, written after the device records they concern.
    pending: Vec<Finding>,
    started_ns: u64,
    stats_every_ns: u64,
    next_stats_ns: u64,
}

impl Sensor {
    /// A sensor that starts at `now_ns` (epoch), keeping its inventory in `store` if given.
    pub fn new(
        eve: Eve,
        config: &Config,
        classifier: Classifier,
        store: Option<Store>,
        out: Output,
        now_ns: u64,
    ) -> Self {
        let inventory = Inventory::new(config, eve.time.to_kernel_ns(now_ns));
        let thresholds = config.inventory.thresholds();
        let config = &config.sensor;
        let stats_every_ns = config.stats_interval.get_ref().as_nanos() as u64;
        Self {
            eve,
            flows: FlowTable::new(*config.flow_report.get_ref()),
            devices: DeviceTable::default(),
            inventory,
            classifier,
            thresholds,
            store,
            out,
            counters: SensorCounters::default(),
            pending: Vec::new(),
            started_ns: now_ns,
            stats_every_ns,
            next_stats_ns: now_ns + stats_every_ns,
        }
    }

    /// One ring-buffer record.
    pub fn on_record(&mut self, bytes: &[u8]) {
        self.counters.events += 1;
        match events::decode(bytes) {
            Ok(KernelEvent::NewDevice(ev)) => self.devices.on_seen(ev.key.mac, ev.ts_ns),
            Ok(KernelEvent::NewFlow(ev)) => {
                let src = addr::ip(ev.src_addr);
                self.devices.on_seen(ev.key.mac, ev.ts_ns);
                self.devices.on_address(ev.key.mac, src, ev.ts_ns);
                self.devices.on_flow(
                    ev.key.mac,
                    addr::ip(ev.key.addr),
                    ev.key.flags & FLOW_SERVING != 0,
                );
                self.flows.on_new_flow(
                    ev.key,
                    Origin {
                        src,
                        src_port: ev.src_port,
                        dst_port: ev.dst_port,
                        dst_mac: ev.dst_mac,
                    },
                );
            }
            Ok(KernelEvent::Discovery(head, frame)) => {
                self.counters.discovery_frames += 1;
                self.devices.on_seen(head.key.mac, head.ts_ns);
                // Decoders meet hostile bytes: a panic in one (ours or a crate's) is a
                // malformed frame, never a dead sensor.
                let decoded = std::panic::catch_unwind(|| discovery::decode(&frame))
                    .unwrap_or_else(|_| Err(discovery::DecodeError::new("decoder", "panicked")));
                match decoded {
                    Ok(Some(d)) => self.devices.on_facts(d, head.ts_ns),
                    Ok(None) => {}
                    Err(e) => {
                        if self.counters.discovery_malformed == 0 {
                            tracing::warn!(
                                "a discovery frame from {} did not decode: {e} (counted as discovery_malformed)",
                                addr::mac(head.key.mac)
                            );
                        }
                        self.counters.discovery_malformed += 1;
                    }
                }
            }
            Err(e) => {
                if self.counters.events_malformed == 0 {
                    tracing::warn!("{e} (counted as events_malformed in stats)");
                }
                self.counters.events_malformed += 1;
            }
        }
    }

    /// The end of a batch of records: assess what changed, write it, persist it, and
    /// write what the inventory says of it.
    pub fn end_batch(&mut self, now_ns: u64) {
        self.restore_fresh();
        let mut to_assess = self.devices.take_peer_changes();
        to_assess.extend(self.devices.changed_macs());
        for mac in to_assess {
            let Some(d) = self.devices.get(&mac) else {
                continue;
            };
            let a = assess::assess(
                d,
                self.inventory.declared(&mac),
                &self.classifier,
                &self.thresholds,
            );
            if let Some(f) =
                self.inventory
                    .on_classified(mac, &a.observed, self.classifier.strong())
            {
                self.pending.push(f);
            }
            self.devices.assess(&mac, a);
        }
        let mut rows = Vec::new();
        for d in self.devices.take_changed() {
            if let Some(f) = self.inventory.on_device(&d) {
                self.pending.push(f);
            }
            let declared = self.inventory.declared(&d.mac);
            let v = self.eve.device(now_ns, &d, declared);
            self.out.write(&v);
            self.counters.device_records += 1;
            if self.store.is_some() {
                rows.push(StoredDevice::from_device(
                    &d,
                    declared,
                    self.inventory.reported_new(&d.mac),
                    &self.eve.time,
                ));
            }
        }
        for m in self.devices.take_moves() {
            if let Some(f) = self.inventory.on_move(m) {
                self.pending.push(f);
            }
        }
        for f in std::mem::take(&mut self.pending) {
            if let Finding::NewDevice(mac) = f
                && let Some(row) = rows.iter_mut().find(|r| r.mac == addr::mac(mac))
            {
                row.new_device_reported = true;
            }
            self.write_finding(now_ns, f);
        }
        self.persist(&rows);
    }

    /// Devices seen for the first time in this run get back what earlier runs knew.
    fn restore_fresh(&mut self) {
        let Some(store) = &self.store else {
            let _ = self.devices.take_fresh();
            return;
        };
        let mut failures = Vec::new();
        for mac in self.devices.take_fresh() {
            match store.device(&addr::mac(mac)) {
                Ok(Some(old)) => {
                    if old.new_device_reported {
                        self.inventory.already_reported_new(mac);
                    }
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
            tracing::error!("state store: {err} (counted as state_errors; events continue)");
        }
        self.counters.state_errors += 1;
    }

    fn write_finding(&mut self, now_ns: u64, f: Finding) {
        let (rule, mac, metadata) = match f {
            Finding::NewDevice(mac) => (&rules::NEW_DEVICE, mac, json!({})),
            Finding::Missing(mac) => {
                let last = self.devices.get(&mac).map_or("never".to_string(), |d| {
                    clock::eve_timestamp(self.eve.time.to_epoch_ns(d.last_seen_ns))
                });
                (&rules::MISSING_DEVICE, mac, json!({ "last_seen": [last] }))
            }
            Finding::AddressChange(m) => {
                let mut meta = json!({ "address": [m.addr.to_string()] });
                if let Some(prev) = m.previous_owner {
                    meta["previous_mac"] = json!([addr::mac(prev)]);
                }
                (&rules::ADDRESS_CHANGE, m.mac, meta)
            }
            Finding::CategoryMismatch {
                mac,
                declared,
                observed,
                confidence,
            } => (
                &rules::CATEGORY_MISMATCH,
                mac,
                json!({
                    "declared_category": [declared],
                    "observed_category": [observed],
                    "confidence": [format!("{confidence:.2}")],
                }),
            ),
        };
        let v = self.eve.alert(
            now_ns,
            rule,
            mac,
            self.devices.get(&mac),
            self.inventory.declared(&mac),
            "inventory",
            metadata,
        );
        self.out.write(&v);
        self.counters.alerts += 1;
    }

    /// A poll of the kernel maps.
    pub fn on_poll(
        &mut self,
        now_ns: u64,
        flows: Vec<(FlowKey, FlowTotals)>,
        devices: Vec<([u8; 6], DeviceTotals)>,
    ) {
        let now_kernel = self.eve.time.to_kernel_ns(now_ns);
        let records = self.flows.on_poll(now_ns, now_kernel, flows);
        self.devices
            .on_poll(devices, &self.flows.last_seen_by_device());
        self.write_flows(now_ns, &records);
        self.end_batch(now_ns);
        for f in self.inventory.check_missing(now_kernel, &self.devices) {
            self.write_finding(now_ns, f);
        }
    }

    /// Reads the flow and device maps and takes them in.
    pub fn poll(&mut self, maps: &KernelMaps, now_ns: u64) {
        match (maps.flows(), maps.devices()) {
            (Ok(f), Ok(d)) => self.on_poll(now_ns, f, d),
            (Err(e), _) | (_, Err(e)) => self.poll_failed(&e),
        }
    }

    /// A poll that failed (counted; the next one tries again).
    fn poll_failed(&mut self, err: &dyn std::error::Error) {
        if self.counters.poll_errors == 0 {
            tracing::warn!("reading kernel maps failed: {err}");
        }
        self.counters.poll_errors += 1;
    }

    fn write_flows(&mut self, now_ns: u64, records: &[crate::flows::FlowRecord]) {
        for r in records {
            let v = self.eve.flow(now_ns, r);
            self.out.write(&v);
            self.counters.flow_records += 1;
        }
    }

    /// Whether a `stats` event is due.
    pub fn stats_due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_stats_ns
    }

    /// Writes a `stats` event; `extra` is a driver's own section (e.g. `replay`).
    pub fn write_stats(&mut self, now_ns: u64, kernel: &KernelStats, extra: Option<(&str, Value)>) {
        let uptime = now_ns.saturating_sub(self.started_ns) / 1_000_000_000;
        let v = self
            .eve
            .stats(now_ns, uptime, kernel, self.counters_json(), extra);
        self.out.write(&v);
        while self.next_stats_ns <= now_ns {
            self.next_stats_ns += self.stats_every_ns;
        }
    }

    fn counters_json(&self) -> Value {
        let c = &self.counters;
        json!({
            "events": c.events,
            "events_malformed": c.events_malformed,
            "discovery_frames": c.discovery_frames,
            "discovery_malformed": c.discovery_malformed,
            "state_errors": c.state_errors,
            "poll_errors": c.poll_errors,
            "flows_tracked": self.flows.len(),
            "flows_evicted": self.flows.evicted,
            "flows_recreated": self.flows.recreated,
            "flow_records": c.flow_records,
            "devices_tracked": self.devices.len(),
            "devices_evicted": self.devices.evicted,
            "device_records": c.device_records,
            "alerts": c.alerts,
            "output_lines": self.out.lines(),
            "output_errors": self.out.errors(),
            "output_dropped": self.out.dropped(),
        })
    }

    /// Stopping: the last records of every flow, then a final `stats` event.
    pub fn finish(&mut self, now_ns: u64, kernel: &KernelStats, extra: Option<(&str, Value)>) {
        let records = self.flows.flush();
        self.write_flows(now_ns, &records);
        self.end_batch(now_ns);
        self.write_stats(now_ns, kernel, extra);
    }

    /// Userspace counters so far.
    pub fn counters(&self) -> SensorCounters {
        self.counters
    }
}
