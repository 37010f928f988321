//! Fan-out: how many distinct destinations a device reached, and how many ports of one
//! destination, within a sliding window. A telnet sweep, a port scan, an ARP sweep of the
//! LAN all show up here; a device talking to its few usual endpoints does not.

use std::collections::HashMap;

use sensor_common::{FlowKey, MacAddr};
use serde_json::json;

use super::{Detector, Finding, NewFlow};
use crate::{config::AnomalyConfig, judge::rules, model::addr, model::flow::Origin};

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::IpAddr,
};

/// What a window holds for one device.
#[derive(Debug, Default)]
pub struct Fanout {
    seen: VecDeque<(u64, IpAddr, u16)>,
}

/// What crossed a threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Many destinations: how many, and the ports most hit (port, destinations).
    Destinations {
        /// Distinct destinations in the window.
        count: usize,
        /// Ports by how many destinations were tried on them, most first (at most 5).
        top_ports: Vec<(u16, usize)>,
    },
    /// Many ports of one destination.
    Ports {
        /// The destination.
        dest: IpAddr,
        /// Distinct ports in the window.
        count: usize,
    },
}

/// Entries kept per device (a flood beyond this is still a sweep).
const MAX_SEEN: usize = 4096;

impl Fanout {
    /// A new destination `(dest, port)` at `now`; returns a sweep when one crosses its
    /// threshold (`dests` destinations or `ports` ports of one destination in `window`).
    pub fn on_contact(
        &mut self,
        now: u64,
        window: u64,
        dest: IpAddr,
        port: u16,
        dests: usize,
        ports: usize,
    ) -> Option<Sweep> {
        while self
            .seen
            .front()
            .is_some_and(|(t, _, _)| now.saturating_sub(*t) > window)
        {
            self.seen.pop_front();
        }
        if self.seen.len() >= MAX_SEEN {
            self.seen.pop_front();
        }
        self.seen.push_back((now, dest, port));
        let distinct: BTreeSet<IpAddr> = self.seen.iter().map(|(_, d, _)| *d).collect();
        if distinct.len() >= dests {
            let mut by_port: BTreeMap<u16, BTreeSet<IpAddr>> = BTreeMap::new();
            for (_, d, p) in &self.seen {
                by_port.entry(*p).or_default().insert(*d);
            }
            let mut top: Vec<(u16, usize)> =
                by_port.into_iter().map(|(p, d)| (p, d.len())).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(5);
            self.seen.clear();
            return Some(Sweep::Destinations {
                count: distinct.len(),
                top_ports: top,
            });
        }
        let on_dest: BTreeSet<u16> = self
            .seen
            .iter()
            .filter(|(_, d, _)| *d == dest)
            .map(|(_, _, p)| *p)
            .collect();
        if on_dest.len() >= ports {
            self.seen.retain(|(_, d, _)| *d != dest);
            return Some(Sweep::Ports {
                dest,
                count: on_dest.len(),
            });
        }
        None
    }
}

/// The scan detector: `scan_fanout` when a device reaches many destinations, or many
/// ports of one, in flows and ARP requests alike.
pub struct Scan {
    window_ns: u64,
    dests: usize,
    ports: usize,
    devices: HashMap<MacAddr, Fanout>,
}

/// The detector, with `[anomaly]`'s window and thresholds.
pub fn detector(c: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(Scan {
        window_ns: c.window.get_ref().as_nanos() as u64,
        dests: c.fanout_destinations.max(2),
        ports: c.fanout_ports.max(2),
        devices: HashMap::new(),
    })
}

impl Scan {
    fn finding(&self, mac: MacAddr, flow: Option<(FlowKey, Origin)>, s: Sweep) -> Finding {
        let window_s = (self.window_ns / 1_000_000_000).to_string();
        let metadata = match s {
            Sweep::Destinations { count, top_ports } => json!({
                "kind": ["destinations"],
                "destinations": [count.to_string()],
                "window_s": [window_s],
                "top_ports": top_ports.iter().map(|(p, n)| format!("{p} ({n} destinations)")).collect::<Vec<_>>(),
            }),
            Sweep::Ports { dest, count } => json!({
                "kind": ["ports"],
                "destination": [dest.to_string()],
                "ports": [count.to_string()],
                "window_s": [window_s],
            }),
        };
        Finding {
            rule: &rules::SCAN_FANOUT,
            mac,
            flow,
            metadata,
        }
    }
}

impl Detector for Scan {
    fn on_new_flow(&mut self, f: &NewFlow) -> Vec<Finding> {
        let (window, dests, ports) = (self.window_ns, self.dests, self.ports);
        let sweep = self.devices.entry(f.key.mac).or_default().on_contact(
            f.now,
            window,
            addr::ip(f.key.addr),
            f.key.port,
            dests,
            ports,
        );
        sweep
            .map(|s| self.finding(f.key.mac, Some((f.key, f.origin)), s))
            .into_iter()
            .collect()
    }

    fn on_arp_probe(&mut self, now: u64, mac: MacAddr, target: IpAddr) -> Vec<Finding> {
        let (window, dests) = (self.window_ns, self.dests);
        let sweep = self.devices.entry(mac).or_default().on_contact(
            now,
            window,
            target,
            0,
            dests,
            usize::MAX,
        );
        sweep
            .map(|s| self.finding(mac, None, s))
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn ip(i: u32) -> IpAddr {
        IpAddr::from((u32::from(std::net::Ipv4Addr::new(203, 0, 113, 0)) + i).to_be_bytes())
    }

    #[test]
    fn a_telnet_sweep_crosses_at_the_threshold_and_names_its_ports() {
        let mut f = Fanout::default();
        for i in 0..31 {
            let port = if i % 2 == 0 { 23 } else { 2323 };
            assert_eq!(
                f.on_contact(i as u64 * 10_000_000, 10 * S, ip(i), port, 32, 32),
                None,
                "{i}: just under"
            );
        }
        match f.on_contact(400_000_000, 10 * S, ip(31), 2323, 32, 32) {
            Some(Sweep::Destinations { count, top_ports }) => {
                assert_eq!(count, 32);
                assert_eq!(top_ports, [(23, 16), (2323, 16)]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_window_forgets_old_contacts() {
        let mut f = Fanout::default();
        for i in 0..40 {
            // One new destination every second: never 32 within 10 s.
            assert_eq!(f.on_contact(i as u64 * S, 10 * S, ip(i), 443, 32, 32), None);
        }
    }

    #[test]
    fn usual_endpoints_never_fan_out() {
        let mut f = Fanout::default();
        for i in 0..10_000u64 {
            assert_eq!(
                f.on_contact(i * 1_000_000, 10 * S, ip((i % 3) as u32), 443, 32, 32),
                None
            );
        }
    }

    #[test]
    fn a_port_scan_of_one_host() {
        let mut f = Fanout::default();
        for p in 1..32u16 {
            assert_eq!(f.on_contact(u64::from(p), 10 * S, ip(1), p, 32, 32), None);
        }
        assert_eq!(
            f.on_contact(40, 10 * S, ip(1), 8080, 32, 32),
            Some(Sweep::Ports {
                dest: ip(1),
                count: 32
            })
        );
    }
}
