//! The baseline stage: kernel verdicts of new flows in; learned entries, kernel
//! allow-list updates and policy alerts (`unexpected_destination`, `new_port`) out.
//! The kernel flags a flow on its first packet; this stage confirms it against the
//! freshest state (a DNS answer can land a moment after the kernel looked) before alerting,
//! once per device, destination and rule.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use ipnet::IpNet;
use sensor_common::{
    FLOW_SERVING, FlowKey, MacAddr,
    policy::{AllowEntry, DevicePolicy, Verdict},
};
use serde_json::{Value, json};

use crate::{
    config::Mode,
    judge::policy::{
        DeviceFacts, OwnedFacts, PolicyEngine, allow::AllowRule, dns::Answer, learned,
    },
    judge::rules,
    model::addr,
    model::alert::{About, Alert},
    model::flow::{FlowRecord, Origin},
    model::rule::Rule,
};

/// How many of a device's rules an alert lists as `expected`.
const EXPECTED_SHOWN: usize = 8;

/// A policy alert about a flow: the policies that applied, the device's mode, and for
/// `suspicious_service` which service.
#[allow(clippy::too_many_arguments)]
fn policy_alert(
    rule: &'static Rule,
    key: FlowKey,
    origin: Origin,
    source: &'static str,
    r: &crate::judge::policy::DeviceRules,
    expected: Vec<String>,
    rrname: Option<String>,
    service: Option<String>,
) -> Alert {
    let metadata = match &service {
        Some(s) => json!({"policy": r.policies, "mode": [r.mode.as_str()], "service": [s]}),
        None => json!({"policy": r.policies, "mode": [r.mode.as_str()]}),
    };
    let mut a = Alert::new(rule, About::Flow(key, origin), source).with_metadata(metadata);
    a.expected = expected;
    a.rrname = rrname;
    a
}

/// The baseline stage's judgement of a new flow.
#[derive(Debug)]
pub struct Judged {
    /// The policy verdict before enforcement, on the state as it was when the flow
    /// arrived.
    pub verdict: Verdict,
    /// The destination is on the LAN (always allowed, never learned).
    pub local: bool,
    /// The names the device was given the destination's address for.
    pub names: Vec<String>,
    /// The alert it raises, if any.
    pub alert: Option<Alert>,
}

/// Counters of this stage, in `stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BaselineCounters {
    /// Policy alerts written.
    pub alerts: u64,
    /// Later new flows to an alerted destination (not alerted again).
    pub repeats: u64,
    /// Kernel flags that fresher state cleared (a DNS answer arriving just after).
    pub cleared: u64,
    /// DNS answers taken in.
    pub dns_answers: u64,
    /// New flows to a suspicious service while learning (alerted, not learned).
    pub suspicious: u64,
    /// Learned address entries that became name entries when the device was told the
    /// address's name.
    pub renamed: u64,
    /// New flows to a threat-intel or canary destination while learning (never learned).
    pub intel_not_learned: u64,
    /// Learned entries taken back when a first payload showed a suspicious service or
    /// the destination turned out to be a beacon's.
    pub unlearned: u64,
    /// New flows while learning to a destination an operator rejected (not learned).
    pub rejected_not_learned: u64,
}

/// What the kernel is to hold after a sync: each recompiled device's policy value and
/// allow-list entries, and whether every flow takes its verdict again (a new generation)
/// even if no device entry appeared or changed mode.
#[derive(Debug, Default)]
pub struct PolicyUpdate {
    /// Devices compiled again.
    pub devices: Vec<(MacAddr, DevicePolicy, BTreeMap<IpNet, AllowEntry>)>,
    /// A new generation, whatever the writes change.
    pub new_generation: bool,
}

/// What was learned since the last call, for the state store.
#[derive(Debug, Default)]
pub struct LearnedChanges {
    /// New learned entries (device, rule as written).
    pub learned: Vec<(MacAddr, String)>,
    /// Address entries renamed to the name they were resolved from (device, old, new).
    pub renamed: Vec<(MacAddr, String, String)>,
    /// Entries taken back (device, rule as written).
    pub forgotten: Vec<(MacAddr, String)>,
    /// Every device's learning window end (kernel time), when one changed.
    pub windows: Vec<(MacAddr, Option<u64>)>,
}

/// Where an earlier run left learning: when it began (epoch) and what it learned
/// (device, rule as written).
#[derive(Debug, Default)]
pub struct Resume {
    /// When learning began, epoch nanoseconds.
    pub started_epoch_ns: Option<u64>,
    /// Learned entries.
    pub learned: Vec<(String, String)>,
}

/// The stage.
pub struct Baseline {
    engine: PolicyEngine,
    dirty: BTreeSet<MacAddr>,
    alerted: HashMap<(MacAddr, IpAddr), u64>,
    alerted_rules: BTreeSet<(MacAddr, IpAddr, &'static str)>,
    force_generation: bool,
    /// Entries an operator rejected for a device: never learned.
    rejected: BTreeSet<(MacAddr, AllowRule)>,
    /// Counters.
    pub counters: BaselineCounters,
}

impl Baseline {
    /// Around an engine.
    pub fn new(engine: PolicyEngine) -> Self {
        Self {
            engine,
            dirty: BTreeSet::new(),
            alerted: HashMap::new(),
            alerted_rules: BTreeSet::new(),
            force_generation: false,
            rejected: BTreeSet::new(),
            counters: BaselineCounters::default(),
        }
    }

    /// Operators' decisions about destinations, as a whole: accepted entries join the
    /// device's baseline (allowed from now on, learning or not), rejected ones leave it
    /// and are never learned again. Devices whose baseline changed are recompiled.
    pub fn set_decisions(
        &mut self,
        accepted: &[(MacAddr, AllowRule)],
        rejected: &[(MacAddr, AllowRule)],
    ) {
        for (mac, rule) in accepted {
            if !self.engine.learned.rules(mac).any(|r| r == rule) {
                self.engine.learned.restore(*mac, rule.clone());
                self.dirty.insert(*mac);
            }
        }
        self.rejected = rejected.iter().cloned().collect();
        for (mac, rule) in rejected {
            if self.engine.learned.forget(*mac, rule) {
                self.dirty.insert(*mac);
            }
        }
    }

    /// The states operators put devices in, as a whole: devices whose state changed are
    /// compiled again (a state may carry a mode, `[states]`).
    pub fn set_device_states(&mut self, states: BTreeMap<MacAddr, String>) {
        let changed = self.engine.set_device_states(states);
        self.dirty.extend(changed);
    }

    /// The engine.
    pub fn engine(&self) -> &PolicyEngine {
        &self.engine
    }

    /// Devices waiting to be compiled.
    pub fn dirty(&self) -> impl Iterator<Item = MacAddr> + '_ {
        self.dirty.iter().copied()
    }

    /// A device's facts (category, MUD URL) may have changed: compile it again.
    pub fn touch(&mut self, mac: MacAddr) {
        self.dirty.insert(mac);
    }

    /// The suspicious service a flow's destination port is, if any.
    fn suspicious(&self, key: &FlowKey) -> Option<&str> {
        self.engine.suspicious.matches(key.proto, key.port)
    }

    /// Compiles `d` now if it never was (its first flow can come before its first batch)
    /// or something changed since (a DNS answer a moment ago): the verdict must see it.
    fn ensure(&mut self, d: &DeviceFacts<'_>) {
        if self.engine.rules(&d.mac).is_none() || self.dirty.contains(&d.mac) {
            self.engine.compile(d);
            self.dirty.insert(d.mac);
        }
    }

    /// A new flow the kernel reported with its verdict: the verdict confirmed on the
    /// freshest state, once, for every later stage (intel, anomaly) to use.
    pub fn on_new_flow(&mut self, key: FlowKey, origin: Origin, d: &DeviceFacts<'_>) -> Judged {
        self.engine.advance(origin.ts_ns);
        self.ensure(d);
        let dst = addr::ip(key.addr);
        let names: Vec<String> = self
            .engine
            .resolved
            .names_for(&key.mac, dst)
            .into_iter()
            .map(str::to_string)
            .collect();
        let (verdict, enforced) = self
            .engine
            .evaluate_detail(&key.mac, dst, key.port, key.proto);
        let local = self.engine.is_local(dst);
        let name = names.first().cloned();
        let alert = self.decide(key, origin, true, (verdict, enforced), name);
        Judged {
            verdict,
            local,
            names,
            alert,
        }
    }

    /// Takes what learning took in for `key`'s destination (by name and by address) back
    /// out of the baseline: a behaviour detector found it is no device's normal (a
    /// beacon, a suspicious service). Returns whether anything was there.
    pub fn take_back(&mut self, key: FlowKey) -> bool {
        let (mac, dst) = (key.mac, addr::ip(key.addr));
        let name = self
            .engine
            .resolved
            .names_for(&mac, dst)
            .first()
            .map(|s| s.to_string());
        let mut forgot = false;
        for n in [name.as_deref(), None] {
            let rule = learned::rule_for(dst, key.port, key.proto, n);
            forgot |= self.engine.learned.forget(mac, &rule);
        }
        if forgot {
            self.counters.unlearned += 1;
            self.dirty.insert(mac);
        }
        forgot
    }

    /// What a flow's first payload showed it to be (`service`, whatever its port): a
    /// service no device should use (`Suspicious::by_payload`) is alerted as
    /// `suspicious_service`, once per device, destination and rule, unless the operator's
    /// own policy allows the destination; while the device learns, the destination is
    /// taken back out of what it learned, so it never becomes its normal.
    pub fn on_service(
        &mut self,
        key: FlowKey,
        origin: Origin,
        service: &'static str,
        d: &DeviceFacts<'_>,
    ) -> Option<Alert> {
        if key.flags & FLOW_SERVING != 0 {
            return None;
        }
        self.ensure(d);
        let (mac, dst) = (key.mac, addr::ip(key.addr));
        let learning = self
            .engine
            .rules(&mac)
            .is_some_and(|r| r.mode == Mode::Learn);
        let local = self.engine.is_local(dst);
        if !self.engine.suspicious.by_payload(service, learning, local) {
            return None;
        }
        let name = self
            .engine
            .resolved
            .names_for(&mac, dst)
            .first()
            .map(|s| s.to_string());
        let (before, _) = self.engine.evaluate_detail(&mac, dst, key.port, key.proto);
        if !self.take_back(key) && before == Verdict::Allowed && !local {
            // Declared by the operator (or their MUD file): their call.
            return None;
        }
        self.suspicious_alert(key, origin, name, service, "payload")
    }

    /// `suspicious_service` about a flow, once per device and destination; the
    /// service, and whether its `port` or its `payload` named it.
    fn suspicious_alert(
        &mut self,
        key: FlowKey,
        origin: Origin,
        name: Option<String>,
        service: &str,
        identified_by: &str,
    ) -> Option<Alert> {
        let (mac, dst) = (key.mac, addr::ip(key.addr));
        self.counters.suspicious += 1;
        if !self
            .alerted_rules
            .insert((mac, dst, rules::SUSPICIOUS_SERVICE.id))
        {
            self.counters.repeats += 1;
            return None;
        }
        self.counters.alerts += 1;
        let r = self.engine.rules(&mac).expect("compiled");
        let mut a = policy_alert(
            &rules::SUSPICIOUS_SERVICE,
            key,
            origin,
            "suspicious",
            r,
            Vec::new(),
            name,
            Some(service.to_string()),
        );
        a.metadata["identified_by"] = json!([identified_by]);
        Some(a)
    }

    /// A flow's verdict on the current state: learned (when learning and `learn`), an
    /// alert (once per device, destination and rule), or nothing.
    fn check(&mut self, key: FlowKey, origin: Origin, learn: bool) -> Option<Alert> {
        let dst = addr::ip(key.addr);
        let detail = self
            .engine
            .evaluate_detail(&key.mac, dst, key.port, key.proto);
        let name = self
            .engine
            .resolved
            .names_for(&key.mac, dst)
            .first()
            .map(|s| s.to_string());
        self.decide(key, origin, learn, detail, name)
    }

    /// [`Baseline::check`] with the verdict (before enforcement, and whether the device
    /// is enforced) and the resolved name already taken.
    fn decide(
        &mut self,
        key: FlowKey,
        origin: Origin,
        learn: bool,
        (base, enforced): (Verdict, bool),
        name: Option<String>,
    ) -> Option<Alert> {
        let mac = key.mac;
        let dst = addr::ip(key.addr);
        // A service the device is reaching out to (not one it serves on).
        let service = (base == Verdict::Learning && key.flags & FLOW_SERVING == 0)
            .then(|| self.suspicious(&key).map(str::to_string))
            .flatten();
        match base {
            Verdict::Learning if !learn || self.engine.is_local(dst) => None,
            // The kernel found the destination on a feed or among the canaries: the intel
            // stage alerts on it, and it is never anyone's normal.
            Verdict::Learning
                if matches!(
                    origin.verdict,
                    Verdict::Intel | Verdict::IntelBlocked | Verdict::Canary
                ) =>
            {
                self.counters.intel_not_learned += 1;
                None
            }
            Verdict::Learning if let Some(service) = service => {
                // Never learned: what no IoT device should do is not its normal.
                self.suspicious_alert(key, origin, name, &service, "port")
            }
            Verdict::Learning => {
                let rule = learned::rule_for(dst, key.port, key.proto, name.as_deref());
                if self.rejected.contains(&(mac, rule.clone())) {
                    self.counters.rejected_not_learned += 1;
                    return None;
                }
                if self.engine.learned.record(mac, rule) {
                    self.dirty.insert(mac);
                }
                None
            }
            Verdict::Unexpected | Verdict::NewPort => {
                let rule = if base == Verdict::NewPort {
                    &rules::NEW_PORT
                } else {
                    &rules::UNEXPECTED_DESTINATION
                };
                self.alerted.entry((mac, dst)).or_insert(0);
                if !self.alerted_rules.insert((mac, dst, rule.id)) {
                    *self.alerted.get_mut(&(mac, dst)).expect("inserted") += 1;
                    self.counters.repeats += 1;
                    return None;
                }
                self.counters.alerts += 1;
                let r = self.engine.rules(&mac).expect("compiled");
                let mut a = policy_alert(
                    rule,
                    key,
                    origin,
                    r.source.map_or("learned", |s| s.as_str()),
                    r,
                    r.rules.iter().take(EXPECTED_SHOWN).cloned().collect(),
                    name,
                    None,
                );
                a.blocked = enforced && origin.verdict == Verdict::Blocked;
                Some(a)
            }
            _ => {
                if learn
                    && matches!(
                        origin.verdict,
                        Verdict::Unexpected | Verdict::NewPort | Verdict::Blocked
                    )
                {
                    self.counters.cleared += 1;
                }
                None
            }
        }
    }

    /// A new configuration: the engine is rebuilt from it (keeping what was learned and
    /// resolved), every device compiled again, and every flow's verdict taken again in the
    /// kernel (a new generation) and here: flows that the new policy no longer allows
    /// are alerted on now, not at their next new flow.
    pub fn reload(
        &mut self,
        mut engine: PolicyEngine,
        flows: impl Iterator<Item = (FlowKey, Origin)>,
        facts: impl Fn(&MacAddr) -> Option<OwnedFacts>,
    ) -> Vec<Alert> {
        let old = std::mem::replace(&mut self.engine, PolicyEngine::placeholder());
        let macs: Vec<MacAddr> = old.compiled_macs().collect();
        engine.adopt(old);
        self.engine = engine;
        self.dirty.extend(macs);
        self.force_generation = true;
        let mut out = Vec::new();
        for (key, origin) in flows {
            let Some(f) = facts(&key.mac) else {
                continue;
            };
            self.ensure(&f.of(key.mac));
            if let Some(mut a) = self.check(key, origin, false) {
                // The kernel drops its next frames if the device is enforced.
                a.blocked = self
                    .engine
                    .rules(&key.mac)
                    .is_some_and(|r| r.mode == Mode::Enforce);
                out.push(a);
            }
        }
        out
    }

    /// A DNS answer the gateway sent a device. An address the device learned without a
    /// name becomes the name it asked for.
    pub fn on_dns(&mut self, a: &Answer, now_kernel_ns: u64) {
        self.counters.dns_answers += 1;
        if self.engine.resolved.on_answer(a, now_kernel_ns) {
            self.dirty.insert(a.mac);
        }
        let Some(head) = a.names.first() else { return };
        for addr in &a.addrs {
            let n = self.engine.learned.rekey(a.mac, *addr, head);
            if n > 0 {
                self.counters.renamed += n as u64;
                self.dirty.insert(a.mac);
                tracing::info!(
                    mac = %a.mac,
                    %addr,
                    name = %head,
                    entries = n,
                    "a learned address is learned by its name from now on"
                );
            }
        }
    }

    /// Time passes: DNS entries expire; devices' learning windows end (returns those
    /// devices).
    pub fn on_tick(
        &mut self,
        now_kernel_ns: u64,
        devices: impl Iterator<Item = MacAddr>,
    ) -> Vec<MacAddr> {
        if self.engine.resolved.expire(now_kernel_ns) {
            self.dirty.extend(devices);
        }
        let ended = self.engine.end_learning(now_kernel_ns);
        for mac in &ended {
            tracing::info!(
                mac = %mac,
                entries = self.engine.learned.rules(mac).count(),
                "learning ended for the device; monitoring it from now on"
            );
        }
        self.dirty.extend(ended.iter().copied());
        ended
    }

    /// Compiles the devices that changed; returns what the kernel is to hold now.
    pub fn sync(&mut self, facts: impl Fn(&MacAddr) -> Option<OwnedFacts>) -> PolicyUpdate {
        let mut update = PolicyUpdate {
            devices: Vec::new(),
            new_generation: std::mem::take(&mut self.force_generation),
        };
        for mac in std::mem::take(&mut self.dirty) {
            let Some(f) = facts(&mac) else {
                continue;
            };
            let r = self.engine.compile(&f.of(mac));
            update.devices.push((mac, r.kernel(), r.entries.clone()));
        }
        update
    }

    /// Marks flow records whose destination was alerted on with the repeats since.
    pub fn annotate(&self, records: &mut [FlowRecord]) {
        for r in records {
            if let Some(n) = self.alerted.get(&(r.key.mac, addr::ip(r.key.addr))) {
                r.alert_repeats = Some(*n);
            }
        }
    }

    /// What was learned and renamed since the last call, and the learning windows when
    /// one changed: the state store keeps them.
    pub fn take_learned(&mut self) -> LearnedChanges {
        LearnedChanges {
            learned: self
                .engine
                .learned
                .take_pending()
                .into_iter()
                .map(|(m, r)| (m, r.to_string()))
                .collect(),
            renamed: self
                .engine
                .learned
                .take_renamed()
                .into_iter()
                .map(|(m, old, new)| (m, old.to_string(), new.to_string()))
                .collect(),
            forgotten: self
                .engine
                .learned
                .take_forgotten()
                .into_iter()
                .map(|(m, r)| (m, r.to_string()))
                .collect(),
            windows: self.engine.take_windows(),
        }
    }

    /// The `policy` section of `stats`.
    pub fn stats(&self, time: &crate::model::clock::TimeBase) -> Value {
        let e = &self.engine;
        let c = &self.counters;
        let (learning, until) = e.learning();
        json!({
            "mode": e.mode_now().as_str(),
            "devices_learning": learning,
            "learning_until": until.map(|t| crate::model::clock::eve_timestamp(time.to_epoch_ns(t))),
            "renamed": c.renamed,
            "intel_not_learned": c.intel_not_learned,
            "learned_entries": e.learned.len(),
            "learned_dropped": e.learned.dropped,
            "widened": e.widened,
            "alerts": c.alerts,
            "repeats": c.repeats,
            "cleared": c.cleared,
            "dns_answers": c.dns_answers,
            "dns_dropped": e.resolved.dropped,
            "suspicious": c.suspicious,
            "unlearned": c.unlearned,
            "rejected_not_learned": c.rejected_not_learned,
        })
    }
}

/// Builds the stage at start-up: the engine from the configuration, learning resumed
/// where an earlier run left it (`resume`, from the state directory), MUD problems
/// reported.
pub fn start(
    config: &crate::config::Config,
    resume: Resume,
    local: Vec<ipnet::IpNet>,
    now_epoch_ns: u64,
    time: &crate::model::clock::TimeBase,
) -> Baseline {
    let (mut engine, report) = PolicyEngine::new(
        config,
        local,
        time.to_kernel_ns(now_epoch_ns),
        resume.started_epoch_ns.map(|e| time.to_kernel_ns_signed(e)),
    );
    report.log();
    for (mac, rule) in resume.learned {
        if let (Some(m), Ok(r)) = (mac.parse::<MacAddr>().ok(), rule.parse()) {
            engine.learned.restore(m, r);
        }
    }
    Baseline::new(engine)
}
