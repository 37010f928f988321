//! Destination policy: which destinations each device may reach, from three sources
//! (declared `[[policy]]`, RFC 8520 MUD files, the learned baseline), compiled per device
//! into kernel allow-list entries, and the same verdict taken in userspace to confirm an
//! alert with the freshest DNS state.

pub mod allow;
pub mod dns;
pub mod learned;
pub mod mud;
pub mod suspicious;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;
use sensor_common::policy::{ALLOW_PORTS, AllowEntry, DevicePolicy, PortRule, mode, verdict};

use crate::config::{Config, Mode};
use allow::{AllowRule, Dest};
use dns::Resolved;
use learned::Learned;
use mud::{MudError, MudPolicy};

/// Where a device's rules came from (`iot.rule.source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// A `[[policy]]` in the configuration.
    Declared,
    /// A MUD file.
    Mud,
    /// The learned baseline.
    Learned,
}

impl Source {
    /// The name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Declared => "declared",
            Source::Mud => "mud",
            Source::Learned => "learned",
        }
    }
}

struct DeclaredPolicy {
    name: String,
    categories: Vec<String>,
    devices: BTreeSet<[u8; 6]>,
    rules: Vec<AllowRule>,
    mud: Option<MudPolicy>,
    mode: Mode,
}

/// What the engine needs to know of a device.
#[derive(Clone, Copy, Debug)]
pub struct DeviceFacts<'a> {
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its category in effect (declared, else observed), if known.
    pub category: Option<&'a str>,
    /// The MUD URL it announced, if any.
    pub mud_url: Option<&'a str>,
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
    pub source: Option<Source>,
    /// Its rules as written, for the alert's `expected`.
    pub rules: Vec<String>,
    /// The policies they came from: `[[policy]]` names, `mud:<url>`, `learned`.
    pub policies: Vec<String>,
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
pub struct Engine {
    policies: Vec<DeclaredPolicy>,
    device_policy: BTreeMap<[u8; 6], String>,
    mud_by_url: BTreeMap<String, MudPolicy>,
    local: Vec<IpNet>,
    /// The mode of devices without a declared policy, now.
    pub mode: Mode,
    /// The mode of a declared or MUD policy that names none: enforce when `[baseline]`
    /// says enforce, else monitor (a declared policy is meant to be checked, not learned).
    declared_default: Mode,
    /// Services no device may learn (alerted as `suspicious_service` instead).
    pub suspicious: suspicious::Suspicious,
    /// Kernel time at which learn turns into monitor (learn mode only).
    pub learn_until_ns: Option<u64>,
    /// The learned baseline.
    pub learned: Learned,
    /// What each device was told by DNS.
    pub resolved: Resolved,
    groups: BTreeMap<[u8; 6], u32>,
    compiled: BTreeMap<[u8; 6], DeviceRules>,
    /// Port rules past [`ALLOW_PORTS`] on one prefix, widened to any port.
    pub widened: u64,
}

/// Multicast and broadcast: local by nature.
fn always_local() -> Vec<IpNet> {
    ["224.0.0.0/4", "255.255.255.255/32", "ff00::/8", "fe80::/10"]
        .iter()
        .map(|s| s.parse().expect("valid"))
        .collect()
}

/// The private ranges: what `local` means when there is no interface to ask (replay).
pub fn private_ranges() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fc00::/7",
    ]
    .iter()
    .map(|s| s.parse().expect("valid"))
    .collect()
}

/// Problems met building the engine (the sensor starts anyway; each is reported).
#[derive(Debug, Default)]
pub struct LoadReport {
    /// MUD files that did not import.
    pub mud_errors: Vec<MudError>,
    /// MUD files imported from `[mud] dir`.
    pub mud_files: usize,
}

impl Engine {
    /// From the configuration; `local` are the LAN's prefixes (config `[baseline] local`
    /// wins over them); `now_ns` is kernel time now; `learn_started_ns` (kernel time) when
    /// learning began, if an earlier run began it.
    pub fn new(
        config: &Config,
        local: Vec<IpNet>,
        now_ns: u64,
        learn_started_ns: Option<u64>,
    ) -> (Self, LoadReport) {
        let mut report = LoadReport::default();
        let base = config.base_dir.clone().unwrap_or_default();
        let mut policies = Vec::new();
        for p in &config.policies {
            let mud = p.mud.as_ref().and_then(|m| {
                let path = base.join(m.get_ref());
                match mud::load(&path) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        report.mud_errors.push(e);
                        None
                    }
                }
            });
            policies.push(DeclaredPolicy {
                name: p.name.get_ref().clone(),
                categories: p.categories.iter().map(|c| c.get_ref().clone()).collect(),
                devices: p
                    .devices
                    .iter()
                    .filter_map(|m| crate::model::addr::parse_mac(m.get_ref()))
                    .collect(),
                rules: p
                    .allow
                    .iter()
                    .filter_map(|a| a.get_ref().parse().ok())
                    .collect(),
                mud,
                mode: p.mode.unwrap_or(declared_default(config.baseline.mode)),
            });
        }
        let device_policy = config
            .devices
            .iter()
            .filter_map(|d| {
                Some((
                    crate::model::addr::parse_mac(d.mac.get_ref())?,
                    d.policy.as_ref()?.get_ref().clone(),
                ))
            })
            .collect();
        let mut mud_by_url = BTreeMap::new();
        if let Some(dir) = &config.mud.dir {
            let files = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_else(|e| {
                    report.mud_errors.push(MudError {
                        file: dir.display().to_string(),
                        path: "$".into(),
                        why: e.to_string(),
                    });
                    Vec::new()
                });
            for f in files.iter().filter(|f| f.is_file()) {
                match mud::load(f) {
                    Ok(m) => {
                        report.mud_files += 1;
                        mud_by_url.insert(m.url.clone(), m);
                    }
                    Err(e) => report.mud_errors.push(e),
                }
            }
        }
        let configured: Vec<IpNet> = config
            .baseline
            .local
            .iter()
            .filter_map(|l| {
                let s = l.get_ref();
                s.parse::<IpNet>()
                    .ok()
                    .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        let mut local = if configured.is_empty() {
            local
        } else {
            configured
        };
        local.extend(always_local());
        let mode = config.baseline.mode;
        let learn_until_ns = (mode == Mode::Learn).then(|| {
            learn_started_ns.unwrap_or(now_ns)
                + config.baseline.learn_for.get_ref().as_nanos() as u64
        });
        let engine = Self {
            policies,
            device_policy,
            mud_by_url,
            local,
            mode,
            declared_default: declared_default(mode),
            suspicious: suspicious::Suspicious::new(
                config.baseline.suspicious_builtin,
                &config
                    .baseline
                    .suspicious_ports
                    .iter()
                    .map(|s| s.get_ref().clone())
                    .collect::<Vec<_>>(),
            ),
            learn_until_ns,
            learned: Learned::default(),
            resolved: Resolved::new(config.baseline.dns_grace.get_ref().as_nanos() as u64),
            groups: BTreeMap::new(),
            compiled: BTreeMap::new(),
            widened: 0,
        };
        (engine, report)
    }

    /// Takes over what a running engine knows that configuration does not: the learned
    /// baseline, DNS answers, kernel group numbers, and that learning already ended.
    pub fn adopt(&mut self, old: Engine) {
        self.learned = old.learned;
        self.resolved = old.resolved;
        self.groups = old.groups;
        self.widened = old.widened;
        if self.mode == Mode::Learn {
            match old.mode {
                Mode::Learn => self.learn_until_ns = old.learn_until_ns,
                _ => {
                    self.mode = Mode::Monitor;
                    self.learn_until_ns = None;
                }
            }
        }
    }

    /// Whether learning is over at kernel time `now` (and the mode switched to monitor):
    /// true once, when it happens.
    pub fn end_learning(&mut self, now_ns: u64) -> bool {
        match self.learn_until_ns {
            Some(t) if now_ns >= t && self.mode == Mode::Learn => {
                self.mode = Mode::Monitor;
                self.learn_until_ns = None;
                true
            }
            _ => false,
        }
    }

    /// The declared and MUD rules that apply to a device, and the mode they ask for.
    fn declared(
        &self,
        d: &DeviceFacts<'_>,
    ) -> (Vec<(Source, &AllowRule)>, Option<Mode>, Vec<String>) {
        let mut names = Vec::new();
        let named = self.device_policy.get(&d.mac);
        let mut rules = Vec::new();
        let mut mode: Option<Mode> = None;
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
            mode = strictest(mode, p.mode);
            names.push(p.name.clone());
            rules.extend(p.rules.iter().map(|r| (Source::Declared, r)));
            if let Some(m) = &p.mud {
                rules.extend(m.rules.iter().map(|r| (Source::Mud, r)));
            }
        }
        if let Some(m) = d.mud_url.and_then(|u| self.mud_by_url.get(u)) {
            mode = mode.or(Some(self.declared_default));
            names.push(format!("mud:{}", m.url));
            rules.extend(m.rules.iter().map(|r| (Source::Mud, r)));
        }
        (rules, mode, names)
    }

    /// Compiles one device's policy (and keeps it for [`Engine::evaluate`]).
    pub fn compile(&mut self, d: &DeviceFacts<'_>) -> &DeviceRules {
        let next = self.groups.len() as u32 + 1;
        let group = *self.groups.entry(d.mac).or_insert(next);
        let (declared, declared_mode, mut policies) = self.declared(d);
        if self.learned.rules(&d.mac).next().is_some() {
            policies.push("learned".into());
        }
        let mode = declared_mode.unwrap_or(self.mode);
        let mut all: Vec<(Source, AllowRule)> =
            declared.into_iter().map(|(s, r)| (s, r.clone())).collect();
        all.extend(
            self.learned
                .rules(&d.mac)
                .map(|r| (Source::Learned, r.clone())),
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
                        .addrs_for(&d.mac, |name| dest.matches_name(name))
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
        let out = DeviceRules {
            group,
            mode,
            entries,
            source,
            rules,
            policies,
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
            learn_until_ns: None,
            learned: Learned::default(),
            resolved: Resolved::default(),
            groups: BTreeMap::new(),
            compiled: BTreeMap::new(),
            widened: 0,
        }
    }

    /// Devices compiled so far.
    pub fn compiled_macs(&self) -> impl Iterator<Item = [u8; 6]> + '_ {
        self.compiled.keys().copied()
    }

    /// A device's compiled policy.
    pub fn rules(&self, mac: &[u8; 6]) -> Option<&DeviceRules> {
        self.compiled.get(mac)
    }

    /// The verdict for a flow, as the kernel takes it, on the current state.
    pub fn evaluate(&self, mac: &[u8; 6], addr: IpAddr, port: u16, proto: u8) -> u8 {
        let Some(d) = self.compiled.get(mac) else {
            return verdict::NO_POLICY;
        };
        let (listed, port_allowed) = d.lookup(addr, port, proto);
        verdict::decide(kernel_mode(d.mode), listed, port_allowed)
    }

    /// The verdict before enforcement (unexpected or new port), and whether the device is
    /// enforced.
    pub fn evaluate_detail(&self, mac: &[u8; 6], addr: IpAddr, port: u16, proto: u8) -> (u8, bool) {
        let Some(d) = self.compiled.get(mac) else {
            return (verdict::NO_POLICY, false);
        };
        let (listed, port_allowed) = d.lookup(addr, port, proto);
        let enforced = d.mode == Mode::Enforce;
        let m = if enforced {
            mode::MONITOR
        } else {
            kernel_mode(d.mode)
        };
        (verdict::decide(m, listed, port_allowed), enforced)
    }

    /// Whether an address is local (always allowed, so never worth learning).
    pub fn is_local(&self, addr: IpAddr) -> bool {
        self.local.iter().any(|n| n.contains(&addr))
    }
}

/// The mode a declared policy without its own `mode` takes from `[baseline] mode`: a user
/// who wrote enforce gets enforce; learn and monitor give monitor.
fn declared_default(baseline: Mode) -> Mode {
    match baseline {
        Mode::Enforce => Mode::Enforce,
        Mode::Learn | Mode::Monitor => Mode::Monitor,
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

/// The interface's own prefixes (its addresses with their masks).
pub fn interface_prefixes(iface: &str) -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below; we only read it in between.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: ifa_name is a NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != iface.as_bytes()
            || ifa.ifa_addr.is_null()
            || ifa.ifa_netmask.is_null()
        {
            continue;
        }
        // SAFETY: the family says which sockaddr these are.
        unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                    let addr = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    let bits = u32::from_be(m.sin_addr.s_addr).count_ones() as u8;
                    if let Ok(n) = ipnet::Ipv4Net::new(addr, bits) {
                        out.push(IpNet::V4(n.trunc()));
                    }
                }
                libc::AF_INET6 => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                    let addr = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    let bits: u32 = m.sin6_addr.s6_addr.iter().map(|b| b.count_ones()).sum();
                    if let Ok(n) = ipnet::Ipv6Net::new(addr, bits as u8) {
                        out.push(IpNet::V6(n.trunc()));
                    }
                }
                _ => {}
            }
        }
    }
    // SAFETY: the list getifaddrs allocated.
    unsafe { libc::freeifaddrs(ifap) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(toml: &str) -> Engine {
        let c = Config::parse(toml, "test.toml").unwrap();
        Engine::new(&c, vec!["198.51.100.0/24".parse().unwrap()], 0, None).0
    }

    const CAM: [u8; 6] = [2, 0, 0, 0, 0, 0xa];

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
        };
        let r = e.compile(&d).clone();
        assert_eq!(r.source, Some(Source::Declared));
        assert_eq!(r.mode, Mode::Monitor);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.9"), 443, 6),
            verdict::ALLOWED
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.9"), 80, 6),
            verdict::NEW_PORT
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.7"), 80, 6),
            verdict::ALLOWED,
            "the /32 allows any port"
        );
        assert_eq!(
            e.evaluate(&CAM, ip("192.0.2.1"), 443, 6),
            verdict::UNEXPECTED
        );
        assert_eq!(
            e.evaluate(&CAM, ip("198.51.100.1"), 53, 17),
            verdict::ALLOWED,
            "the LAN"
        );
        assert_eq!(
            e.evaluate(&CAM, ip("224.0.0.251"), 5353, 17),
            verdict::ALLOWED,
            "multicast"
        );
        assert_eq!(
            e.evaluate(&[9; 6], ip("192.0.2.1"), 443, 6),
            verdict::NO_POLICY
        );
    }

    #[test]
    fn a_policy_without_a_mode_takes_enforce_from_the_baseline() {
        let facts = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
        };
        let policy = "[[policy]]\nname = \"p\"\ndevices = [\"02:00:00:00:00:0a\"]\nallow = [\"203.0.113.7\"]\n";
        for (baseline, want, outside) in [
            ("enforce", Mode::Enforce, verdict::BLOCKED),
            ("monitor", Mode::Monitor, verdict::UNEXPECTED),
            ("learn", Mode::Monitor, verdict::UNEXPECTED),
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
                verdict::ALLOWED
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
        };
        let r = e.compile(&d).clone();
        let seven = r.entries[&"203.0.113.7/32".parse::<IpNet>().unwrap()];
        assert_eq!(seven.count, 2, "the /32 holds its own rule and the /24's");
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.7"), 443, 6),
            verdict::ALLOWED
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.7"), 80, 6),
            verdict::BLOCKED,
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
        };
        e.compile(&d);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.10"), 443, 6),
            verdict::UNEXPECTED
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
            verdict::ALLOWED
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.20"), 123, 17),
            verdict::ALLOWED
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.20"), 443, 6),
            verdict::NEW_PORT
        );
        let other = [2, 0, 0, 0, 0, 0xb];
        e.compile(&DeviceFacts {
            mac: other,
            category: None,
            mud_url: None,
        });
        assert_eq!(
            e.evaluate(&other, ip("203.0.113.10"), 443, 6),
            verdict::LEARNING,
            "another device, in the default learn mode, is not given the camera's answers"
        );
    }

    #[test]
    fn learning_ends_and_the_baseline_applies() {
        let mut e = engine("[baseline]\nlearn_for = \"10s\"\n");
        let d = DeviceFacts {
            mac: CAM,
            category: None,
            mud_url: None,
        };
        e.compile(&d);
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.10"), 443, 6),
            verdict::LEARNING
        );
        e.learned
            .record(CAM, learned::rule_for(ip("203.0.113.10"), 443, 6, None));
        assert!(!e.end_learning(9_999_999_999));
        assert!(e.end_learning(10_000_000_000));
        assert!(!e.end_learning(20_000_000_000), "once");
        let r = e.compile(&d).clone();
        assert_eq!(r.source, Some(Source::Learned));
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.10"), 443, 6),
            verdict::ALLOWED
        );
        assert_eq!(
            e.evaluate(&CAM, ip("203.0.113.11"), 443, 6),
            verdict::UNEXPECTED
        );
    }
}
