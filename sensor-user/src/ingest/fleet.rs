//! `kettlewatch console --nats URL`: one place to look at a fleet. Every gateway's
//! devices (the bucket) and the alerts they published (the stream) are copied into a
//! private state store every few seconds, and the console serves its pages over that
//! copy, read-only: an operator acts on a gateway's own console or command line, where
//! the sensor that would take the action runs.

use std::{path::Path, time::Duration};

use async_nats::jetstream;

use crate::{
    config::NatsConfig,
    emit::nats::fleet,
    store::{
        alerts::{Retention, StoredAlert},
        state::{Store, StoredDevice},
    },
};

/// How often the copy is brought up to date.
pub const EVERY: Duration = Duration::from_secs(5);

/// The copy of a fleet in a state store, and where the stream was read up to.
pub struct Mirror {
    js: jetstream::Context,
    cfg: NatsConfig,
    store: Store,
    keep: Retention,
    after: u64,
}

impl Mirror {
    /// Connects to the broker and opens (creates) the store in `dir`.
    pub async fn open(cfg: NatsConfig, dir: &Path, keep: Retention) -> anyhow::Result<Self> {
        let js = fleet::connect(&cfg, "kettlewatch console").await?;
        Ok(Self {
            js,
            cfg,
            store: Store::open(dir)?,
            keep,
            after: 0,
        })
    }

    /// Brings the copy up to date: every device now in the bucket (each marked with its
    /// gateway; one gone from the bucket goes from here), and the alerts published since
    /// the last time. Returns (devices, alerts new this time).
    pub async fn refresh(&mut self) -> anyhow::Result<(usize, usize)> {
        let devices: Vec<StoredDevice> = fleet::devices(&self.js, &self.cfg)
            .await?
            .into_iter()
            .map(|(host, mut d)| {
                d.gateway = Some(host);
                d
            })
            .collect();
        self.store.replace_devices(&devices)?;
        let (lines, last) = fleet::alerts_after(&self.js, &self.cfg, self.after).await?;
        let alerts: Vec<StoredAlert> = lines
            .iter()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                let ts = crate::model::clock::parse_eve_timestamp(v["timestamp"].as_str()?)?;
                Some(StoredAlert::from_eve(&v, ts))
            })
            .collect();
        // Bounded by count only: the stream's own limits say how old its alerts may be,
        // and a gateway replaying an old capture publishes old times.
        let keep = Retention {
            max_age_ns: u64::MAX,
            ..self.keep
        };
        self.store.save_alerts(&alerts, keep, 0)?;
        if lines.len() != alerts.len() {
            tracing::warn!(
                skipped = lines.len() - alerts.len(),
                "alert lines in the stream that are not EVE alerts with a timestamp"
            );
        }
        self.after = last;
        Ok((devices.len(), alerts.len()))
    }

    /// Refreshes every [`EVERY`] until the runtime ends; a refresh that fails is logged
    /// and tried again (the pages show the last good copy meanwhile).
    pub async fn run(mut self) {
        loop {
            tokio::time::sleep(EVERY).await;
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "fleet copy not refreshed");
            }
        }
    }
}
