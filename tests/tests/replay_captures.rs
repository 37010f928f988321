//! `kettlewatch replay` over third-party captures: per-device, per-destination totals
//! must equal what tshark (an independent reader) counts in the same files; damaged and
//! foreign inputs give clear errors and keep what was read.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use kettlewatch_tests::{
    env::{self, TempDir},
    events,
};
use sensor_common::MacAddr;
use serde_json::Value;

/// The NKU gateway (fixtures README); replay must infer it and leave its frames out.
const NKU_GATEWAY: &str = "c8:bf:4c:77:a0:3a";

type Key = (String, String, u64, u8);

fn replay(args: &[&Path]) -> Output {
    Command::new(env::kettlewatch())
        .arg("replay")
        .args(args)
        .output()
        .expect("run kettlewatch replay")
}

/// `kettlewatch replay ARGS`, which must succeed; its events, schema-checked.
fn replay_ok<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Vec<Value> {
    let out = Command::new(env::kettlewatch())
        .arg("replay")
        .args(args)
        .output()
        .expect("run kettlewatch replay");
    assert!(
        out.status.success(),
        "kettlewatch replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    events::parse(&lines(&out))
}

fn lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Our totals per (device mac, destination, port or icmp type<<8|code, proto number).
fn ours(evs: &[Value]) -> BTreeMap<Key, (u64, u64)> {
    let proto = |p: &str| match p {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        "IPv6-ICMP" => 58,
        n => n.parse().expect("numeric proto"),
    };
    let mut m: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    for e in events::of_type(evs, "flow") {
        let serving = e["iot"]["flow"]["direction"] == "serving";
        let peer = if serving { &e["src_ip"] } else { &e["dest_ip"] };
        let port = match e.get("icmp_type") {
            Some(t) => t.as_u64().unwrap() << 8 | e["icmp_code"].as_u64().unwrap(),
            None => e.get("dest_port").and_then(Value::as_u64).unwrap_or(0),
        };
        let key = (
            e["iot"]["device"]["mac"].as_str().unwrap().to_string(),
            peer.as_str()
                .expect("peer address known in replay")
                .to_string(),
            port,
            proto(e["proto"].as_str().unwrap()),
        );
        let v = m.entry(key).or_default();
        // What a SIEM sums: each record carries what is new since the flow's last one.
        let f = &e["flow"];
        v.0 += f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap();
        v.1 += f["bytes_toserver"].as_u64().unwrap() + f["bytes_toclient"].as_u64().unwrap();
    }
    m
}

/// tshark's view of the same file, keyed by the sensor's documented rule: destination
/// address, destination port, except from a well-known port (<1024) to an ephemeral one
/// (>=1024), where the device serves and the key is its own port.
fn tsharks(path: &Path) -> BTreeMap<Key, (u64, u64)> {
    let fields = [
        "eth.src",
        "ip.dst",
        "ipv6.dst",
        "ip.proto",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
        "icmp.type",
        "icmp.code",
        "icmpv6.type",
        "icmpv6.code",
        "frame.cap_len",
        "ip.frag_offset",
    ];
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(path);
    cmd.args([
        "-o",
        "ip.defragment:FALSE",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-E",
        "separator=|",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('|').collect();
        let num = |i: usize| f[i].parse::<u64>().ok();
        if f[0] == NKU_GATEWAY {
            continue;
        }
        let (dst, proto) = if !f[1].is_empty() {
            (f[1].to_string(), num(3).unwrap() as u8)
        } else if !f[2].is_empty() {
            // The NKU captures carry no IPv6 extension headers, so the first next-header
            // is the transport protocol; the transport fields tell which.
            let p = if !f[4].is_empty() {
                6
            } else if !f[6].is_empty() {
                17
            } else if !f[10].is_empty() {
                58
            } else {
                panic!("IPv6 frame of unknown protocol: {line}")
            };
            (f[2].to_string(), p)
        } else {
            continue; // not IP
        };
        let later_fragment = num(13).is_some_and(|o| o != 0);
        let (sport, dport) = match proto {
            6 if !later_fragment => (num(4).unwrap(), num(5).unwrap()),
            17 if !later_fragment => (num(6).unwrap(), num(7).unwrap()),
            1 if !later_fragment => (0, num(8).unwrap() << 8 | num(9).unwrap()),
            58 => (0, num(10).unwrap() << 8 | num(11).unwrap()),
            _ => (0, 0),
        };
        let serving = (proto == 6 || proto == 17) && sport < 1024 && dport >= 1024;
        let port = if serving { sport } else { dport };
        let v = m.entry((f[0].to_string(), dst, port, proto)).or_default();
        v.0 += 1;
        v.1 += num(12).unwrap();
    }
    m
}

fn nku_captures() -> Option<Vec<PathBuf>> {
    let dir = env::fixtures().join("captures/nku-lifecycle");
    let mut all = Vec::new();
    for sub in [
        "xiaobai_Y2camera_lifecycle",
        "xiaodu_plug_lifecycle",
        "xiaodu_plug",
    ] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "pcap") {
                all.push(p);
            }
        }
    }
    all.sort();
    assert!(all.len() >= 20, "NKU captures present: {all:?}");
    Some(all)
}

#[test]
fn nku_flow_records_summed_per_flow_equal_tsharks_counts() {
    if !env::have_root() || !env::have_tool("tshark") {
        return;
    }
    let Some(captures) = nku_captures() else {
        return;
    };
    for cap in captures {
        let out = replay(&[&cap]);
        assert!(
            out.status.success(),
            "{}: {}",
            cap.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let evs = events::parse(&lines(&out));
        let ours = ours(&evs);
        let theirs = tsharks(&cap);
        assert!(!theirs.is_empty(), "{}: tshark saw flows", cap.display());
        if ours != theirs {
            let mut diff = String::new();
            for k in ours
                .keys()
                .chain(theirs.keys())
                .collect::<std::collections::BTreeSet<_>>()
            {
                if ours.get(k) != theirs.get(k) {
                    diff += &format!("{k:?}: ours {:?} tshark {:?}\n", ours.get(k), theirs.get(k));
                }
            }
            panic!("{}: totals differ:\n{diff}", cap.display());
        }
        // The gateway was inferred and is not a device.
        assert!(
            events::of_type(&evs, "device")
                .iter()
                .all(|d| d["ether"]["src_mac"] != NKU_GATEWAY),
            "{}: gateway reported as a device",
            cap.display()
        );
        let last = &events::of_type(&evs, "stats").last().unwrap()["iot"];
        assert_eq!(last["replay"]["run_errors"], 0);
        assert_eq!(last["kernel"]["frames"], last["replay"]["frames_run"]);
    }
}

#[test]
fn replay_time_comes_from_the_capture() {
    if !env::have_root() {
        return;
    }
    let Some(captures) = nku_captures() else {
        return;
    };
    let setup = captures
        .iter()
        .find(|p| p.ends_with("xiaodu_plug_setup.pcap"))
        .unwrap();
    let evs = events::parse(&lines(&replay(&[setup])));
    // The fixture's notes put the plug's setup on 2024-04-16 around 15:28 local time (UTC+8).
    for e in &evs {
        let ts = e["timestamp"].as_str().unwrap();
        assert!(ts.starts_with("2024-04-16T07:2"), "{ts}");
    }
}

fn truncated_copy(src: &Path, keep: f64, dir: &TempDir) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let cut = (bytes.len() as f64 * keep) as usize;
    let p = dir.join("cut.pcap");
    std::fs::write(&p, &bytes[..cut]).unwrap();
    p
}

#[test]
fn truncated_capture_reports_what_it_read_and_fails() {
    if !env::have_root() {
        return;
    }
    let Some(captures) = nku_captures() else {
        return;
    };
    let dir = TempDir::new();
    let src = captures
        .iter()
        .find(|p| p.ends_with("xiaobai_Y2camera_setup.pcap"))
        .unwrap();
    let cut = truncated_copy(src, 0.6, &dir);
    let out = replay(&[&cut]);
    assert!(!out.status.success(), "a damaged capture is an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.pcap: damaged after frame"), "{err}");
    let evs = events::parse(&lines(&out));
    assert!(
        !events::of_type(&evs, "flow").is_empty(),
        "flows read before the damage are reported"
    );
    let read = events::of_type(&evs, "stats").last().unwrap()["iot"]["replay"]["frames"]
        .as_u64()
        .unwrap();
    let n: u64 = err
        .split("damaged after frame ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .expect("frame number in the error");
    assert_eq!(read, n, "the error names the frames that were read");
}

#[test]
fn non_ethernet_and_non_capture_files_are_refused() {
    let dir = TempDir::new();
    // A pcap header with link type 101 (raw IP) and one 20-byte packet.
    let mut raw = Vec::new();
    raw.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    raw.extend_from_slice(&2u16.to_le_bytes());
    raw.extend_from_slice(&4u16.to_le_bytes());
    raw.extend_from_slice(&[0; 8]);
    raw.extend_from_slice(&65535u32.to_le_bytes());
    raw.extend_from_slice(&101u32.to_le_bytes());
    raw.extend_from_slice(&[0; 8]);
    raw.extend_from_slice(&20u32.to_le_bytes());
    raw.extend_from_slice(&20u32.to_le_bytes());
    raw.extend_from_slice(&[0x45; 20]);
    let rawip = dir.join("rawip.pcap");
    std::fs::write(&rawip, raw).unwrap();
    let out = replay(&[&rawip]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rawip.pcap: link type") && err.contains("not Ethernet"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing replayed");

    let text = dir.join("notes.txt");
    std::fs::write(&text, "this is not a capture\n").unwrap();
    let out = replay(&[&text]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt: not a pcap or pcapng capture"),
        "{err}"
    );

    let out = replay(&[&dir.join("missing.pcap")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pcap: No such file"));
}

#[test]
fn pcapng_with_malformed_payloads_and_vlan_tags_replays() {
    if !env::have_root() {
        return;
    }
    let fx = env::fixtures();
    for name in ["dhcp-fuzz.pcapng", "xiaomi.pcap", "telnet.pcap"] {
        let cap = fx.join("captures/ndpi").join(name);
        let out = replay(&[&cap]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let evs = events::parse(&lines(&out));
        let last = &events::of_type(&evs, "stats").last().unwrap()["iot"];
        let r = &last["replay"];
        let frames = r["frames"].as_u64().unwrap();
        assert!(frames > 0, "{name}");
        assert_eq!(
            r["frames_run"].as_u64().unwrap()
                + r["gateway_frames"].as_u64().unwrap()
                + r["too_short"].as_u64().unwrap(),
            frames,
            "{name}: every frame accounted for"
        );
        assert_eq!(last["kernel"]["frames"], r["frames_run"], "{name}");
        assert!(!events::of_type(&evs, "flow").is_empty(), "{name}");
    }
}

#[test]
fn a_dhcp_request_names_its_device_with_the_values_tcpdump_shows() {
    if !env::have_root() {
        return;
    }
    let fx = env::fixtures();
    // A capture from the relay's link, not a device LAN: the DHCP server's side is the
    // "gateway" here, so the relay's request counts as ingress.
    let cap = fx.join("captures/tcpdump/dhcp-mud.pcap");
    let evs = replay_ok([
        "--gateway-mac".as_ref(),
        "00:23:54:c2:57:02".as_ref(),
        cap.as_os_str(),
    ]);
    // The request came through a relay: the facts belong to the client hardware address.
    let pi = events::last_device(&evs, "b8:27:eb:b8:53:c8");
    let dev = &pi["iot"]["device"];
    assert_eq!(dev["hostname"], "raspberrypi");
    assert_eq!(
        dev["dhcp"]["vendor_class"],
        "dhcpcd-6.11.5:Linux-4.1.18-v7+:armv7l:BCM2709"
    );
    assert_eq!(
        dev["dhcp"]["mud_url"],
        "https://mudctl.example.com/.well-known/mud/v1/rasbp101"
    );
    assert_eq!(
        dev["dhcp"]["parameter_request_list"],
        "1,121,33,3,6,12,15,28,42,51,54,58,59,100,101,119"
    );
    assert_eq!(dev["dhcp"]["client_id"], "01b827ebb853c8");
    let k = &events::of_type(&evs, "stats").last().unwrap()["iot"];
    assert_eq!(k["kernel"]["discovery_copied"], 1);
    assert_eq!(k["sensor"]["discovery_malformed"], 0);
}

#[test]
fn nku_devices_are_found_with_their_vendors_and_categories() {
    if !env::have_root() {
        return;
    }
    let Some(captures) = nku_captures() else {
        return;
    };
    // Each device's whole lifecycle (setup, idle, control, update, delete), in order.
    for (dir, mac, vendor, category) in [
        (
            "xiaobai_Y2camera_lifecycle",
            "78:df:72:24:69:4d",
            "Shanghai Imilab Technology Co.Ltd",
            "camera",
        ),
        (
            "xiaodu_plug_lifecycle",
            "f4:21:ae:9e:8f:cb",
            "Shanghai Xiaodu Technology Limited",
            "plug-switch",
        ),
    ] {
        let caps: Vec<&Path> = captures
            .iter()
            .filter(|p| p.parent().is_some_and(|d| d.ends_with(dir)))
            .map(PathBuf::as_path)
            .collect();
        assert!(caps.len() >= 7, "{dir}: {caps:?}");
        let evs = events::parse(&lines(&replay(&caps)));
        let dev = events::last_device(&evs, mac);
        let d = &dev["iot"]["device"];
        assert_eq!(d["vendor"], vendor, "{dir}");
        assert_eq!(d["mac_scope"], "universal");
        assert_eq!(d["category"], category, "{dir}: {d}");
        assert_eq!(d["category_source"], "observed");
        let confidence = d["confidence"].as_f64().unwrap();
        // Neither says enough for `strong` (0.9): the plug names only its maker's cloud.
        assert!(confidence > 0.0 && confidence < 0.9, "{d}");
        // The evidence names the facts that voted, and at least one voted for the winner.
        let evidence = d["evidence"].as_array().unwrap();
        assert!(
            evidence.iter().any(|e| e["category"] == category),
            "{dir}: {evidence:?}"
        );
        assert!(d["why"].as_str().unwrap().starts_with(category), "{d}");
        assert!(
            !d["dns"].as_array().unwrap().is_empty(),
            "names it asked for"
        );
    }
}

/// Replays one discovery capture (with the gateway MAC when it is not a device LAN) and
/// returns the last `iot.device` of each MAC, and the final stats.
fn discovered(capture: &str, gateway: Option<&str>) -> Option<(BTreeMap<String, Value>, Value)> {
    let fx = env::fixtures();
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if let Some(g) = gateway {
        args.extend(["--gateway-mac".into(), g.into()]);
    }
    args.push(fx.join("captures").join(capture).into());
    let evs = replay_ok(args);
    let devices = events::of_type(&evs, "device")
        .into_iter()
        .map(|d| {
            let d = d["iot"]["device"].clone();
            (d["mac"].as_str().unwrap().to_string(), d)
        })
        .collect();
    let stats = events::of_type(&evs, "stats").last().unwrap()["iot"].clone();
    Some((devices, stats))
}

/// The decoders behind the kernel's copy: each protocol's facts arrive on the device
/// event with the values tcpdump or tshark show for the same capture.
#[test]
fn discovery_captures_give_their_facts_through_the_kernel_path() {
    if !env::have_root() {
        return;
    }
    // tcpdump's lldp_mudurl-vv.out.
    let Some((d, st)) = discovered("tcpdump/lldp_mudurl.pcap", None) else {
        return;
    };
    let sw = &d["00:23:54:c2:57:02"];
    assert_eq!(
        sw["mud_url"],
        "https://imright.mud.example.com/.well-known/mud/v1/vomitv2.0"
    );
    assert_eq!(sw["lldp"]["system_name"], "upstairs.ofcourseimright.com");
    assert_eq!(sw["hostname"], "upstairs.ofcourseimright.com");
    assert_eq!(sw["lldp"]["capabilities"], serde_json::json!(["wlan-ap"]));
    assert_eq!(sw["category"], "network", "an enabled WLAN AP: {sw}");
    assert_eq!(st["sensor"]["discovery_malformed"], 0);

    // tcpdump's dhcpv6-mud.out: a relayed solicit; the facts belong to the client.
    let (d, _) = discovered("tcpdump/dhcpv6-mud.pcap", Some("00:23:54:c2:57:02")).unwrap();
    let pi = &d["b8:27:eb:b8:53:c8"];
    assert_eq!(
        pi["dhcpv6"]["mud_url"],
        "https://mudctl.example.com/.well-known/mud/v1/rasbp101"
    );
    assert_eq!(pi["mud_url"], pi["dhcpv6"]["mud_url"]);
    assert_eq!(pi["dhcpv6"]["enterprise"], 40712);
    assert_eq!(
        pi["dhcpv6"]["vendor_class"],
        "dhcpcd-6.11.5:Linux-4.1.18-v7+:armv7l:BCM2709"
    );

    // Tuya broadcasts, decrypted (values checked against Python's cryptography).
    let (d, st) = discovered("ndpi/tuya_lp.pcap", None).unwrap();
    let tuya = &d["dc:4f:22:bd:40:a1"];
    assert_eq!(tuya["tuya"]["product_key"], "keyvtdmgqcsh5hug");
    assert_eq!(tuya["tuya"]["gw_id"], "50650122dc4f22bd40a1");
    assert_eq!(tuya["category"], "plug-switch");
    assert_eq!(d.len(), 13, "every broadcaster is a device");
    assert!(d.values().all(|x| x["tuya"]["version"] == "3.3"));
    assert_eq!(st["sensor"]["discovery_malformed"], 0);

    // Google devices asking TP-Link plugs for their state: controllers.
    let (d, _) = discovered("ndpi/tplink_shp.pcap", None).unwrap();
    assert_eq!(d.len(), 8);
    for x in d.values() {
        assert_eq!(x["kasa"]["controller"], true, "{x}");
        assert_eq!(x["vendor"], "Google, Inc.");
    }

    // tshark: two MQTT CONNECTs; the password is never kept.
    let (d, _) = discovered("ndpi/mqtt.pcap", None).unwrap();
    let clients: Vec<&Value> = d.values().filter_map(|x| x.get("mqtt")).collect();
    let ids: Vec<&str> = clients
        .iter()
        .map(|m| m["client_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"cbaabcbabacbbbbbaaaaab") && ids.contains(&"P47775ID170W2120"),
        "{ids:?}"
    );
    assert!(clients.iter().all(|m| m.get("password").is_none()));

    // WS-Discovery resolves from a Windows PC; SSDP searches for DIAL receivers.
    let (d, _) = discovered("ndpi/upnp.pcap", None).unwrap();
    let pc = &d["18:db:f2:2f:a0:18"];
    assert_eq!(pc["wsd"]["actions"], serde_json::json!(["Resolve"]));
    assert_eq!(pc["category"], "computer-phone");
    let (d, _) = discovered("ndpi/ssdp-m-search-ua.pcap", None).unwrap();
    let phone = d.values().next().unwrap();
    assert_eq!(
        phone["ssdp"]["searches"],
        serde_json::json!(["urn:dial-multiscreen-org:service:dial:1"])
    );
    assert!(!phone["ssdp"]["user_agents"].as_array().unwrap().is_empty());
}

/// The software inventory through the kernel's first-payload copy: each device's
/// entries carry the product and version tshark shows in the same capture
/// (`ssh.protocol`, `http.user_agent`, `http.server`), with a CPE name where the mapping
/// knows the product, and the payload counters add up.
#[test]
fn first_payloads_name_each_devices_software_with_the_versions_tshark_shows() {
    if !env::have_root() {
        return;
    }
    let software = |capture: &str| {
        let (d, st) = discovered(capture, None).unwrap();
        let sensor = &st["sensor"];
        assert_eq!(
            sensor["payloads"], st["kernel"]["payload_copied"],
            "every copied payload reached the decoders: {st}"
        );
        assert_eq!(
            sensor["payloads"].as_u64().unwrap(),
            ["payloads_decoded", "payloads_unknown", "payloads_malformed"]
                .iter()
                .map(|k| sensor[k].as_u64().unwrap())
                .sum::<u64>()
        );
        d.into_iter()
            .map(|(mac, dev)| {
                let entries: Vec<(String, String, String)> = dev["software"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
                                (s("product"), s("version"), s("cpe"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (mac, (entries, dev))
            })
            .collect::<BTreeMap<String, (Vec<(String, String, String)>, Value)>>()
    };
    let has = |entries: &[(String, String, String)], product: &str, version: &str| {
        entries
            .iter()
            .find(|(p, v, _)| p == product && v == version)
            .map(|(_, _, cpe)| cpe.clone())
    };

    // tshark: the client sends SSH-2.0-OpenSSH_5.3, the server SSH-1.99-OpenSSH_3.9p1.
    let d = software("attacks-dev/arkime/ssh2.pcap");
    let client = &d["00:0c:29:62:b6:75"];
    let server = &d["02:21:59:a1:83:b2"];
    assert_eq!(
        has(&client.0, "OpenSSH", "5.3").as_deref(),
        Some("cpe:2.3:a:openbsd:openssh:5.3:*:*:*:*:*:*:*")
    );
    // NVD keeps OpenSSH's portable suffix in the CPE's update field.
    assert_eq!(
        has(&server.0, "OpenSSH", "3.9p1").as_deref(),
        Some("cpe:2.3:a:openbsd:openssh:3.9:p1:*:*:*:*:*:*")
    );
    assert_eq!(server.1["payload"]["serves"], serde_json::json!(["ssh"]));
    assert_eq!(client.1["payload"]["speaks"], serde_json::json!(["ssh"]));

    // tshark: http.user_agent curl/7.68.0; http.server "Python/3.8 aiohttp/3.6.2".
    let d = software("attacks-dev/corelight-zeek-caldera-detector/ragdoll.pcap");
    assert!(has(&d["02:42:ac:12:00:03"].0, "curl", "7.68.0").is_some());
    let srv = &d["02:42:ac:12:00:02"].0;
    assert!(has(srv, "aiohttp", "3.6.2").is_some_and(|c| c.contains(":aiohttp:aiohttp:3.6.2:")));
    // Named, with no CPE mapping: kept as named.
    assert_eq!(has(srv, "Python", "3.8").as_deref(), Some(""));

    // A Netatmo camera's User-Agent (tshark's http.user_agent) and its TLS hello.
    let d = software("attacks-dev/faucetsdn-networkml/IOT1-test-slice.pcap");
    let cam = &d["70:ee:50:18:34:43"];
    assert!(has(&cam.0, "Android", "4.4.2").is_some());
    assert!(has(&cam.0, "Dalvik", "1.6.0").is_some());
    assert_eq!(
        cam.1["payload"]["tls_names"],
        serde_json::json!(["apicom.netatmo.net"])
    );
    // Never the bytes: no path, no query string, no body.
    assert!(!cam.1.to_string().contains("GET /"), "{}", cam.1);
}

/// nDPI's deliberately malformed DHCP: no crash, every undecodable frame counted.
#[test]
fn malformed_dhcp_is_counted_not_fatal() {
    if !env::have_root() {
        return;
    }
    let Some((_, st)) = discovered("ndpi/dhcp-fuzz.pcapng", None) else {
        return;
    };
    let copied = st["kernel"]["discovery_copied"].as_u64().unwrap();
    let frames = st["sensor"]["discovery_frames"].as_u64().unwrap();
    assert!(copied > 0);
    assert_eq!(frames, copied, "every copied frame reached the decoders");
    assert!(
        st["sensor"]["discovery_malformed"].as_u64().unwrap() > 0,
        "{st}"
    );
}

/// First and last frame times of a capture (ns since the epoch).
fn span(p: &Path) -> (u64, u64) {
    let mut c = sensor_user::ingest::pcap::Capture::open(p).unwrap();
    let (mut first, mut last) = (None, 0);
    while let Some(f) = c.next_frame() {
        let t = f.unwrap().ts_ns;
        first.get_or_insert(t);
        last = t;
    }
    (first.unwrap(), last)
}

/// Learn on each device's setup and idle phases, monitor the rest; the alerts of each
/// phase are printed, and the benign control phases (switching, talking through the
/// camera) raise at most one each.
#[test]
fn nku_learned_on_setup_and_idle_then_monitored() {
    if !env::have_root() {
        return;
    }
    let fx = env::fixtures();
    let dir = fx.join("captures/nku-lifecycle");
    let cam = |p: &str| {
        dir.join(format!(
            "xiaobai_Y2camera_lifecycle/xiaobai_Y2camera_{p}.pcap"
        ))
    };
    let plug = |p: &str| dir.join(format!("xiaodu_plug_lifecycle/xiaodu_plug_{p}.pcap"));
    let camera_phases: Vec<(&str, PathBuf, bool)> = [
        ("setup", true),
        ("idle_local", true),
        ("idle_remote", true),
        ("speak_local", false),
        ("speak_remote", false),
        ("update", false),
        ("delete", false),
    ]
    .into_iter()
    .map(|(p, learn)| (p, cam(p), learn))
    .collect();
    let plug_phases: Vec<(&str, PathBuf, bool)> = [
        ("setup", true),
        ("idle_on_local", true),
        ("idle_off_local", true),
        ("idle_off_remote", true),
        ("idle_on_remote", true),
        ("off_remote", false),
        ("on_remote", false),
        ("off_local", false),
        ("on_local", false),
        ("off_voice", false),
        ("on_voice", false),
        ("off_physical", false),
        ("on_physical", false),
        ("update", false),
        ("delete", false),
    ]
    .into_iter()
    .map(|(p, learn)| (p, plug(p), learn))
    .collect();
    let mut benign_total = 0;
    for (device, phases) in [("camera", camera_phases), ("plug", plug_phases)] {
        let spans: Vec<(u64, u64)> = phases.iter().map(|(_, p, _)| span(p)).collect();
        let learn_end = phases
            .iter()
            .zip(&spans)
            .filter(|((_, _, learn), _)| *learn)
            .map(|(_, s)| s.1)
            .max()
            .unwrap();
        let learn_for = (learn_end - spans[0].0) / 1_000_000_000 + 1;
        let work = TempDir::new();
        let cfg = work.join("kw.toml");
        std::fs::write(
            &cfg,
            format!("[baseline]\nmode = \"learn\"\nlearn_for = \"{learn_for}s\"\n"),
        )
        .unwrap();
        let mut args = vec![std::ffi::OsString::from("--config"), cfg.clone().into()];
        args.extend(phases.iter().map(|(_, p, _)| p.as_os_str().to_owned()));
        let evs = replay_ok(args);
        let st = &events::of_type(&evs, "stats").last().unwrap()["iot"]["policy"];
        assert_eq!(st["mode"], "monitor", "{device}: learning ended");
        assert!(
            st["learned_entries"].as_u64().unwrap() > 5,
            "{device}: {st}"
        );
        let policy_alerts: Vec<&Value> = events::of_type(&evs, "alert")
            .into_iter()
            .filter(|a| {
                matches!(
                    a["iot"]["rule"]["id"].as_str(),
                    Some("unexpected_destination" | "new_port")
                )
            })
            .collect();
        let anomaly_alerts: Vec<&Value> = events::of_type(&evs, "alert")
            .into_iter()
            .filter(|a| a["iot"]["rule"]["source"] == "anomaly")
            .collect();
        for (((name, _, learn), (start, end)), _) in phases.iter().zip(&spans).zip(0..) {
            let in_span = |a: &&&Value| {
                let t = chrono_ns(a["timestamp"].as_str().unwrap());
                t >= *start && t <= *end
            };
            let anomalies: Vec<String> = anomaly_alerts
                .iter()
                .filter(in_span)
                .map(|a| {
                    format!(
                        "{} {}",
                        a["iot"]["rule"]["id"].as_str().unwrap(),
                        a["alert"]["metadata"]
                    )
                })
                .collect();
            println!(
                "{device} {name}: {} anomaly alerts {anomalies:?}",
                anomalies.len()
            );
            if !*learn && *name != "update" && *name != "delete" {
                assert!(
                    anomalies.is_empty(),
                    "{device} {name}: benign phases raise no anomaly: {anomalies:?}"
                );
            }
            let in_phase: Vec<String> = policy_alerts
                .iter()
                .filter(|a| {
                    let t = chrono_ns(a["timestamp"].as_str().unwrap());
                    t >= *start && t <= *end
                })
                .map(|a| {
                    format!(
                        "{} {}:{} {}",
                        a["iot"]["rule"]["id"].as_str().unwrap(),
                        a["dest_ip"].as_str().unwrap_or("-"),
                        a["dest_port"],
                        a["proto"].as_str().unwrap_or("-")
                    )
                })
                .collect();
            println!(
                "{device} {name}{}: {} alerts {in_phase:?}",
                if *learn { " (learning)" } else { "" },
                in_phase.len()
            );
            if *learn {
                assert!(
                    in_phase.is_empty(),
                    "{device} {name}: nothing alerts while learning"
                );
            } else if *name != "update" && *name != "delete" {
                assert!(in_phase.len() <= 1, "{device} {name}: {in_phase:?}");
                benign_total += in_phase.len();
            }
        }
    }
    // Measured: the camera's speak phases reach one new P2P relay port and one new
    // server each; the plug's control phases use only what it used while idle.
    assert!(benign_total <= 2, "{benign_total}");
}

/// An EVE timestamp as ns since the epoch.
fn chrono_ns(t: &str) -> u64 {
    let d = chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.6f%z").unwrap();
    d.timestamp_nanos_opt().unwrap() as u64
}

/// A MAC flood: 100,000 frames from random source MACs. The device table stays within
/// `max_devices`, the rest are counted, and one `device_table_pressure` says so.
#[test]
fn a_mac_flood_keeps_the_device_table_bounded_and_alerts_once() {
    if !env::have_root() {
        return;
    }
    let work = TempDir::new();
    let cap = work.join("flood.pcap");
    {
        let f = std::fs::File::create(&cap).unwrap();
        let mut w = pcap_file::pcap::PcapWriter::new(f).unwrap();
        let mut rng = fastrand::Rng::with_seed(100_000);
        for i in 0..100_000u32 {
            // Locally administered unicast: what MAC-flooding tools send.
            let mut src = [0u8; 6];
            rng.fill(&mut src);
            src[0] = (src[0] & 0xfc) | 0x02;
            let frame = kettlewatch_tests::frames::cat(&[
                &kettlewatch_tests::frames::eth(
                    MacAddr([0x02, 0, 0x5e, 0, 0, 1]),
                    MacAddr(src),
                    &[],
                    0x0800,
                ),
                &kettlewatch_tests::frames::ipv4(
                    [198, 51, 100, 23],
                    [203, 0, 113, 10],
                    17,
                    &[],
                    0,
                    &kettlewatch_tests::frames::udp(40000, 9, &[0; 18]),
                ),
            ]);
            let ts = std::time::Duration::from_micros(1_700_000_000_000_000 + u64::from(i) * 10);
            w.write_packet(&pcap_file::pcap::PcapPacket::new(
                ts,
                frame.len() as u32,
                &frame,
            ))
            .unwrap();
        }
    }
    let cfg = work.join("kw.toml");
    std::fs::write(&cfg, "[sensor]\nmax_devices = 4096\nmax_flows = 8192\n").unwrap();
    let out = Command::new(env::kettlewatch())
        .args([
            "replay",
            "--config",
            cfg.to_str().unwrap(),
            "--gateway-mac",
            "02:00:5e:00:00:01",
        ])
        .arg(&cap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pressure = Vec::new();
    let mut last_stats = None;
    let mut device_events = 0;
    for l in lines(&out) {
        let v: Value = serde_json::from_str(&l).unwrap();
        match v["event_type"].as_str() {
            Some("alert") if v["iot"]["rule"]["id"] == "device_table_pressure" => {
                events::validate(&v);
                pressure.push(v);
            }
            Some("stats") => last_stats = Some(v),
            Some("device") => device_events += 1,
            _ => {}
        }
    }
    assert_eq!(pressure.len(), 1, "{pressure:#?}");
    assert_eq!(pressure[0]["iot"]["rule"]["source"], "sensor");
    let st = last_stats.unwrap();
    events::validate(&st);
    let s = &st["iot"]["sensor"];
    assert!(s["devices_tracked"].as_u64().unwrap() <= 4096, "{s}");
    assert!(s["devices_not_tracked"].as_u64().unwrap() > 0, "{s}");
    assert!(
        device_events <= 2 * 4096,
        "device events are bounded too: {device_events}"
    );
}

#[test]
fn the_iodine_tunnel_is_a_dns_tunnel_and_no_benign_capture_raises_one() {
    if !env::have_root() {
        return;
    }
    let fx = env::fixtures();
    let evs = replay_ok([fx.join("captures/ndpi/dns-tunnel-iodine.pcap")]);
    let dns_alerts = |evs: &[Value]| -> Vec<Value> {
        events::of_type(evs, "alert")
            .into_iter()
            .filter(|a| {
                matches!(
                    a["iot"]["rule"]["id"].as_str(),
                    Some("dns_tunnel" | "dga_activity")
                )
            })
            .cloned()
            .collect()
    };
    let found = dns_alerts(&evs);
    assert_eq!(found.len(), 1, "{found:#?}");
    let a = &found[0];
    assert_eq!(a["iot"]["rule"]["id"], "dns_tunnel");
    assert_eq!(a["alert"]["signature_id"], 9_100_018);
    assert_eq!(
        a["iot"]["device"]["mac"], "08:00:27:9c:e0:b4",
        "the tunnel's client"
    );
    assert_eq!(a["alert"]["metadata"]["domain"][0], "pirate.sea");
    // Every other capture here is benign, setup and control traffic of real devices
    // included: none raises either rule.
    let mut benign: Vec<PathBuf> = nku_captures().unwrap();
    for name in [
        "dns.pcap",
        "mqtt.pcap",
        "upnp.pcap",
        "xiaomi.pcap",
        "tplink_shp.pcap",
    ] {
        benign.push(fx.join("captures/ndpi").join(name));
    }
    for name in ["dns_udp.pcap", "dns_tcp.pcap", "edns-opts.pcap"] {
        benign.push(fx.join("captures/tcpdump").join(name));
    }
    for cap in &benign {
        let evs = replay_ok([cap]);
        assert!(
            dns_alerts(&evs).is_empty(),
            "{}: {:#?}",
            cap.display(),
            dns_alerts(&evs)
        );
    }
}

/// `kettlewatch replay CAPTURE | head -n 3`: the reader has its lines, and the replay
/// ends at once, successfully, without a word about lost lines.
#[test]
fn a_reader_that_closes_the_pipe_ends_the_replay_quietly() {
    if !env::have_root() {
        return;
    }
    let Some(captures) = nku_captures() else {
        return;
    };
    let dir = TempDir::new();
    let stderr = dir.join("stderr");
    let script = format!(
        "{} replay {} 2>{} | head -n 3; exit ${{PIPESTATUS[0]}}",
        env::kettlewatch().display(),
        captures
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        stderr.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        out.status.success(),
        "replay's exit: {:?}\n{said}",
        out.status
    );
    let lines = lines(&out);
    assert_eq!(lines.len(), 3, "head got its lines");
    events::parse(&lines);
    assert!(
        !said.contains("WARN") && !said.contains("ERROR") && !said.contains("lost"),
        "nothing to say about a reader that left: {said}"
    );
}

/// `--format text`: the terminal gets one line per alert and device, the file the JSON
/// a SIEM reads, and the two tell the same story.
#[test]
fn the_text_view_shows_the_alerts_the_json_file_has() {
    if !env::have_root() {
        return;
    }
    let dir = env::fixtures().join("captures/nku-lifecycle/xiaobai_Y2camera_lifecycle");
    let phases = ["setup", "idle_local", "idle_remote", "speak_remote"];
    let caps: Vec<PathBuf> = phases
        .iter()
        .map(|p| dir.join(format!("xiaobai_Y2camera_{p}.pcap")))
        .collect();
    if !caps.iter().all(|c| c.exists()) {
        env::skip("NKU camera captures not found");
        return;
    }
    let tmp = TempDir::new();
    let cfg = tmp.join("kw.toml");
    std::fs::write(&cfg, "[baseline]\nmode = \"learn\"\nlearn_for = \"1h\"\n").unwrap();
    let json = tmp.join("eve.json");
    let out = Command::new(env::kettlewatch())
        .arg("replay")
        .args(&caps)
        .args(["--format", "text", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(&json)
        .output()
        .expect("run kettlewatch replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let evs = events::parse(
        &std::fs::read_to_string(&json)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
    );
    let alerts = events::of_type(&evs, "alert");
    assert!(!alerts.is_empty(), "the camera's new server alerts");
    let alert_lines: Vec<&str> = text.lines().filter(|l| l.contains("  ALERT")).collect();
    assert_eq!(
        alert_lines.len(),
        alerts.len(),
        "one line per alert:\n{text}"
    );
    for a in &alerts {
        let rule = a["iot"]["rule"]["id"].as_str().unwrap();
        assert!(
            alert_lines
                .iter()
                .any(|l| l.ends_with(&format!("[{rule}]"))),
            "{rule} not in the view:\n{text}"
        );
    }
    assert!(
        text.contains("ALERT  78:df:72:24:69:4d (camera): unexpected destination for device -> 110.43.68.240:443/tcp"),
        "{text}"
    );
    assert!(text.contains("DEVICE 78:df:72:24:69:4d"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("  FLOWS  ")),
        "a summary: {text}"
    );
    assert!(!text.contains('{'), "no JSON on the terminal: {text}");
}

/// On a terminal, replay shows its progress (bytes, rate, time left, frames) on stderr;
/// the event stream never carries it.
#[test]
fn replay_progress_is_on_the_terminal_and_never_in_the_stream() {
    if !env::have_root() || !env::have_tool("script") {
        return;
    }
    let cap = env::fixtures()
        .join("captures/nku-lifecycle/xiaobai_Y2camera_lifecycle/xiaobai_Y2camera_idle_local.pcap");
    if !cap.exists() {
        env::skip("NKU camera capture not found");
        return;
    }
    let tmp = TempDir::new();
    let json = tmp.join("eve.json");
    // `script` gives the replay a terminal and copies what it drew to our stdout.
    let cmd = format!(
        "{} replay {} --output {}",
        env::kettlewatch().display(),
        cap.display(),
        json.display()
    );
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .expect("run script");
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{drawn}");
    assert!(
        drawn.contains("frames") && drawn.contains("left"),
        "a progress line on the terminal: {drawn:?}"
    );
    let text = std::fs::read_to_string(&json).unwrap();
    let evs = events::parse(&text.lines().collect::<Vec<_>>());
    assert!(!evs.is_empty());
    assert!(!text.contains("left,"), "progress in the stream");
}

/// The service is what the bytes say, not the port: a learning device speaking IRC on
/// TCP/8000 (arkime's irc.pcap) or TCP/80 (irc-cap-req.pcap) raises `suspicious_service`
/// identified by its payload, its flow records say `app_proto: irc`, and what learning
/// had taken in at the first packet is taken back: the baseline holds nothing of it.
#[test]
fn irc_on_any_port_is_a_suspicious_service_and_never_learned() {
    if !env::have_root() {
        return;
    }
    let fx = env::fixtures();
    let dir = TempDir::new();
    let cfg = dir.join("kw.toml");
    std::fs::write(&cfg, "[baseline]\nmode = \"learn\"\nlearn_for = \"24h\"\n").unwrap();
    for (capture, client, port) in [
        ("irc.pcap", "00:13:72:c4:f1:e1", 8000),
        ("irc-cap-req.pcap", "00:22:83:3f:17:c5", 80),
    ] {
        let state = dir.join(capture);
        let cap = fx.join("captures/attacks-dev/arkime").join(capture);
        let evs = replay_ok([
            "--config".as_ref(),
            cfg.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            cap.as_os_str(),
        ]);
        let found: Vec<&Value> = events::alerts(&evs, "suspicious_service")
            .into_iter()
            .filter(|a| a["iot"]["device"]["mac"] == client)
            .collect();
        assert_eq!(found.len(), 1, "{capture}: {found:#?}");
        let a = found[0];
        assert_eq!(a["dest_port"], port, "{a}");
        assert_eq!(a["alert"]["metadata"]["service"][0], "irc");
        assert_eq!(a["alert"]["metadata"]["identified_by"][0], "payload");
        let protos: Vec<&Value> = events::of_type(&evs, "flow")
            .into_iter()
            .filter(|f| f["ether"]["src_mac"] == client && f["dest_port"] == port)
            .map(|f| &f["app_proto"])
            .collect();
        assert!(
            !protos.is_empty() && protos.iter().all(|p| *p == "irc"),
            "{capture}: {protos:?}"
        );
        let out = Command::new(env::kettlewatch())
            .args(["baseline", "show", "--state-dir"])
            .arg(&state)
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shown}");
        assert!(
            shown.contains("0 entries"),
            "{capture}: nothing of the IRC server is learned: {shown}"
        );
    }
}

/// Beacons: the Caldera sandcat agent checks in over HTTP on TCP/8888 every 30-60 s
/// (corelight's zeek-caldera-detector capture without its 3.5 MB download, whose server sits on the agent's Docker
/// network: `[baseline] local` names the agent alone, so the server stands for one
/// outside). It is caught; no benign capture here raises a beacon.
#[test]
fn a_c2_agents_check_ins_are_a_beacon_and_device_clouds_are_not() {
    if !env::have_root() {
        return;
    }
    let fx = env::fixtures();
    let dir = TempDir::new();
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        "[baseline]\nmode = \"learn\"\nlearn_for = \"24h\"\nlocal = [\"172.18.0.3/32\"]\n",
    )
    .unwrap();
    let cap = fx.join("captures/attacks-dev/corelight-zeek-caldera-detector/sandcat-slice.pcap");
    let evs = replay_ok(["--config".as_ref(), cfg.as_os_str(), cap.as_os_str()]);
    let found = events::alerts(&evs, "beacon");
    assert_eq!(found.len(), 1, "{found:#?}");
    let m = &found[0]["alert"]["metadata"];
    assert_eq!(found[0]["iot"]["device"]["mac"], "02:42:ac:12:00:03");
    assert_eq!(
        (&m["destination"][0], &m["port"][0]),
        (&"172.18.0.2".into(), &"8888".into())
    );
    assert_eq!(m["service"][0], "http");
    assert_eq!(found[0]["alert"]["signature_id"], 9_100_023);
    let interval: f64 = m["interval_s"][0].as_str().unwrap().parse().unwrap();
    assert!((25.0..70.0).contains(&interval), "{m}");
    let mut benign: Vec<PathBuf> = nku_captures().unwrap();
    for name in ["IOT1-test-slice.pcap", "Two-IOT161012-node5-slice.pcap"] {
        benign.push(
            fx.join("captures/attacks-dev/faucetsdn-networkml")
                .join(name),
        );
    }
    for cap in &benign {
        let evs = replay_ok([cap]);
        assert!(
            events::alerts(&evs, "beacon").is_empty(),
            "{}",
            cap.display()
        );
    }
}

/// JA4 lists as intel: the Netatmo camera's ClientHellos (IOT1-test-slice.pcap) have the
/// fingerprint its profile shows; a `format = "ja4"` feed listing it raises
/// `threat_intel_ja4` about the flow, once, naming the feed and what the list calls it;
/// a feed listing another fingerprint raises nothing.
#[test]
fn a_listed_ja4_fingerprint_is_threat_intel_about_the_flow() {
    if !env::have_root() {
        return;
    }
    let cap = env::fixtures().join("captures/attacks-dev/faucetsdn-networkml/IOT1-test-slice.pcap");
    let camera = "70:ee:50:18:34:43";
    let evs = replay_ok([&cap]);
    let dev = &events::last_device(&evs, camera)["iot"]["device"];
    let ja4 = dev["payload"]["ja4"][0]
        .as_str()
        .expect("the camera's JA4")
        .to_string();
    let dir = TempDir::new();
    let run = |listed: &str| {
        let feed = dir.join("tools.ja4");
        std::fs::write(
            &feed,
            format!(
                "# made for this test\n{listed} Lab tool\nt13d190900_9dc949149365_97f8aa674fd9\n"
            ),
        )
        .unwrap();
        let cfg = dir.join("kw.toml");
        std::fs::write(
            &cfg,
            format!(
                "[[intel.feed]]\nname = \"tools\"\npath = \"{}\"\nformat = \"ja4\"\n",
                feed.display()
            ),
        )
        .unwrap();
        replay_ok(["--config".as_ref(), cfg.as_os_str(), cap.as_os_str()])
    };
    let evs = run(&ja4);
    let hits = events::alerts(&evs, "threat_intel_ja4");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    let a = hits[0];
    assert_eq!(a["iot"]["device"]["mac"], camera);
    assert_eq!(a["alert"]["signature_id"], 9_100_024);
    assert_eq!(a["dest_port"], 443, "about the flow: {a}");
    assert_eq!(a["iot"]["intel"]["indicator"], ja4.as_str());
    assert_eq!(a["iot"]["intel"]["feed"], "tools");
    assert_eq!(a["iot"]["intel"]["category"], "Lab tool");
    let stats = events::of_type(&evs, "stats");
    assert_eq!(stats.last().unwrap()["iot"]["intel"]["ja4"], 2);
    let other = run("t13d1516h2_8daaf6152771_e5627efa2ab1");
    assert!(events::alerts(&other, "threat_intel_ja4").is_empty());
}

/// The lab recordings (`tests/fixtures/captures/lab`), replayed as a user replays a
/// capture of their own: each raises its rule for the lab's device, with what named it.
#[test]
fn the_lab_recordings_raise_their_rules_for_the_lab_device() {
    if !env::have_root() {
        return;
    }
    let lab = env::fixtures().join("captures/lab");
    let device = "02:00:5e:10:00:10";
    for (file, rule, key, value) in [
        (
            "stratum-on-443.pcap",
            "suspicious_service",
            "service",
            "stratum",
        ),
        (
            "tor-names-on-443.pcap",
            "suspicious_service",
            "service",
            "tor",
        ),
        ("tls-beacon-on-4443.pcap", "beacon", "service", "tls"),
        ("dns-txt-channel.pcap", "dns_tunnel", "pace", "slow"),
        (
            "ssh-logins-on-2222.pcap",
            "suspicious_service",
            "service",
            "ssh",
        ),
        (
            "ssh-guessing-hydra.pcap",
            "brute_force",
            "pattern",
            "short logins",
        ),
        ("sip-guessing-svcrack.pcap", "brute_force", "service", "sip"),
        (
            "c2-retries-on-5050.pcap",
            "unanswered_retries",
            "port",
            "5050",
        ),
        ("dga-nxdomain-bursts.pcap", "dga_activity", "pace", "slow"),
        (
            "dns-tunnel-own-resolver.pcap",
            "dns_tunnel",
            "resolver_address",
            "203.0.113.30",
        ),
        (
            "http-beacon-by-name-on-8888.pcap",
            "beacon",
            "reached_by",
            "name",
        ),
    ] {
        let cap = lab.join(file);
        let evs = replay_ok([
            "--gateway-mac".as_ref(),
            "02:00:5e:10:00:01".as_ref(),
            cap.as_os_str(),
        ]);
        let found = events::alerts(&evs, rule);
        assert!(!found.is_empty(), "{file}: no {rule}");
        for a in &found {
            assert_eq!(a["iot"]["device"]["mac"], device, "{file}: {a}");
            assert_eq!(a["alert"]["metadata"][key][0], value, "{file}: {a}");
        }
    }
}
