//! Destination policy: which destinations each device may reach, from three sources
//! (declared `[[policy]]`, RFC 8520 MUD files, the learned baseline), compiled per device
//! into kernel allow-list entries, and the same verdict taken in userspace to confirm an
//! alert with the freshest DNS state.

use sensor_common::MacAddr;

pub mod allow;
mod build;
pub mod dns;
pub mod learned;
mod local;
pub mod mud;
pub mod suspicious;
mod window;

pub use build::{LoadReport, effective_modes};
pub use local::{interface_prefixes, private_ranges};
use window::Window;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;
use sensor_common::policy::{ALLOW_PORTS, AllowEntry, DevicePolicy, PortRule, Verdict, mode};

use crate::config::Mode;
use allow::{AllowRule, Dest};
use dns::Resolved;
use learned::Learned;
use mud::MudPolicy;

/// Where a device's rules came from (`iot.rule.source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicySource {
    /// A `[[policy]]` in the configuration.
    Declared,
    /// A MUD file.
    Mud,
    /// The learned baseline.
    Learned,
}

impl PolicySource {
    /// The name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::Declared => "declared",
            PolicySource::Mud => "mud",
            PolicySource::Learned => "learned",
        }
    }
}

struct DeclaredPolicy {
    name: String,
    categories: Vec<String>,
    devices: BTreeSet<MacAddr>,
    rules: Vec<AllowRule>,
    mud: Option<MudPolicy>,
    mode: Mode,
    /// Its own learning window (learn mode), instead of `[baseline] learn_for`.
    learn_for_ns: Option<u64>,
    /// Its own `registered_domains`, instead of `[baseline]`'s.
    registered_domains: Option<bool>,
}

/// What the engine needs to know of a device.
#[derive(Clone, Copy, Debug)]
pub struct DeviceFacts<'a> {
    /// Its MAC.
    pub mac: MacAddr,
    /// Its category in effect (declared, else observed), if known.
    pub category: Option<&'a str>,
    /// The MUD URL it announced, if any.
    pub mud_url: Option<&'a str>,
    /// Kernel time of its first sight (any run; negative before this boot): its learning
    /// window starts there.
    pub first_seen_ns: i64,
}

/// [`DeviceFacts`], owned: what a stage collects of each device before compiling them.
#[derive(Clone, Debug, Default)]
pub struct OwnedFacts {
    /// Its category in effect, if known.
    pub category: Option<String>,
    /// The MUD URL it announced, if any.
    pub mud_url: Option<String>,
    /// Kernel time of its first sight (negative before this boot).
    pub first_seen_ns: i64,
}

impl OwnedFacts {
    /// Borrowed, for the device `mac`.
    pub fn of(&self, mac: MacAddr) -> DeviceFacts<'_> {
        DeviceFacts {
            mac,
            category: self.category.as_deref(),
            mud_url: self.mud_url.as_deref(),
            first_seen_ns: self.first_seen_ns,
        }
    }
}

/// What applies to a device from declared policies and MUD.
struct Applied<'e> {
    rules: Vec<(PolicySource, &'e AllowRule)>,
    mode: Option<Mode>,
    names: Vec<String>,
    learn_for_ns: Option<u64>,
    registered_domains: Option<bool>,
}

/// One device's compiled policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRules {
    /// Its kernel group.
    pub group: u32,
    /// Its mode.
    pub mode: Mode,
    /// Destination prefixes and what each is allowed on (covering prefixes folded in).
    pub entries: BTreeMap<IpNet, AllowEntry>,
    /// The sources of its rules, strongest first.
    pub source: Option<PolicySource>,
    /// Its rules as written, for the alert's `expected`.
    pub rules: Vec<String>,
    /// The policies they came from: `[[policy]]` names, `mud:<url>`, `learned`.
    pub policies: Vec<String>,
    /// The rules of its declared and MUD policies, as written (the learned ones are in
    /// the baseline).
    pub declared: Vec<String>,
}

impl DeviceRules {
    /// The kernel's device-policy value.
    pub fn kernel(&self) -> DevicePolicy {
        DevicePolicy {
            group: self.group,
            mode: kernel_mode(self.mode),
            _pad: [0; 3],
        }
    }

    /// What the longest allow-list prefix covering `addr` says: whether there is one,
    /// and whether it allows the port and protocol (the kernel's trie lookup, in
    /// userspace).
    fn lookup(&self, addr: IpAddr, port: u16, proto: u8) -> (bool, bool) {
        let best = self
            .entries
            .iter()
            .filter(|(n, _)| n.contains(&addr))
            .max_by_key(|(n, _)| n.prefix_len());
        match best {
            None => (false, false),
            Some((_, e)) => (true, e.allows(port, proto)),
        }
    }
}

/// The policy engine.
pub struct PolicyEngine {
    policies: Vec<DeclaredPolicy>,
    device_policy: BTreeMap<MacAddr, String>,
    mud_by_url: BTreeMap<String, MudPolicy>,
    local: Vec<IpNet>,
    /// The mode of devices without a declared policy, now.
    pub mode: Mode,
    /// The mode of a declared or MUD policy that names none: enforce when `[baseline]`
    /// says enforce, else monitor (a declared policy is meant to be checked, not learned).
    declared_default: Mode,
    /// Services no device may learn (alerted as `suspicious_service` instead).
    pub suspicious: suspicious::Suspicious,
    /// How long a device in learn mode learns, from its first sight.
    learn_for_ns: u64,
    /// No device's learning window starts before this kernel time (when this sensor
    /// first learned, from the state directory; negative before this boot).
    learn_from_ns: i64,
    /// Devices in learn mode and their windows.
    learn_until: BTreeMap<MacAddr, Window>,
    /// `learn_until` changed since the store last took it.
    windows_changed: BTreeSet<MacAddr>,
    /// The latest kernel time the engine was told.
    now_ns: u64,
    /// `[baseline] registered_domains`: a name rule allows every name of its registered
    /// domain (Public Suffix List), for devices whose policy does not say.
    registered_domains: bool,
    /// The learned baseline.
    pub learned: Learned,
    /// What each device was told by DNS.
    pub resolved: Resolved,
    groups: BTreeMap<MacAddr, u32>,
    compiled: BTreeMap<MacAddr, DeviceRules>,
    /// Port rules past [`ALLOW_PORTS`] on one prefix, widened to any port.
    pub widened: u64,
    /// `[states]`: the mode each operator state asks for.
    state_modes: BTreeMap<String, Mode>,
    /// The state operators put each device in.
    device_states: BTreeMap<MacAddr, String>,
}

impl PolicyEngine {
    /// Takes over what a running engine knows that configuration does not: the learned
    /// baseline, DNS answers, kernel group numbers, the learning windows and the time.
    pub fn adopt(&mut self, old: PolicyEngine) {
        self.learned = old.learned;
        self.resolved = old.resolved;
        self.groups = old.groups;
        self.widened = old.widened;
        self.learn_from_ns = old.learn_from_ns;
        self.learn_until = old.learn_until;
        self.device_states = old.device_states;
        self.now_ns = self.now_ns.max(old.now_ns);
    }

    /// The states operators put devices in, as a whole; returns the devices whose mode
    /// may change (to be compiled again).
    pub fn set_device_states(&mut self, states: BTreeMap<MacAddr, String>) -> Vec<MacAddr> {
        let changed = crate::judge::changed_keys(&self.device_states, &states);
        self.device_states = states;
        changed
    }

    /// The mode an operator's state puts a device in, if its state has one.
    fn state_mode(&self, mac: &MacAddr) -> Option<Mode> {
        self.state_modes.get(self.device_states.get(mac)?).copied()
    }

    /// The declared and MUD rules that apply to a device, and what they ask for.
    fn declared(&self, d: &DeviceFacts<'_>) -> Applied<'_> {
        let mut out = Applied {
            rules: Vec::new(),
            mode: None,
            names: Vec::new(),
            learn_for_ns: None,
            registered_domains: None,
        };
        let named = self.device_policy.get(&d.mac);
        let strictest = |a: Option<Mode>, b: Mode| match (a, b) {
            (Some(Mode::Enforce), _) | (_, Mode::Enforce) => Some(Mode::Enforce),
            (Some(Mode::Monitor), _) | (_, Mode::Monitor) => Some(Mode::Monitor),
            _ => Some(Mode::Learn),
        };
        for p in &self.policies {
            let applies = named == Some(&p.name)
                || p.devices.contains(&d.mac)
                || d.category
                    .is_some_and(|c| p.categories.iter().any(|x| x == c));
            if !applies {
                continue;
            }
            out.mode = strictest(out.mode, p.mode);
            out.names.push(p.name.clone());
            // Several policies: the shortest window, and wide matching only if all agree.
            out.learn_for_ns = match (out.learn_for_ns, p.learn_for_ns) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            out.registered_domains = match (out.registered_domains, p.registered_domains) {
                (Some(a), Some(b)) => Some(a && b),
                (a, b) => a.or(b),
            };
            out.rules
                .extend(p.rules.iter().map(|r| (PolicySource::Declared, r)));
            if let Some(m) = &p.mud {
                out.rules
                    .extend(m.rules.iter().map(|r| (PolicySource::Mud, r)));
            }
        }
        if let Some(m) = d.mud_url.and_then(|u| self.mud_by_url.get(u)) {
            out.mode = out.mode.or(Some(self.declared_default));
            out.names.push(format!("mud:{}", m.url));
            out.rules
                .extend(m.rules.iter().map(|r| (PolicySource::Mud, r)));
        }
        out
    }

    /// Compiles one device's policy (and keeps it for [`PolicyEngine::evaluate`]).
    pub fn compile(&mut self, d: &DeviceFacts<'_>) -> &DeviceRules {
        let next = self.groups.len() as u32 + 1;
        let group = *self.groups.entry(d.mac).or_insert(next);
        let applied = self.declared(d);
        let mut policies = applied.names;
        if self.learned.rules(&d.mac).next().is_some() {
            policies.push("learned".into());
        }
        let wide = applied
            .registered_domains
            .unwrap_or(self.registered_domains);
        let (declared_mode, learn_for_ns) = (applied.mode, applied.learn_for_ns);
        let mut all: Vec<(PolicySource, AllowRule)> = applied
            .rules
            .into_iter()
            .map(|(s, r)| (s, r.clone()))
            .collect();
        // An operator's state wins over what the configuration says of the device.
        let mode = match self.state_mode(&d.mac) {
            Some(m) => self.mode_for(d, m, None),
            None => self.mode_for(d, declared_mode.unwrap_or(self.mode), learn_for_ns),
        };
        all.extend(
            self.learned
                .rules(&d.mac)
                .map(|r| (PolicySource::Learned, r.clone())),
        );
        let source = all.iter().map(|(s, _)| *s).min();
        let mut per_net: BTreeMap<IpNet, Vec<Option<PortRule>>> = BTreeMap::new();
        if mode != Mode::Learn {
            for n in &self.local {
                per_net.entry(*n).or_default().push(None);
            }
            for (_, r) in &all {
                let pr = port_rule(r);
                let nets: Vec<IpNet> = match &r.dest {
                    Dest::Net(n) => vec![*n],
                    dest => self
                        .resolved
                        .addrs_for(&d.mac, |name| {
                            dest.matches_name(name) || (wide && dest.same_registered_domain(name))
                        })
                        .into_iter()
                        .map(IpNet::from)
                        .collect(),
                };
                for n in nets {
                    per_net.entry(n).or_default().push(pr);
                }
            }
        }
        let mut entries = BTreeMap::new();
        for net in per_net.keys() {
            let mut rules: Vec<Option<PortRule>> = per_net
                .iter()
                .filter(|(q, _)| q.contains(net))
                .flat_map(|(_, r)| r.iter().copied())
                .collect();
            rules.sort();
            rules.dedup();
            let mut e = AllowEntry::default();
            if rules.iter().any(Option::is_none) || rules.len() > ALLOW_PORTS {
                if rules.len() > ALLOW_PORTS && !rules.iter().any(Option::is_none) {
                    self.widened += 1;
                }
                e.any = 1;
            } else {
                for (i, r) in rules.iter().flatten().enumerate() {
                    e.rules[i] = *r;
                }
                e.count = rules.len() as u8;
            }
            entries.insert(*net, e);
        }
        let rules = all.iter().map(|(_, r)| r.to_string()).collect();
        let declared = all
            .iter()
            .filter(|(s, _)| *s != PolicySource::Learned)
            .map(|(_, r)| r.to_string())
            .collect();
        let out = DeviceRules {
            group,
            mode,
            entries,
            source,
            rules,
            policies,
            declared,
        };
        self.compiled.insert(d.mac, out);
        &self.compiled[&d.mac]
    }

    /// An engine with nothing in it (a stand-in while one is replaced).
    pub fn placeholder() -> Self {
        Self {
            policies: Vec::new(),
            device_policy: BTreeMap::new(),
            mud_by_url: BTreeMap::new(),
            local: Vec::new(),
            mode: Mode::Learn,
            declared_default: Mode::Monitor,
            suspicious: suspicious::Suspicious::default(),
            learn_for_ns: 0,
            learn_from_ns: 0,
            learn_until: BTreeMap::new(),
            windows_changed: BTreeSet::new(),
            now_ns: 0,
            registered_domains: false,
            learned: Learned::default(),
            resolved: Resolved::default(),
            groups: BTreeMap::new(),
            compiled: BTreeMap::new(),
            widened: 0,
            state_modes: BTreeMap::new(),
            device_states: BTreeMap::new(),
        }
    }

    /// Devices compiled so far.
    pub fn compiled_macs(&self) -> impl Iterator<Item = MacAddr> + '_ {
        self.compiled.keys().copied()
    }

    /// A device's compiled policy.
    pub fn rules(&self, mac: &MacAddr) -> Option<&DeviceRules> {
        self.compiled.get(mac)
    }

    /// The verdict for a flow, as the kernel takes it, on the current state.
    pub fn evaluate(&self, mac: &MacAddr, addr: IpAddr, port: u16, proto: u8) -> Verdict {
        let Some(d) = self.compiled.get(mac) else {
            return Verdict::NoPolicy;
        };
        let (listed, port_allowed) = d.lookup(addr, port, proto);
        Verdict::decide(kernel_mode(d.mode), listed, port_allowed)
    }

    /// The verdict before enforcement (unexpected or new port), and whether the device is
    /// enforced.
    pub fn evaluate_detail(
        &self,
        mac: &MacAddr,
        addr: IpAddr,
        port: u16,
        proto: u8,
    ) -> (Verdict, bool) {
        let Some(d) = self.compiled.get(mac) else {
            return (Verdict::NoPolicy, false);
        };
        let (listed, port_allowed) = d.lookup(addr, port, proto);
        let enforced = d.mode == Mode::Enforce;
        let m = if enforced {
            mode::MONITOR
        } else {
            kernel_mode(d.mode)
        };
        (Verdict::decide(m, listed, port_allowed), enforced)
    }

    /// Whether an address is local (always allowed, so never worth learning).
    pub fn is_local(&self, addr: IpAddr) -> bool {
        self.local.iter().any(|n| n.contains(&addr))
    }
}

/// A policy mode as the kernel's device-policy map stores it.
fn kernel_mode(m: Mode) -> u8 {
    match m {
        Mode::Learn => mode::LEARN,
        Mode::Monitor => mode::MONITOR,
        Mode::Enforce => mode::ENFORCE,
    }
}

fn port_rule(r: &AllowRule) -> Option<PortRule> {
    if r.port.is_none() && r.proto.is_none() {
        return None;
    }
    Some(PortRule {
        port: r.port.unwrap_or(0),
        proto: r.proto.unwrap_or(0),
        _pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::device::Phase;

    fn engine(toml: &str) -> PolicyEngine {
        let c = Config::parse(toml, "test.toml").unwrap();
        PolicyEngine::new(&c, vec!["198.51.100.0/24".parse().unwrap()], 0, None).0
    }

    const CAM: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn declared_policy_by_category_with_ports() {
        let mut e = engine(
            "[baseline]\nmode = \"monitor\"\n[[policy]]\nname = \"cams\"\ncategories = [\"camera\"]\nallow = [\"203.0.113.0/24:443/tcp\", \"203.0.113.7\"]\n",
        );
        let d = DeviceFacts {
            mac: CAM,
            category: Some("camera"),
            mud_url: None,
            first_seen_ns: 0,
        };
        let r = e.compile(&d).clone();
        assert_eq!(r.source, Some(PolicySource::Declared));
        assert_eq!(r.mode, Mode::Monitor);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.9"), 443, 6),
            Verdict::Allowed
        );
        assert_eq!(e.evaluate(&CAM, ip("203.0.113.9"), 80, 6), Verdict::NewPort);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.7"), 80, 6),
            Verdict::Allowed,
            "the /32 allows any port"
        );
        assert_eq!(
            e.evaluate(&CAM, ip("192.0.2.1"), 443, 6),
            Verdict::Unexpected
        );
        assert_eq!(
            e.evaluate(&CAM, ip("198.51.100.1"), 53, 17),
            Verdict::Allowed,
            "the LAN"
        );
        assert_eq!(
            e.evaluate(&CAM, ip("224.0.0.251"), 5353, 17),
            Verdict::Allowed,
            "multicast"
        );
        assert_eq!(
            e.evaluate(&MacAddr([9; 6]), ip("192.0.2.1"), 443, 6),
            Verdict::NoPolicy
        );
    }

    #[test]
    fn a_policy_without_a_mode_takes_enforce_from_the_baseline() {
        let facts = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
            first_seen_ns: 0,
        };
        let policy = "[[policy]]\nname = \"p\"\ndevices = [\"02:00:00:00:00:0a\"]\nallow = [\"203.0.113.7\"]\n";
        for (baseline, want, outside) in [
            ("enforce", Mode::Enforce, Verdict::Blocked),
            ("monitor", Mode::Monitor, Verdict::Unexpected),
            ("learn", Mode::Monitor, Verdict::Unexpected),
        ] {
            let mut e = engine(&format!("[baseline]\nmode = \"{baseline}\"\n{policy}"));
            assert_eq!(e.compile(&facts).mode, want, "[baseline] mode = {baseline}");
            assert_eq!(
                e.evaluate(&CAM, ip("192.0.2.1"), 443, 6),
                outside,
                "{baseline}"
            );
            assert_eq!(
                e.evaluate(&CAM, ip("203.0.113.7"), 443, 6),
                Verdict::Allowed
            );
        }
    }

    #[test]
    fn covering_prefixes_fold_into_longer_ones() {
        let mut e = engine(
            "[[policy]]\nname = \"p\"\ndevices = [\"02:00:00:00:00:0a\"]\nmode = \"enforce\"\nallow = [\"203.0.113.0/24:443/tcp\", \"203.0.113.7:123/udp\"]\n",
        );
        let d = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
            first_seen_ns: 0,
        };
        let r = e.compile(&d).clone();
        let seven = r.entries[&"203.0.113.7/32".parse::<IpNet>().unwrap()];
        assert_eq!(seven.count, 2, "the /32 holds its own rule and the /24's");
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.7"), 443, 6),
            Verdict::Allowed
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.7"), 80, 6),
            Verdict::Blocked,
            "enforced"
        );
    }

    #[test]
    fn domains_allow_exactly_what_the_device_resolved() {
        let mut e = engine(
            "[[policy]]\nname = \"p\"\ndevices = [\"02:00:00:00:00:0a\"]\nallow = [\"cloud.example.com:443/tcp\", \"*.ntp.example.org:123/udp\"]\n",
        );
        let d = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
            first_seen_ns: 0,
        };
        e.compile(&d);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.10"), 443, 6),
            Verdict::Unexpected
        );
        e.resolved.on_answer(
            &dns::Answer {
                mac: CAM,
                names: vec!["cloud.example.com".into()],
                addrs: vec![ip("203.0.113.10")],
                ttl_s: 60,
            },
            0,
        );
        e.resolved.on_answer(
            &dns::Answer {
                mac: CAM,
                names: vec!["a.ntp.example.org".into()],
                addrs: vec![ip("203.0.113.20")],
                ttl_s: 60,
            },
            0,
        );
        e.compile(&d);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.10"), 443, 6),
            Verdict::Allowed
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.20"), 123, 17),
            Verdict::Allowed
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.20"), 443, 6),
            Verdict::NewPort
        );
        let other = MacAddr([2, 0, 0, 0, 0, 0xb]);
        e.compile(&DeviceFacts {
            mac: other,
            category: None,
            mud_url: None,
            first_seen_ns: 0,
        });
        assert_eq!(
            e.evaluate(&other, ip("203.0.113.10"), 443, 6),
            Verdict::Learning,
            "another device, in the default learn mode, is not given the camera's answers"
        );
    }

    #[test]
    fn an_operator_state_with_a_mode_wins_until_it_is_cleared() {
        let mut e = engine("[states]\ninvestigating = \"enforce\"\n");
        let d = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
            first_seen_ns: 0,
        };
        e.learned
            .record(CAM, learned::rule_for(ip("203.0.113.10"), 443, 6, None));
        e.compile(&d);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.99"), 443, 6),
            Verdict::Learning
        );
        // A state the configuration gives no mode changes nothing.
        let authorised = BTreeMap::from([(CAM, "authorised".to_string())]);
        assert_eq!(e.set_device_states(authorised), vec![CAM]);
        e.compile(&d);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.99"), 443, 6),
            Verdict::Learning
        );
        let investigating = BTreeMap::from([(CAM, "investigating".to_string())]);
        assert_eq!(e.set_device_states(investigating.clone()), vec![CAM]);
        assert!(e.set_device_states(investigating).is_empty(), "no change");
        e.compile(&d);
        assert_eq!(e.phase(&CAM), Some(Phase::Enforcing));
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.99"), 443, 6),
            Verdict::Blocked
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.10"), 443, 6),
            Verdict::Allowed
        );
        assert_eq!(e.set_device_states(BTreeMap::new()), vec![CAM]);
        e.compile(&d);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.99"), 443, 6),
            Verdict::Learning,
            "back to its own learning window"
        );
    }

    #[test]
    fn learning_ends_and_the_baseline_applies() {
        let mut e = engine("[baseline]\nlearn_for = \"10s\"\n");
        let d = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
            first_seen_ns: 0,
        };
        e.compile(&d);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.10"), 443, 6),
            Verdict::Learning
        );
        assert_eq!(e.phase(&CAM), Some(Phase::Learning(10_000_000_000)));
        e.learned
            .record(CAM, learned::rule_for(ip("203.0.113.10"), 443, 6, None));
        assert!(e.end_learning(9_999_999_999).is_empty());
        assert_eq!(e.end_learning(10_000_000_000), vec![CAM]);
        assert!(e.end_learning(20_000_000_000).is_empty(), "once");
        let r = e.compile(&d).clone();
        assert_eq!(r.source, Some(PolicySource::Learned));
        assert_eq!(e.phase(&CAM), Some(Phase::Monitoring));
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.10"), 443, 6),
            Verdict::Allowed
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.11"), 443, 6),
            Verdict::Unexpected
        );
    }

    #[test]
    fn a_device_first_seen_later_learns_for_its_own_window() {
        let mut e = engine("[baseline]\nlearn_for = \"10s\"\n");
        let early = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
            first_seen_ns: 0,
        };
        let late_mac = MacAddr([2, 0, 0, 0, 0, 0xb]);
        let late = DeviceFacts {
            mac: late_mac,
            first_seen_ns: 86_400_000_000_000,
            ..early
        };
        e.compile(&early);
        assert_eq!(e.end_learning(86_400_000_000_000), vec![CAM]);
        e.compile(&early);
        e.compile(&late);
        assert_eq!(e.phase(&CAM), Some(Phase::Monitoring));
        assert_eq!(
            e.phase(&late_mac),
            Some(Phase::Learning(86_410_000_000_000)),
            "a device added on day two learns from its own first sight"
        );
        assert_eq!(
            e.evaluate(&late_mac, ip("203.0.113.10"), 443, 6),
            Verdict::Learning
        );
        assert_eq!(e.mode_now(), Mode::Learn);
        assert_eq!(e.learning(), (1, Some(86_410_000_000_000)));
        assert_eq!(e.end_learning(86_410_000_000_000), vec![late_mac]);
        e.compile(&late);
        assert_eq!(e.mode_now(), Mode::Monitor);
        // A device first seen in an earlier boot (negative kernel time) whose window is
        // over stays over.
        let old_mac = MacAddr([2, 0, 0, 0, 0, 0xc]);
        e.compile(&DeviceFacts {
            mac: old_mac,
            first_seen_ns: -100_000_000_000,
            ..early
        });
        assert_eq!(e.phase(&old_mac), Some(Phase::Monitoring));
    }

    #[test]
    fn a_policy_in_learn_mode_has_its_own_window() {
        let mut e = engine(
            "[baseline]\nmode = \"monitor\"\n[[policy]]\nname = \"cams\"\ncategories = [\"camera\"]\nmode = \"learn\"\nlearn_for = \"2s\"\n",
        );
        let d = DeviceFacts {
            mac: CAM,
            category: Some("camera"),
            mud_url: None,
            first_seen_ns: 1_000_000_000,
        };
        e.compile(&d);
        assert_eq!(e.phase(&CAM), Some(Phase::Learning(3_000_000_000)));
        assert_eq!(e.end_learning(3_000_000_000), vec![CAM]);
        e.compile(&d);
        assert_eq!(e.phase(&CAM), Some(Phase::Monitoring));
        let bad = Config::parse(
            "[[policy]]\nname = \"p\"\nmode = \"learn\"\nlearn_for = \"0s\"\n",
            "t.toml",
        );
        assert!(bad.is_err(), "a zero window is refused");
    }

    #[test]
    fn registered_domains_widen_name_rules_only_when_asked() {
        let policy = "[[policy]]\nname = \"p\"\ndevices = [\"02:00:00:00:00:0a\"]\nmode = \"monitor\"\nallow = [\"api.vendor.co.uk:443/tcp\"]\n";
        let d = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
            first_seen_ns: 0,
        };
        let answer = |e: &mut PolicyEngine, name: &str, a: &str| {
            e.resolved.on_answer(
                &dns::Answer {
                    mac: CAM,
                    names: vec![name.into()],
                    addrs: vec![ip(a)],
                    ttl_s: 60,
                },
                0,
            );
        };
        for (wide, want) in [
            ("", Verdict::Unexpected),
            ("registered_domains = true\n", Verdict::Allowed),
        ] {
            let mut e = engine(&format!("{policy}{wide}"));
            answer(&mut e, "eu.cdn.vendor.co.uk", "203.0.113.30");
            answer(&mut e, "vendor.co.uk.attacker.example", "203.0.113.31");
            answer(&mut e, "other.co.uk", "203.0.113.32");
            e.compile(&d);
            assert_eq!(
                e.evaluate(&CAM, ip("203.0.113.30"), 443, 6),
                want,
                "{wide:?}"
            );
            for other in ["203.0.113.31", "203.0.113.32"] {
                assert_eq!(
                    e.evaluate(&CAM, ip(other), 443, 6),
                    Verdict::Unexpected,
                    "another registered domain: {other}"
                );
            }
        }
    }
}
