//! The product a device is, brand and model, from what it said about itself: a model
//! field it announces (mDNS TXT `md`/`model`/..., Kasa's `model`, an ONVIF
//! `hardware/<model>` scope), else a host name, mDNS instance name, SSDP SERVER product
//! token or DHCP vendor class that a vendor's model-number scheme in the knowledge base
//! recognised (without the serial the unit appends); the brand from an announced
//! manufacturer (mDNS TXT `mf`/`manufacturer`, ONVIF `name/<brand>` scope, Kasa is
//! TP-Link's), else the brand of the Home Assistant integration whose discovery matchers
//! the device matched, else the MAC's IEEE registry name, unless that names a radio-module
//! maker or contract manufacturer (`data/module-makers.txt`). Nothing is guessed: absent
//! when nothing said it. UPnP device types and USNs name a class of device, not a model (the
//! model is in the description document, which the sensor does not fetch).

use std::sync::LazyLock;

use crate::{
    model::device::Device,
    model::vocab::{Evidence, Product},
};

static MODULE_MAKERS: LazyLock<globset::GlobSet> = LazyLock::new(|| {
    crate::discover::glob_list::compile(
        include_str!("../../data/module-makers.txt"),
        "data/module-makers.txt",
    )
});

/// Whether an IEEE registry name is a radio-module maker's or a contract manufacturer's.
pub fn module_maker(vendor: &str) -> bool {
    MODULE_MAKERS.is_match(vendor)
}

fn onvif(scopes: &std::collections::BTreeSet<String>, kind: &str) -> Option<String> {
    let prefix = format!("onvif://www.onvif.org/{kind}/");
    scopes.iter().find_map(|s| {
        let v = s.strip_prefix(&prefix)?;
        // ONVIF scopes are URI-encoded (`%20` for a space).
        let v = v.replace("%20", " ").replace('_', " ");
        (!v.trim().is_empty()).then(|| v.trim().to_string())
    })
}

fn txt(entries: &std::collections::BTreeSet<String>, keys: &[&str]) -> Option<String> {
    entries.iter().find_map(|e| {
        let (k, v) = e.split_once('=')?;
        (keys.contains(&k) && !v.trim().is_empty()).then(|| v.trim().to_string())
    })
}

/// The product, when the device said enough; `vendor` is its IEEE registry name,
/// `matched` the brand of the Home Assistant integration it matched, and `evidence` the
/// votes its classification counted.
pub fn product(
    d: &Device,
    vendor: Option<&str>,
    matched: Option<&str>,
    evidence: &[Evidence],
) -> Option<Product> {
    let p = &d.profile;
    let model = p
        .mdns
        .models
        .iter()
        .next()
        .cloned()
        .or_else(|| p.kasa.model.clone())
        .or_else(|| onvif(&p.wsd.scopes, "hardware"))
        .or_else(|| {
            // A host name, mDNS instance name, SSDP product token or DHCP vendor class only
            // when a model-number scheme (weight 3 and up: a rule that names one kind of
            // product) recognised it; the serial many devices append is not the model.
            evidence
                .iter()
                .find(|e| {
                    matches!(e.fact.as_str(), "hostname" | "model" | "mdns_instance")
                        && e.weight >= 3.0
                })
                .map(|e| without_serial(&e.value).to_string())
        });
    let brand = txt(&p.mdns.txt, &["manufacturer", "mf", "usb_mfg"])
        .or_else(|| onvif(&p.wsd.scopes, "name"))
        .or_else(|| p.kasa.model.as_ref().map(|_| "TP-Link".to_string()))
        .or_else(|| matched.map(str::to_string))
        .or_else(|| vendor.filter(|v| !module_maker(v)).map(str::to_string));
    // A brand alone from the registry says who made the MAC, which the device event
    // already has as `vendor`: a product needs the device to have named itself, by a
    // model or by what a maker's discovery matcher recognised.
    if model.is_none() && matched.is_none() {
        return None;
    }
    Some(Product { brand, model })
}

/// A name without the unit's serial that devices append to their model (`DCS-8000LH-1A2B`,
/// `Lightify-01a2b3c4`): a separator and 4, 6, 8 or 12 hexadecimal characters with a digit
/// among them, the lengths of a MAC's tail.
fn without_serial(name: &str) -> &str {
    let Some(at) = name.rfind(['-', '_', ' ']) else {
        return name;
    };
    let tail = &name[at + 1..];
    let serial = matches!(tail.len(), 4 | 6 | 8 | 12)
        && tail.chars().all(|c| c.is_ascii_hexdigit())
        && tail.chars().any(|c| c.is_ascii_digit());
    if serial && at > 0 {
        name[..at].trim_end_matches([' ', '-', '_'])
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, mdns::MdnsFacts};
    use sensor_common::MacAddr;

    fn device() -> Device {
        let mut t = crate::track::devices::DeviceTable::with_capacity(4);
        let mac = MacAddr([0x02, 0, 0, 0, 0, 1]);
        t.on_seen(mac, 1);
        t.get(&mac).unwrap().clone()
    }

    #[test]
    fn every_module_maker_line_is_a_glob_and_module_makers_are_not_brands() {
        assert!(module_maker("Espressif Inc."));
        assert!(module_maker("Hon Hai Precision Ind. Co.,Ltd."));
        assert!(module_maker(
            "Shenzhen Hi-Flying Electronics Technology Co.,Ltd"
        ));
        assert!(!module_maker("Sonos, Inc."));
        assert!(!module_maker("Raspberry Pi Trading Ltd"));
        let mut d = device();
        d.profile.merge(Facts::Mdns(MdnsFacts {
            models: ["ESP-Plug-2".to_string()].into(),
            ..Default::default()
        }));
        let p = product(&d, Some("Espressif Inc."), None, &[]).unwrap();
        assert_eq!(p.model.as_deref(), Some("ESP-Plug-2"));
        assert_eq!(p.brand, None, "the module maker is not the brand");
    }

    #[test]
    fn an_announced_model_and_manufacturer_make_the_product_and_a_bare_vendor_does_not() {
        let mut d = device();
        assert_eq!(product(&d, Some("Sonos, Inc."), None, &[]), None);
        d.profile.merge(Facts::Mdns(MdnsFacts {
            models: ["Google Home Mini".to_string()].into(),
            txt: [
                "md=Google Home Mini".to_string(),
                "mf=Google Inc.".to_string(),
            ]
            .into(),
            ..Default::default()
        }));
        let p = product(&d, Some("Espressif Inc."), None, &[]).unwrap();
        assert_eq!(p.brand.as_deref(), Some("Google Inc."));
        assert_eq!(p.model.as_deref(), Some("Google Home Mini"));
    }

    #[test]
    fn a_host_name_is_a_model_only_when_a_model_scheme_recognised_it() {
        let d = device();
        let vote = |w: f64| Evidence {
            fact: "hostname".into(),
            value: "HS110".into(),
            pattern: "HS1[0-9][0-9]*".into(),
            category: "plug-switch".into(),
            weight: w,
            discounted: false,
        };
        assert_eq!(product(&d, None, None, &[vote(1.5)]), None);
        assert_eq!(
            product(
                &d,
                Some("TP-LINK TECHNOLOGIES CO.,LTD."),
                None,
                &[vote(3.0)]
            ),
            Some(Product {
                brand: Some("TP-LINK TECHNOLOGIES CO.,LTD.".into()),
                model: Some("HS110".into())
            })
        );
    }

    #[test]
    fn the_serial_a_device_appends_is_not_part_of_its_model() {
        for (name, model) in [
            ("DCS-8000LH-1A2B", "DCS-8000LH"),
            ("Lightify-01a2b3c4", "Lightify"),
            ("Philips Hue - 1A2B3C", "Philips Hue"),
            ("DIR-850", "DIR-850"),
            ("DCS-930L", "DCS-930L"),
            ("PGH200", "PGH200"),
            ("Hub-CAFE", "Hub-CAFE"),
            ("-1A2B", "-1A2B"),
        ] {
            assert_eq!(without_serial(name), model, "{name}");
        }
        let d = device();
        let instance = Evidence {
            fact: "mdns_instance".into(),
            value: "DCS-8000LH-1A2B".into(),
            pattern: "DCS-*".into(),
            category: "camera".into(),
            weight: 3.0,
            discounted: false,
        };
        assert_eq!(
            product(&d, None, None, &[instance]).and_then(|p| p.model),
            Some("DCS-8000LH".into())
        );
    }
}
