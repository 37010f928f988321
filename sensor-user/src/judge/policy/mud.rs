//! RFC 8520 MUD files: the from-device access lists become allow entries. Both the RFC's
//! `ietf-access-control-list:acls` and the older drafts' `access-lists` (with `acl-name`,
//! `access-list-entries`, `ipv4-acl` matches) are read. Nothing is fetched: files come
//! from disk. A malformed file is rejected with the JSON path of the problem.

use std::path::Path;

use sensor_common::proto;
use serde_json::Value;

use super::allow::{AllowRule, Dest};

/// What a MUD file allows a device to reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MudPolicy {
    /// The file's `mud-url`: devices announcing it get this policy.
    pub url: String,
    /// The allow entries of its from-device ACEs.
    pub rules: Vec<AllowRule>,
    /// ACEs that name what only a MUD controller knows (`my-controller`,
    /// `same-manufacturer`, `model`, `controller`): not imported, counted.
    pub skipped: usize,
    /// ACEs for the local networks (`ietf-mud:local-networks`): the LAN is always allowed,
    /// so they add nothing.
    pub local: usize,
    /// ACEs whose destination network is a bare address where RFC 8519 asks for a prefix
    /// (MUDgee writes IPv6 destinations so): taken as a host prefix (/32 or /128), each
    /// named here by its JSON path and value so the import can say so.
    pub bare_addresses: Vec<String>,
}

/// A MUD file that does not say what the importer needs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {path}: {why}")]
pub struct MudError {
    /// The file.
    pub file: String,
    /// JSON path of the problem, like `$['ietf-mud:mud']['from-device-policy']`.
    pub path: String,
    /// What is wrong.
    pub why: String,
}

struct Walk<'a> {
    file: &'a str,
}

impl Walk<'_> {
    fn err(&self, path: &str, why: impl Into<String>) -> MudError {
        MudError {
            file: self.file.to_string(),
            path: path.to_string(),
            why: why.into(),
        }
    }

    fn get<'v>(&self, v: &'v Value, path: &str, key: &str) -> Result<&'v Value, MudError> {
        v.get(key)
            .ok_or_else(|| self.err(path, format!("missing {key:?}")))
    }
}

fn child(path: &str, key: &str) -> String {
    format!("{path}['{key}']")
}

/// Reads and imports a MUD file.
pub fn load(path: &Path) -> Result<MudPolicy, MudError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| MudError {
        file: file.clone(),
        path: "$".into(),
        why: e.to_string(),
    })?;
    parse(&text, &file)
}

/// Imports MUD JSON text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<MudPolicy, MudError> {
    let w = Walk { file };
    let root: Value = serde_json::from_str(text).map_err(|e| {
        w.err(
            "$",
            format!("not JSON: {e} (line {}, column {})", e.line(), e.column()),
        )
    })?;
    let mud_path = "$['ietf-mud:mud']";
    let mud = w.get(&root, "$", "ietf-mud:mud")?;
    let url = w
        .get(mud, mud_path, "mud-url")?
        .as_str()
        .ok_or_else(|| w.err(&child(mud_path, "mud-url"), "not a string"))?
        .to_string();
    let from_path = child(mud_path, "from-device-policy");
    let names_path = format!("{from_path}['access-lists']['access-list']");
    let names = w
        .get(
            w.get(
                w.get(mud, mud_path, "from-device-policy")?,
                &from_path,
                "access-lists",
            )?,
            &format!("{from_path}['access-lists']"),
            "access-list",
        )?
        .as_array()
        .ok_or_else(|| w.err(&names_path, "not a list"))?;
    let (acls_key, acls) = match (
        root.get("ietf-access-control-list:acls"),
        root.get("ietf-access-control-list:access-lists"),
    ) {
        (Some(a), _) => ("ietf-access-control-list:acls", a),
        (None, Some(a)) => ("ietf-access-control-list:access-lists", a),
        (None, None) => {
            return Err(w.err(
                "$",
                "no 'ietf-access-control-list:acls' (or older 'ietf-access-control-list:access-lists')",
            ));
        }
    };
    let acl_path = format!("$['{acls_key}']['acl']");
    let acl_list = w
        .get(acls, &format!("$['{acls_key}']"), "acl")?
        .as_array()
        .ok_or_else(|| w.err(&acl_path, "not a list"))?;
    let mut out = MudPolicy {
        url,
        rules: Vec::new(),
        skipped: 0,
        local: 0,
        bare_addresses: Vec::new(),
    };
    for (i, n) in names.iter().enumerate() {
        let p = format!("{names_path}[{i}]");
        let name = n
            .get("name")
            .or_else(|| n.get("acl-name"))
            .and_then(Value::as_str)
            .ok_or_else(|| w.err(&p, "no 'name' (or 'acl-name')"))?;
        let (j, acl) = acl_list
            .iter()
            .enumerate()
            .find(|(_, a)| {
                a.get("name")
                    .or_else(|| a.get("acl-name"))
                    .and_then(Value::as_str)
                    == Some(name)
            })
            .ok_or_else(|| {
                w.err(
                    &p,
                    format!("access list {name:?} is not defined under {acl_path}"),
                )
            })?;
        let ap = format!("{acl_path}[{j}]");
        let (aces_key, aces) = match (acl.get("aces"), acl.get("access-list-entries")) {
            (Some(a), _) => ("aces", a),
            (None, Some(a)) => ("access-list-entries", a),
            (None, None) => return Err(w.err(&ap, "no 'aces'")),
        };
        let ace_path = format!("{ap}['{aces_key}']['ace']");
        let ace_list = w
            .get(aces, &child(&ap, aces_key), "ace")?
            .as_array()
            .ok_or_else(|| w.err(&ace_path, "not a list"))?;
        for (k, ace) in ace_list.iter().enumerate() {
            let cp = format!("{ace_path}[{k}]");
            import_ace(&w, ace, &cp, &mut out)?;
        }
    }
    Ok(out)
}

fn import_ace(w: &Walk<'_>, ace: &Value, p: &str, out: &mut MudPolicy) -> Result<(), MudError> {
    let action = ace
        .pointer("/actions/forwarding")
        .and_then(Value::as_str)
        .ok_or_else(|| w.err(&child(p, "actions"), "no 'forwarding' action"))?;
    if !action.ends_with("accept") {
        // Drop and reject ACEs restrict; an allow-list has nothing to add for them.
        return Ok(());
    }
    let mp = child(p, "matches");
    let matches = w.get(ace, p, "matches")?;
    let Some(m) = matches.as_object() else {
        return Err(w.err(&mp, "not an object"));
    };
    if m.contains_key("ietf-mud:mud") || m.contains_key("ietf-mud:mud-acl") {
        let inner = m
            .get("ietf-mud:mud")
            .or_else(|| m.get("ietf-mud:mud-acl"))
            .expect("checked");
        if inner.get("local-networks").is_some() {
            out.local += 1;
        } else {
            out.skipped += 1;
        }
        return Ok(());
    }
    if m.contains_key("ietf-mud:same-manufacturer")
        || m.contains_key("ietf-mud:my-controller")
        || m.contains_key("ietf-mud:controller")
        || m.contains_key("ietf-mud:model")
    {
        out.skipped += 1;
        return Ok(());
    }
    let (lkey, l3) = ["ipv4", "ipv6", "ipv4-acl", "ipv6-acl"]
        .iter()
        .find_map(|k| m.get(*k).map(|v| (*k, v)))
        .ok_or_else(|| w.err(&mp, "no ipv4 or ipv6 match"))?;
    let lp = child(&mp, lkey);
    let dest = if let Some(name) = l3.get("ietf-acldns:dst-dnsname") {
        let name = name
            .as_str()
            .ok_or_else(|| w.err(&child(&lp, "ietf-acldns:dst-dnsname"), "not a string"))?;
        let r: AllowRule = name.parse().map_err(|e: super::allow::AllowError| {
            w.err(&child(&lp, "ietf-acldns:dst-dnsname"), e.to_string())
        })?;
        r.dest
    } else if let Some((key, net)) = ["destination-ipv4-network", "destination-ipv6-network"]
        .iter()
        .find_map(|k| l3.get(*k).map(|v| (*k, v)))
    {
        let np = child(&lp, key);
        let s = net.as_str().ok_or_else(|| w.err(&np, "not a string"))?;
        let parsed = match s.parse::<ipnet::IpNet>() {
            Ok(n) => n,
            // One entry's missing prefix length should not cost the device its whole
            // policy: the address alone is the one host it names.
            Err(e) => match s.parse::<std::net::IpAddr>() {
                Ok(a) => {
                    out.bare_addresses.push(format!("{np}: {s:?}"));
                    ipnet::IpNet::from(a)
                }
                Err(_) => return Err(w.err(&np, format!("{s:?}: {e}"))),
            },
        };
        Dest::Net(parsed.trunc())
    } else {
        // PolicySource-only matches (to-device style) say nothing about destinations.
        out.skipped += 1;
        return Ok(());
    };
    let proto_nr = match l3.get("protocol") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n <= 255)
                .ok_or_else(|| w.err(&child(&lp, "protocol"), "not a protocol number"))?
                as u8,
        ),
    };
    // Ports: under tcp/udp (RFC), or in the l3 match (drafts), as an operator or a range.
    let mut port = None;
    for (holder, hp) in [
        (m.get("tcp"), child(&mp, "tcp")),
        (m.get("udp"), child(&mp, "udp")),
        (Some(l3), lp.clone()),
    ] {
        let Some(h) = holder else { continue };
        for key in [
            "destination-port",
            "destination-port-range-or-operator",
            "destination-port-range",
        ] {
            let Some(v) = h.get(key) else { continue };
            let pp = child(&hp, key);
            port = Some(port_of(w, v, &pp)?);
        }
    }
    let proto_nr = proto_nr.or(if m.contains_key("tcp") {
        Some(proto::TCP)
    } else if m.contains_key("udp") {
        Some(proto::UDP)
    } else {
        None
    });
    out.rules.push(AllowRule {
        dest,
        port,
        proto: proto_nr,
    });
    Ok(())
}

/// A single destination port (`operator: eq` or a range of one port).
fn port_of(w: &Walk<'_>, v: &Value, p: &str) -> Result<u16, MudError> {
    let n = |x: Option<&Value>, what: &str| {
        x.and_then(Value::as_u64)
            .filter(|n| (1..=65535).contains(n))
            .map(|n| n as u16)
            .ok_or_else(|| w.err(&child(p, what), "not a port number"))
    };
    if let Some(op) = v.get("operator") {
        if op.as_str() != Some("eq") {
            return Err(w.err(&child(p, "operator"), "only 'eq' is supported"));
        }
        return n(v.get("port"), "port");
    }
    let lo = n(v.get("lower-port"), "lower-port")?;
    let hi = n(v.get("upper-port"), "upper-port")?;
    if lo != hi {
        return Err(w.err(
            p,
            format!("port range {lo}-{hi}: only single ports are supported"),
        ));
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        crate::testdata::path(&format!("mud/osmud/{name}"))
    }

    #[test]
    fn the_osmud_files_import() {
        let nest = fixture("MUDFILE.NEST");
        let m = load(&nest).unwrap();
        assert_eq!(m.url, "https://mplaunchpad.com/.well-known/mud/v1/nest");
        assert!(
            m.rules.contains(&"nest.com:9543/tcp".parse().unwrap()),
            "{:?}",
            m.rules
        );
        assert!(
            m.skipped > 0,
            "controller and manufacturer ACEs are not importable"
        );
        let draft = load(&fixture("ieft-draft.json")).unwrap();
        assert_eq!(draft.url, "https://lighting.example.com/lightbulb2000");
        assert_eq!(
            draft.rules,
            vec!["test.example.com:443/tcp".parse::<AllowRule>().unwrap()]
        );
        let bulb = load(&fixture("lightbulb2000.json")).unwrap();
        assert_eq!(
            bulb.rules,
            vec![
                "service.bms.example.com:443/tcp"
                    .parse::<AllowRule>()
                    .unwrap()
            ]
        );
    }

    /// A real MUDgee profile (UNSW, copied by NIST's nist-mud) whose IPv6 destination is a
    /// bare address. There it sits in a local-networks entry (the LAN is allowed anyway);
    /// moved to an entry of its own it is taken as that one host and named, and the rest of
    /// the file still imports.
    #[test]
    fn a_bare_address_is_one_host_and_named_not_the_whole_file_refused() {
        let path = crate::testdata::path("mud/nist-mud/hpprinterMud.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let real = load(&path).unwrap();
        assert!(real.local > 0 && !real.rules.is_empty(), "{real:?}");
        let bare = r#""ietf-mud:mud" : {
              "local-networks" : [ null ]
            },
            "ipv6" : {
              "protocol" : 0,
              "destination-ipv6-network" : "ff05:0:0:0:0:0:0:c""#;
        assert!(
            text.contains(bare),
            "the fixture's entry is as PROVENANCE.md says"
        );
        let own = text.replace(
            bare,
            r#""ipv6" : {
              "protocol" : 17,
              "destination-ipv6-network" : "ff05:0:0:0:0:0:0:c""#,
        );
        let m = parse(&own, "hp.json").unwrap();
        assert_eq!(m.bare_addresses.len(), 1, "{:?}", m.bare_addresses);
        let b = &m.bare_addresses[0];
        assert!(
            b.contains("destination-ipv6-network") && b.contains("ff05:0:0:0:0:0:0:c"),
            "{b}"
        );
        let host: AllowRule = "ff05::c/128".parse().unwrap();
        assert!(
            m.rules.iter().any(|r| r.dest == host.dest),
            "the address became its host prefix: {:?}",
            m.rules
        );
        assert_eq!(
            m.rules.len(),
            real.rules.len() + 1,
            "the rest imports as before"
        );
        // Neither a prefix nor an address is still an error naming the entry.
        let e = parse(&own.replace("ff05:0:0:0:0:0:0:c", "ff05::zz"), "hp.json").unwrap_err();
        assert!(
            e.why.contains("ff05::zz") && e.path.contains("destination-ipv6-network"),
            "{e}"
        );
    }

    #[test]
    fn malformed_files_name_the_json_path() {
        let e = parse(r#"{"ietf-mud:mud": {"mud-url": 3}}"#, "x.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.json: $['ietf-mud:mud']['mud-url']: not a string"
        );
        let e = parse(
            r#"{"ietf-mud:mud": {"mud-url": "u", "from-device-policy": {"access-lists": {"access-list": [{"name": "a"}]}}},
                "ietf-access-control-list:acls": {"acl": [{"name": "a", "aces": {"ace": [
                  {"matches": {"ipv4": {"destination-ipv4-network": "203.0.113.0/24", "protocol": 6},
                               "tcp": {"destination-port": {"operator": "gte", "port": 1}}},
                   "actions": {"forwarding": "accept"}}]}}]}}"#,
            "y.json",
        )
        .unwrap_err();
        assert_eq!(
            e.path,
            "$['ietf-access-control-list:acls']['acl'][0]['aces']['ace'][0]['matches']['tcp']['destination-port']['operator']"
        );
        let e = parse("{not json", "z.json").unwrap_err();
        assert!(e.to_string().starts_with("z.json: $: not JSON"), "{e}");
    }
}
