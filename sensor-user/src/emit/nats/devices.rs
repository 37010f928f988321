//! `kettlewatch devices --nats URL`: every gateway's devices, read back from the bucket
//! the sensors keep their latest device profiles in.

use std::time::Duration;

use futures_util::StreamExt;

use crate::{config::NatsConfig, store::state::StoredDevice};

/// Every device in the bucket with its gateway's host name (as its subject token), by
/// host then MAC. A value that does not parse is an
/// error naming its key: a bucket someone else writes to is not ours to guess at.
pub fn list(cfg: &NatsConfig) -> anyhow::Result<Vec<(String, StoredDevice)>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut options = super::connect_options(cfg, None, "kettlewatch devices")?;
        // A listing that cannot reach the broker says so instead of waiting for it.
        options = options.connection_timeout(Duration::from_secs(5));
        let addrs = super::server_addrs(cfg)?;
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
            out.push((host, device));
        }
        out.sort_by(|a, b| (&a.0, &a.1.mac).cmp(&(&b.0, &b.1.mac)));
        Ok(out)
    })
}
