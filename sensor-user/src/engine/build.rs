//! The one place a sensor is assembled, for a live run, a replay, the tests and the
//! benchmarks alike: the classifier, the baseline resumed from the state directory, the
//! intel feeds, and the maps and sinks the driver opened. Drivers only run their loops.

use anyhow::Context as _;
use ipnet::IpNet;

use crate::{
    config::Config,
    emit::{eve::Eve, sinks::Sinks},
    engine::{
        sensor::{Sensor, Stages},
        writes::KernelWrites,
    },
    judge::{baseline, classify::Classifier, intel::stage::Intel},
    store::state::{StateError, Store},
};

/// What a driver opened before the sensor is built.
pub struct Parts {
    /// Who writes the events, where, and on which clock.
    pub eve: Eve,
    /// Where events go.
    pub sinks: Sinks,
    /// The state directory's store; none: nothing persists.
    pub store: Option<Store>,
    /// The kernel maps the judge's decisions are written to; none: no kernel program
    /// (the unit tests).
    pub kernel: Option<KernelWrites>,
    /// The LAN's prefixes: a live run's interface's, else the private ranges.
    pub local: Vec<IpNet>,
}

/// The part of a sensor that can be made before anything is attached: the classifier,
/// whose rule files can fail to load (and say where) before a program is in the kernel,
/// and whose compilation must not run while a kernel program fills the ring buffer.
pub struct Builder<'a> {
    config: &'a Config,
    classifier: Classifier,
}

impl<'a> Builder<'a> {
    /// Loads the classification rules of `config`.
    pub fn new(config: &'a Config) -> anyhow::Result<Self> {
        Ok(Self {
            config,
            classifier: crate::engine::check::classifier(config)?,
        })
    }

    /// Builds the sensor at `now_ns` (epoch; a replay's is its first frame's, so feeds are
    /// judged at the capture's time). A state directory that cannot be read is an error: a
    /// sensor that silently forgot its baseline would learn again what it was told to
    /// watch.
    pub fn build(self, mut parts: Parts, now_ns: u64) -> anyhow::Result<Sensor> {
        let config = self.config;
        let resume = match &mut parts.store {
            Some(s) => resume(s, now_ns).with_context(|| {
                format!("reading the learned baseline from {}", s.path().display())
            })?,
            None => baseline::Resume::default(),
        };
        let baseline = baseline::start(config, resume, parts.local, now_ns, &parts.eve.time);
        let intel = Intel::start(config, (now_ns / 1_000_000_000) as i64);
        let vulns = crate::judge::vulns::stage::Vulns::start(config);
        let stages = Stages {
            classifier: self.classifier,
            store: parts.store,
            baseline,
            intel,
            vulns,
            kernel: parts.kernel,
        };
        Ok(Sensor::new(parts.eve, config, stages, parts.sinks, now_ns))
    }
}

/// Where an earlier run left learning: when it began (recorded now when no run has yet)
/// and what it learned.
fn resume(store: &mut Store, now_ns: u64) -> Result<baseline::Resume, StateError> {
    const LEARN_STARTED: &str = "learn_started_ns";
    let learned = store
        .learned()?
        .into_iter()
        .map(|(mac, rule, _)| (mac, rule))
        .collect();
    let started_epoch_ns = match store.meta(LEARN_STARTED)? {
        Some(v) => Some(v as u64),
        None => {
            store.set_meta(LEARN_STARTED, now_ns as i64)?;
            None
        }
    };
    Ok(baseline::Resume {
        started_epoch_ns,
        learned,
    })
}
