//! A fleet read back from the broker: every gateway's devices from the bucket the
//! sensors keep their latest device profiles in (`kettlewatch devices --nats`), and the
//! alerts they published (`kettlewatch console --nats`).

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
};
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
        let js = connect(cfg, "kettlewatch devices").await?;
        devices(&js, cfg).await
    })
}

/// A JetStream context on the fleet's broker, or why there is none within 10 s.
pub async fn connect(cfg: &NatsConfig, name: &str) -> anyhow::Result<jetstream::Context> {
    let mut options = super::connect_options(cfg, None, name)?;
    // A reader that cannot reach the broker says so instead of waiting for it.
    options = options.connection_timeout(Duration::from_secs(5));
    let addrs = super::server_addrs(cfg)?;
    let client = tokio::time::timeout(Duration::from_secs(10), options.connect(addrs))
        .await
        .map_err(|_| anyhow::anyhow!("no NATS server answered within 10 s"))??;
    Ok(jetstream::new(client))
}

/// Every device in the bucket, as [`list`] says. Read as one ordered consumer over the
/// bucket's stream, the last value of each key: the server streams them in batches,
/// where a `get` per key would cost a round trip per device (docs/performance.md,
/// "A fleet's inventory").
pub async fn devices(
    js: &jetstream::Context,
    cfg: &NatsConfig,
) -> anyhow::Result<Vec<(String, StoredDevice)>> {
    let bucket = cfg.kv_bucket.get_ref();
    js.get_key_value(bucket.clone())
        .await
        .map_err(|e| anyhow::anyhow!("key-value bucket {bucket:?}: {e}"))?;
    let stream = js.get_stream(format!("KV_{bucket}")).await?;
    if stream.cached_info().state.messages == 0 {
        return Ok(Vec::new());
    }
    let prefix = format!("$KV.{bucket}.");
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: format!("{prefix}>"),
            deliver_policy: DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut out = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("bucket {bucket:?} stopped answering"))?
            .ok_or_else(|| anyhow::anyhow!("bucket {bucket:?}: the listing ended early"))??;
        let pending = m.info().map_err(|e| anyhow::anyhow!("{e}"))?.pending;
        // A deleted or purged key leaves a marker as its last value.
        let deleted = m
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_some_and(|v| matches!(v.as_str(), "DEL" | "PURGE"));
        if !deleted {
            let key = m.subject.as_str().strip_prefix(&prefix).unwrap_or_default();
            let device: StoredDevice = serde_json::from_slice(&m.payload)
                .map_err(|e| anyhow::anyhow!("bucket {bucket:?} key {key:?}: {e}"))?;
            let host = key.split_once('.').map_or("", |(h, _)| h).to_string();
            out.push((host, device));
        }
        if pending == 0 {
            break;
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1.mac).cmp(&(&b.0, &b.1.mac)));
    Ok(out)
}

/// The alert lines every gateway published after stream sequence `after` (0: from the
/// start), in order, and the sequence of the last one read (`after` when none). The
/// server filters the stream down to alert subjects: the flows around them are never
/// sent here.
pub async fn alerts_after(
    js: &jetstream::Context,
    cfg: &NatsConfig,
    after: u64,
) -> anyhow::Result<(Vec<String>, u64)> {
    let prefix = cfg.subject_prefix.get_ref();
    let subject = format!("{prefix}.*.alert");
    let name = js
        .stream_by_subject(format!("{prefix}.any.alert"))
        .await
        .map_err(|e| anyhow::anyhow!("no stream holds {subject}: {e}"))?;
    let stream = js.get_stream(&name).await?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject,
            deliver_policy: if after == 0 {
                DeliverPolicy::All
            } else {
                DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                }
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut lines = Vec::new();
    let mut last = after;
    // Until the server says nothing is pending, or says nothing for a moment (no alert
    // since `after`).
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), messages.next()).await {
        let m = m?;
        let info = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        last = info.stream_sequence;
        let pending = info.pending;
        lines.push(String::from_utf8_lossy(&m.payload).into_owned());
        if pending == 0 {
            break;
        }
    }
    Ok((lines, last))
}
