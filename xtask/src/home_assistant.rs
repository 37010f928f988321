//! `cargo xtask import-ha`: Home Assistant's discovery matchers into
//! `sensor-user/data/generated/home-assistant.toml`.
//!
//! Home Assistant's integrations each ship, in their `manifest.json`, the DHCP (host name,
//! MAC prefix), zeroconf, SSDP and HomeKit matchers that find the maker's devices on a
//! home network, and the categories of what the integration controls. That is hundreds of
//! brands' discovery knowledge, Apache-2.0, versioned on PyPI. This takes one pinned wheel
//! (pip checks its SHA-256), keeps the matchers the sensor can evaluate from passive
//! traffic, maps the categories to kettlewatch's, and records the version, hash and licence
//! in the output. Deterministic: the same wheel gives the same file.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::Path,
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

/// The pinned release. Newer wheels need a newer Python than Debian's to install, which is
/// why pip is told the target version rather than asked to run it.
pub const VERSION: &str = "2026.11.0";
const SHA256: &str = "7ca5fbde9dea879ac7723949fc84347aac5182e6309c357b2e4973fd391b00f7";

const OUT: &str = "sensor-user/data/generated/home-assistant.toml";
const LICENCE_OUT: &str = "sensor-user/data/generated/home-assistant.LICENSE.md";

/// Integrations whose matchers find a protocol, a standard or a piece of software that
/// many makers' products (or computers) run, not one maker's devices: their matchers
/// name no brand, and kettlewatch's own rules (`data/products/standards.toml`) already
/// weigh the standards.
const NOT_A_MAKER: [(&str, &str); 20] = [
    ("cast", "Google Cast runs in many makers' speakers and TVs"),
    ("dlna_dmr", "UPnP AV MediaRenderer, a standard device type"),
    ("dlna_dms", "UPnP AV MediaServer, a standard device type"),
    ("esphome", "firmware for any ESP32/ESP8266 board"),
    (
        "forked_daapd",
        "DAAP, iTunes library sharing from computers",
    ),
    ("homekit", "Home Assistant's own HomeKit bridge"),
    (
        "homekit_controller",
        "HomeKit Accessory Protocol, any maker",
    ),
    ("ipp", "Internet Printing Protocol, any maker"),
    ("kodi", "media software on computers and boxes"),
    ("matter", "Matter, any maker"),
    ("music_assistant", "a music server on a computer"),
    ("nut", "Network UPS Tools server on a computer"),
    ("octoprint", "3D-printer server software on a computer"),
    ("onvif", "ONVIF, any camera maker"),
    ("openhome", "OpenHome, an open media standard"),
    ("plex", "media server software"),
    ("system_bridge", "an agent on a computer"),
    ("thread", "Thread border routers of any maker"),
    ("upnp", "UPnP Internet Gateway Device, any router maker"),
    ("wyoming", "a voice service on a computer"),
];

/// Home Assistant's integration categories (`generated/integration_categories.json`: the
/// slug, its name and description) that name one kettlewatch category. The rest (energy,
/// water, blinds, vehicles, presence, weather, buttons, ...) name kinds kettlewatch has no
/// category for: they still widen an integration's span, so its votes weaken.
const CATEGORY_MAP: [(&str, &str); 25] = [
    ("security_safety.cameras", "camera"),
    ("security_safety.doorbells_intercoms", "doorbell"),
    ("security_safety.locks_access", "lock"),
    ("security_safety.alarm_systems", "alarm"),
    // "Motion and presence sensors": kettlewatch files motion sensors under alarm.
    ("sensors.motion_presence", "alarm"),
    ("plugs_switches", "plug-switch"),
    ("lighting", "light"),
    ("lighting.bulbs_lamps", "light"),
    ("lighting.led_strips_controllers", "light"),
    ("lighting.lighting_systems", "light"),
    ("climate.thermostats_heating", "thermostat-sensor"),
    ("sensors.temperature_humidity", "thermostat-sensor"),
    ("sensors.air_quality", "thermostat-sensor"),
    // Air conditioners, fans, purifiers, water heaters: appliances in kettlewatch's terms
    // (data/products/appliances-health.toml says why).
    ("climate.heat_pumps_air_conditioning", "appliance"),
    ("climate.fans_ventilation", "appliance"),
    ("climate.air_purifiers_humidifiers", "appliance"),
    ("climate.water_heaters", "appliance"),
    ("appliances_cleaning", "appliance"),
    ("appliances_cleaning.cleaning", "appliance"),
    ("appliances_cleaning.cooking", "appliance"),
    ("appliances_cleaning.laundry", "appliance"),
    ("media_entertainment.speakers_audio", "speaker"),
    ("media_entertainment.tv_streaming", "tv-media"),
    ("computers_network.printers", "printer"),
    ("computers_network.routers_network", "network"),
];

/// Hub categories: the integration speaks to a hub. A hub on the LAN when the integration
/// is local; when it is a cloud, the cloud is the hub and the category says nothing about
/// the device its matchers find (a module maker's plugs, bulbs and heaters alike).
const HUB_CATEGORIES: [&str; 4] = [
    "hubs_protocols",
    "hubs_protocols.smart_home_hubs",
    "hubs_protocols.wireless_protocols",
    "hubs_protocols.building_automation",
];

/// SSDP keys a passive sensor sees in NOTIFY and M-SEARCH answers; matchers that need the
/// device description (manufacturer, modelName, ...) cannot be evaluated without fetching it.
const SSDP_HEADERS: [&str; 3] = ["st", "nt", "deviceType"];

/// Runs the import: pip fetches (or, with `wheel_dir`, finds) the pinned wheel and checks
/// its hash; the result is written under `root`.
pub fn import(root: &Path, wheel_dir: Option<&Path>) -> Result<()> {
    let work = root.join("target/home-assistant");
    let target = work.join(VERSION);
    if !target
        .join("homeassistant/generated/integrations.json")
        .exists()
    {
        std::fs::create_dir_all(&work)?;
        let req = work.join("requirements.txt");
        std::fs::write(
            &req,
            format!("homeassistant=={VERSION} --hash=sha256:{SHA256}\n"),
        )?;
        let mut pip = Command::new("python3");
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
        ])
        // The wheel asks for a newer Python than the one running pip; it is only read.
        .args([
            "--ignore-requires-python",
            "--only-binary=:all:",
            "--require-hashes",
        ])
        .arg("-r")
        .arg(&req)
        .arg("--target")
        .arg(&target);
        if let Some(dir) = wheel_dir {
            pip.arg("--no-index").arg("--find-links").arg(dir);
        }
        let status = pip.status().context("running python3 -m pip")?;
        if !status.success() {
            bail!("pip could not fetch homeassistant=={VERSION} with the pinned hash: {status}");
        }
    }
    let ha = target.join("homeassistant");
    let integrations: Value = read_json(&ha.join("generated/integrations.json"))?;
    let brands = brand_names(&integrations);
    let mut manifests = BTreeMap::new();
    for entry in std::fs::read_dir(ha.join("components"))? {
        let path = entry?.path().join("manifest.json");
        if path.exists() {
            let m = read_json(&path)?;
            let domain = m["domain"]
                .as_str()
                .with_context(|| format!("{}: no domain", path.display()))?
                .to_string();
            manifests.insert(domain, m);
        }
    }
    let (text, stats) = render(&manifests, &brands)?;
    std::fs::create_dir_all(root.join("sensor-user/data/generated"))?;
    std::fs::write(root.join(OUT), text)?;
    let licence = target.join(format!(
        "homeassistant-{VERSION}.dist-info/licenses/LICENSE.md"
    ));
    std::fs::copy(&licence, root.join(LICENCE_OUT))
        .with_context(|| format!("copying {}", licence.display()))?;
    println!(
        "{OUT}: {} integrations, {} DHCP, {} zeroconf, {} SSDP, {} HomeKit matchers ({} SSDP matchers need the device description and were left out; {} integrations are protocols, not makers)",
        stats.integrations,
        stats.dhcp,
        stats.zeroconf,
        stats.ssdp,
        stats.homekit,
        stats.ssdp_skipped,
        NOT_A_MAKER.len()
    );
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Each integration's brand: the brand entry it is listed under in `integrations.json`
/// when that lists several (`tplink` under "TP-Link", `hue` under "Philips"); an
/// integration alone under its brand goes by its manifest's name.
fn brand_names(integrations: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(all) = integrations["integration"].as_object() {
        for (key, entry) in all {
            let name = entry["name"].as_str().unwrap_or(key).to_string();
            match entry["integrations"].as_object() {
                Some(children) if children.len() > 1 => {
                    for domain in children.keys() {
                        out.insert(domain.clone(), name.clone());
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[derive(Default)]
struct Stats {
    integrations: usize,
    dhcp: usize,
    zeroconf: usize,
    ssdp: usize,
    ssdp_skipped: usize,
    homekit: usize,
}

fn toml_str(s: &str) -> String {
    // JSON's string escapes are all valid in a TOML basic string.
    serde_json::to_string(s).expect("a string serialises")
}

fn render(
    manifests: &BTreeMap<String, Value>,
    brands: &BTreeMap<String, String>,
) -> Result<(String, Stats)> {
    let mut stats = Stats::default();
    let mut out = String::new();
    writeln!(
        out,
        "# Home Assistant's discovery matchers: generated by `cargo xtask import-ha`, do not edit.
#
# source: the homeassistant {VERSION} wheel from PyPI
# (https://pypi.org/project/homeassistant/{VERSION}/), SHA-256 {SHA256}: each integration's
# homeassistant/components/<domain>/manifest.json (dhcp, zeroconf, ssdp, homekit, categories)
# and homeassistant/generated/integrations.json (the brand an integration is listed under).
# licence: Apache-2.0, Copyright the Home Assistant authors; the licence is
# home-assistant.LICENSE.md beside this file.
#
# Per integration: `brand`; `categories`, kettlewatch's categories its Home Assistant
# categories name (`ha_categories`), and `other`, how many of those name none; the matchers
# a passive sensor can evaluate: `dhcp` (host-name and MAC-prefix globs, both must match),
# `zeroconf` (service type, instance-name glob, TXT globs), `ssdp` (ST/NT/device type),
# `homekit` (model prefixes). Left out: integrations that find a protocol rather than a
# maker ({}), SSDP matchers that need the device description, DHCP matchers on
# `registered_devices` alone.
",
        NOT_A_MAKER.map(|(d, _)| d).join(", ")
    )?;
    writeln!(out, "[source]")?;
    writeln!(out, "package = \"homeassistant\"")?;
    writeln!(out, "version = \"{VERSION}\"")?;
    writeln!(out, "sha256 = \"{SHA256}\"")?;
    writeln!(out, "licence = \"Apache-2.0\"")?;
    writeln!(
        out,
        "url = \"https://pypi.org/project/homeassistant/{VERSION}/\""
    )?;
    let map: BTreeMap<&str, &str> = CATEGORY_MAP.into_iter().collect();
    for (domain, m) in manifests {
        if NOT_A_MAKER.iter().any(|(d, _)| d == domain) {
            continue;
        }
        let mut dhcp = Vec::new();
        for e in m["dhcp"].as_array().into_iter().flatten() {
            let host = e["hostname"].as_str();
            let mac = e["macaddress"].as_str();
            if host.is_none() && mac.is_none() {
                continue;
            }
            let mut fields = Vec::new();
            if let Some(h) = host {
                fields.push(format!("hostname = {}", toml_str(h)));
            }
            if let Some(p) = mac {
                fields.push(format!("mac = {}", toml_str(p)));
            }
            dhcp.push(format!("{{ {} }}", fields.join(", ")));
        }
        let mut zeroconf = Vec::new();
        for e in m["zeroconf"].as_array().into_iter().flatten() {
            let (kind, name, props) = match e {
                Value::String(t) => (t.as_str(), None, None),
                Value::Object(o) => (
                    o.get("type")
                        .and_then(Value::as_str)
                        .context("zeroconf entry without type")?,
                    o.get("name").and_then(Value::as_str),
                    o.get("properties").and_then(Value::as_object),
                ),
                _ => bail!("{domain}: zeroconf entry {e}"),
            };
            let mut fields = vec![format!("type = {}", toml_str(kind))];
            if let Some(n) = name {
                fields.push(format!("name = {}", toml_str(n)));
            }
            if let Some(p) = props {
                let kv: Vec<String> = p
                    .iter()
                    .filter_map(|(k, v)| {
                        Some(format!("{} = {}", toml_str(k), toml_str(v.as_str()?)))
                    })
                    .collect();
                fields.push(format!("properties = {{ {} }}", kv.join(", ")));
            }
            zeroconf.push(format!("{{ {} }}", fields.join(", ")));
        }
        let mut ssdp = Vec::new();
        for e in m["ssdp"].as_array().into_iter().flatten() {
            let Some(o) = e.as_object() else { continue };
            if o.keys().any(|k| !SSDP_HEADERS.contains(&k.as_str())) {
                stats.ssdp_skipped += 1;
                continue;
            }
            let fields: Vec<String> = o
                .iter()
                .filter_map(|(k, v)| Some(format!("{} = {}", k, toml_str(v.as_str()?))))
                .collect();
            ssdp.push(format!("{{ {} }}", fields.join(", ")));
        }
        let homekit: Vec<String> = m["homekit"]["models"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(toml_str))
            .collect();
        if dhcp.is_empty() && zeroconf.is_empty() && ssdp.is_empty() && homekit.is_empty() {
            continue;
        }
        let ha_categories: Vec<&str> = m["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        // Home Assistant's own plumbing (`integration_type: system`) has no categories and
        // names no maker.
        if ha_categories.is_empty() {
            continue;
        }
        let local = m["iot_class"]
            .as_str()
            .is_some_and(|c| c.starts_with("local"));
        let hub = m["integration_type"].as_str() == Some("hub");
        let mut categories = BTreeSet::new();
        let mut other = BTreeSet::new();
        for c in &ha_categories {
            if let Some(k) = map.get(c) {
                categories.insert(*k);
            } else if HUB_CATEGORIES.contains(c) {
                if local {
                    categories.insert("hub-bridge");
                }
            } else {
                // Subcategories of one unmapped kind (energy.*) are one other kind.
                other.insert(c.split('.').next().unwrap_or(c));
            }
        }
        // A local hub integration finds the hub itself or the devices behind it.
        if hub && local && !categories.is_empty() {
            categories.insert("hub-bridge");
        }
        let brand = brands
            .get(domain)
            .cloned()
            .or_else(|| m["name"].as_str().map(str::to_string))
            .unwrap_or_else(|| domain.clone());
        stats.integrations += 1;
        stats.dhcp += dhcp.len();
        stats.zeroconf += zeroconf.len();
        stats.ssdp += ssdp.len();
        stats.homekit += homekit.len();
        writeln!(out, "\n[[integration]]")?;
        writeln!(out, "domain = {}", toml_str(domain))?;
        writeln!(
            out,
            "name = {}",
            toml_str(m["name"].as_str().unwrap_or(domain))
        )?;
        writeln!(out, "brand = {}", toml_str(&brand))?;
        let quoted = |v: Vec<&str>| v.iter().map(|c| toml_str(c)).collect::<Vec<_>>().join(", ");
        writeln!(out, "ha_categories = [{}]", quoted(ha_categories.clone()))?;
        writeln!(
            out,
            "categories = [{}]",
            quoted(categories.into_iter().collect())
        )?;
        writeln!(out, "other = {}", other.len())?;
        for (key, list) in [
            ("dhcp", &dhcp),
            ("zeroconf", &zeroconf),
            ("ssdp", &ssdp),
            ("homekit", &homekit),
        ] {
            if list.is_empty() {
                continue;
            }
            writeln!(out, "{key} = [")?;
            for e in list {
                writeln!(out, "  {e},")?;
            }
            writeln!(out, "]")?;
        }
    }
    Ok((out, stats))
}
