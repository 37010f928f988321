//! `kettlewatch devices --nats URL`: every gateway's devices, read back from the bucket
//! the sensors keep their latest device profiles in.

use std::time::Duration;

use futures_util::StreamExt;

use crate::{config::NatsConfig, store::state::StoredDevice};

/// One gateway's device, as its sensor last published it.
#[derive(Debug, serde::Serialize)]
pub struct FleetDevice {
    /// The sensor's host name (as its subject token).
    pub host: String,
    /// The profile.
    #[serde(flatten)]
    pub device: StoredDevice,
}

/// Every device in the bucket, by host then MAC. A value that does not parse is an
/// error naming its key: a bucket someone else writes to is not ours to guess at.
pub fn list(cfg: &NatsConfig) -> anyhow::Result<Vec<FleetDevice>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut options = crate::emit::nats::connect_options(cfg, None, "kettlewatch devices")?;
        // A listing that cannot reach the broker says so instead of waiting for it.
        options = options.connection_timeout(Duration::from_secs(5));
        let addrs = crate::emit::nats::server_addrs(cfg)?;
        let client = tokio::time::timeout(Duration::from_secs(10), options.connect(addrs))
            .await
            .map_err(|_| anyhow::anyhow!("no NATS server answered within 10 s"))??;
        let js = async_nats::jetstream::new(client);
        let bucket = cfg.kv_bucket.get_ref();
        let kv = js
            .get_key_value(bucket.clone())
            .await
            .map_err(|e| anyhow::anyhow!("key-value bucket {bucket:?}: {e}"))?;
        let mut keys = kv.keys().await?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key?;
            let Some(value) = kv.get(key.clone()).await? else {
                continue;
            };
            let device: StoredDevice = serde_json::from_slice(&value)
                .map_err(|e| anyhow::anyhow!("bucket {bucket:?} key {key:?}: {e}"))?;
            let host = key.split_once('.').map_or("", |(h, _)| h).to_string();
            out.push(FleetDevice { host, device });
        }
        out.sort_by(|a, b| (&a.host, &a.device.mac).cmp(&(&b.host, &b.device.mac)));
        Ok(out)
    })
}
