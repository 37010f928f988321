//! Learning windows: each device in learn mode learns for `learn_for` from its own first
//! sight (a device added on day two learns on day two), then is monitored.

use sensor_common::MacAddr;

use super::{DeviceFacts, PolicyEngine};
use crate::{config::Mode, model::device::Phase};

/// A device's learning window.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    /// Kernel time it began (negative before this boot).
    pub(super) start: i64,
    /// Kernel time it ends.
    pub(super) until: u64,
    /// Whether its end was reported.
    pub(super) reported: bool,
}

impl PolicyEngine {
    /// Kernel time moves on (a flow's first packet, a tick).
    pub fn advance(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// The devices whose learning window ended by kernel time `now`: each once, when it
    /// happens. They must be compiled again to leave learn mode.
    pub fn end_learning(&mut self, now_ns: u64) -> Vec<MacAddr> {
        self.advance(now_ns);
        let now = self.now_ns;
        self.learn_until
            .iter_mut()
            .filter(|(_, w)| w.until <= now && !w.reported)
            .map(|(mac, w)| {
                w.reported = true;
                *mac
            })
            .collect()
    }

    /// The learning windows that changed since the last call: (device, its end in kernel
    /// ns, or `None` when it has none any more). Only those: under a MAC flood, every
    /// window at every batch was quadratic work.
    pub fn take_windows(&mut self) -> Vec<(MacAddr, Option<u64>)> {
        std::mem::take(&mut self.windows_changed)
            .into_iter()
            .map(|m| (m, self.learn_until.get(&m).map(|w| w.until)))
            .collect()
    }

    /// A device's phase now (its mode as last compiled, and whether its window is over).
    pub fn phase(&self, mac: &MacAddr) -> Option<Phase> {
        let r = self.compiled.get(mac)?;
        Some(match r.mode {
            Mode::Learn => match self.learn_until.get(mac) {
                Some(w) if w.until > self.now_ns => Phase::Learning(w.until),
                _ => Phase::Monitoring,
            },
            Mode::Monitor => Phase::Monitoring,
            Mode::Enforce => Phase::Enforcing,
        })
    }

    /// Devices learning now, and the latest end of their windows.
    pub fn learning(&self) -> (usize, Option<u64>) {
        let now = self.now_ns;
        let open = self.learn_until.values().filter(|w| w.until > now);
        open.fold((0, None), |(n, last): (usize, Option<u64>), w| {
            (n + 1, Some(last.map_or(w.until, |l| l.max(w.until))))
        })
    }

    /// The mode in `stats`: learn while a device learns (or none was seen yet in learn
    /// mode), else what devices without a declared policy are in.
    pub fn mode_now(&self) -> Mode {
        match self.mode {
            Mode::Learn if self.learning().0 > 0 || self.learn_until.is_empty() => Mode::Learn,
            Mode::Learn => Mode::Monitor,
            m => m,
        }
    }

    /// The mode a device is in now: learn mode lasts its window from its first sight.
    pub(super) fn mode_for(
        &mut self,
        d: &DeviceFacts<'_>,
        mode: Mode,
        learn_for_ns: Option<u64>,
    ) -> Mode {
        if mode != Mode::Learn {
            if self.learn_until.remove(&d.mac).is_some() {
                self.windows_changed.insert(d.mac);
            }
            return mode;
        }
        let window = learn_for_ns.unwrap_or(self.learn_for_ns);
        // A device back after the kernel evicted it (a new first sight) keeps its window.
        let start = d.first_seen_ns.max(self.learn_from_ns);
        let start = self
            .learn_until
            .get(&d.mac)
            .map_or(start, |w| w.start.min(start));
        // A window that ended before this boot ends at 0: over.
        let until = u64::try_from(start.saturating_add_unsigned(window)).unwrap_or(0);
        match self.learn_until.get_mut(&d.mac) {
            None => {
                self.learn_until.insert(
                    d.mac,
                    Window {
                        start,
                        until,
                        reported: false,
                    },
                );
                self.windows_changed.insert(d.mac);
            }
            Some(w) if w.until != until => {
                // Another window (a policy's learn_for): its end is reported again.
                *w = Window {
                    start,
                    until,
                    reported: until <= self.now_ns && w.reported,
                };
                self.windows_changed.insert(d.mac);
            }
            Some(_) => {}
        }
        if self.now_ns < until {
            Mode::Learn
        } else {
            Mode::Monitor
        }
    }
}
