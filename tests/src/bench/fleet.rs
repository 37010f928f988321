//! A fleet's inventory at scale: simulated gateways put their devices into the key-value
//! bucket of a three-node JetStream cluster (three replicas) through the sensor's own
//! publisher (`emit::nats::Fleet`, one per gateway, as each gateway runs one), then
//! `kettlewatch devices --nats` lists them. Beside it, the same bucket read the way the
//! listing used to read it, a `get` per key, to show what the ordered read moved.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use futures_util::StreamExt;
use sensor_user::{
    config::Config, discover::profile::Profile, emit::nats::Fleet, model::vocab::Evidence,
    store::state::StoredDevice,
};

use crate::nats::Nats;

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct KvFigures {
    /// Gateways, each with its own publisher and connection.
    pub gateways: usize,
    /// Devices in the bucket (gateways times devices each).
    pub kv_devices: usize,
    /// Seconds from the first put to the last acknowledgement.
    pub put_s: f64,
    /// Mean size of one device's value, bytes.
    pub value_bytes: usize,
    /// `kettlewatch devices --nats`, seconds, per round.
    pub devices_nats_s: Vec<f64>,
    /// Devices it listed.
    pub listed: usize,
    /// The same bucket read a `get` per key (the listing before 2026-12-07), seconds.
    pub get_per_key_s: f64,
}

/// A device as a gateway stores it: the fields a camera found by its DHCP and DNS has.
fn device(gateway: usize, n: usize) -> StoredDevice {
    let mac = format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:01",
        gateway >> 8,
        gateway & 0xff,
        n >> 8,
        n & 0xff
    );
    let mut profile = Profile {
        hostname: Some(format!("cam-{n:04}")),
        ..Profile::default()
    };
    profile
        .dns
        .insert("business.smartcamera.api.io.mi.com".into());
    profile.dns.insert(format!("ota-{}.example.com", n % 7));
    StoredDevice {
        mac,
        first_seen_ns: 1_796_000_000_000_000_000,
        last_seen_ns: 1_796_000_600_000_000_000,
        vendor: Some("Shanghai Imilab Technology Co.Ltd".into()),
        name: None,
        inventory_status: "unknown".into(),
        category: "camera".into(),
        category_source: "observed".into(),
        confidence: 0.7,
        criticality: "high".into(),
        why: "category camera".into(),
        addresses: vec![format!("192.168.{}.{}", n / 250, n % 250 + 2)],
        profile,
        evidence: vec![Evidence {
            fact: "dns".into(),
            value: "business.smartcamera.api.io.mi.com".into(),
            pattern: "*smartcamera*".into(),
            category: "camera".into(),
            weight: 2.0,
            discounted: false,
        }],
        new_device_reported: true,
        product: None,
        identity: None,
        vulnerabilities: Vec::new(),
        gateway: None,
        policies: vec!["learned".into()],
        declared_rules: Vec::new(),
    }
}

/// `gateways` publishers put `per_gateway` devices each; then `rounds` listings.
pub fn kv_inventory(
    bin: &Path,
    gateways: usize,
    per_gateway: usize,
    rounds: usize,
) -> Result<KvFigures> {
    let mut nats = Nats::new("kwbf", 3);
    nats.start_all();
    nats.wait_ready(Duration::from_secs(30));
    let urls = nats.urls();
    let quoted: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let text = format!(
        "[output.nats]\nurl = [{}]\nreplicas = 3\n",
        quoted.join(", ")
    );
    let nats_config = |text: &str| -> Result<_> {
        Config::parse(text, "bench.toml")?
            .output
            .nats
            .context("[output.nats]")
    };
    let total = gateways * per_gateway;
    let mut value_bytes = 0;
    let start = Instant::now();
    let mut fleets = Vec::new();
    for g in 0..gateways {
        let c = nats_config(&text)?;
        // The publisher's thread is made inside the cluster's namespace, so its
        // connection is too.
        let fleet = nats
            .ns
            .run(move || Fleet::start(&c, None, &format!("gw{g:04}"), None, 4096))?
            .wait_when_full();
        fleets.push(fleet);
    }
    for (g, f) in fleets.iter_mut().enumerate() {
        for n in 0..per_gateway {
            let d = device(g, n);
            let row = serde_json::to_vec(&d)?;
            value_bytes += row.len();
            f.put_device(&d.mac, row);
        }
    }
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        let published: u64 = fleets.iter().map(|f| f.stats().published).sum();
        if published as usize >= total {
            break;
        }
        if Instant::now() > end {
            bail!("{published} of {total} devices acknowledged in 600 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let put_s = start.elapsed().as_secs_f64();
    drop(fleets);
    let mut devices_nats_s = Vec::new();
    let mut listed = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let out = nats
            .ns
            .cmd(bin.to_str().context("binary path")?)
            .args(["devices", "--nats", &urls[0], "--json"])
            .output()
            .context("kettlewatch devices --nats")?;
        devices_nats_s.push(t.elapsed().as_secs_f64());
        if !out.status.success() {
            bail!("devices --nats: {}", String::from_utf8_lossy(&out.stderr));
        }
        listed = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .count();
    }
    let get_per_key_s = nats.with_client(|js| {
        Box::pin(async move {
            let t = Instant::now();
            let kv = js
                .get_key_value("kettlewatch-devices")
                .await
                .expect("the bucket");
            let mut keys = kv.keys().await.expect("keys");
            let mut n = 0usize;
            while let Some(k) = keys.next().await {
                let k = k.expect("key");
                if kv.get(k).await.expect("get").is_some() {
                    n += 1;
                }
            }
            assert!(n > 0, "no key read");
            t.elapsed().as_secs_f64()
        })
    });
    Ok(KvFigures {
        gateways,
        kv_devices: total,
        put_s,
        value_bytes: value_bytes / total.max(1),
        devices_nats_s,
        listed,
        get_per_key_s,
    })
}
