//! Fan-out: how many distinct destinations a device reached, and how many ports of one
//! destination, within a sliding window. A telnet sweep, a port scan, an ARP sweep of the
//! LAN all show up here; a device talking to its few usual endpoints does not.

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
