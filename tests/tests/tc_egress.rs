//! The LAN-egress TC program (sensor-ebpf/src/egress.rs) under BPF_PROG_TEST_RUN: what the
//! gateway sends a device is counted as that device's downstream volume, and DNS answers
//! (and only those) are copied whole to userspace, where they decode to the names and
//! addresses the gateway gave the device.

use std::net::{IpAddr, Ipv4Addr};

use kettlewatch_tests::{
    announce, env,
    frames::{self, cat, eth, ethertype as et},
    xdp::{Program, nonzero_stats},
};
use sensor_common::{MacAddr, proto};
use sensor_user::{discover::dns::decode_answer_frame, kernel::records::KernelEvent};

const DEV: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x17]);
const GW: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);

/// A frame from the gateway to the device: UDP from `sport`.
fn to_device(dst: MacAddr, sport: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &eth(dst, GW, &[], et::IPV4),
        &frames::ipv4(
            [198, 51, 100, 1],
            [198, 51, 100, 23],
            proto::UDP,
            &[],
            0,
            &frames::udp(sport, 40000, payload),
        ),
    ])
}

#[test]
fn a_dns_answer_is_copied_whole_and_counted_for_its_device() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let answer = announce::dns_answer(0x4b57, "cloud.example.com", [203, 0, 113, 9], 300);
    let frame = to_device(DEV, 53, &answer);
    let action = p.run_egress(&frame);
    assert_eq!(action, -1, "the program passes every frame on (TC_NEXT)");
    let evs = p.events();
    assert_eq!(evs.len(), 1, "one record for one answer: {evs:?}");
    let KernelEvent::DnsAnswer(head, data) = &evs[0] else {
        panic!("not a DNS answer record: {:?}", evs[0]);
    };
    assert_eq!(head.key.mac, DEV, "keyed by the device the answer is for");
    assert_eq!(head.dst_mac, GW, "the gateway that answered");
    assert_eq!(head.src_port, 53);
    assert_eq!(head.frame_len as usize, frame.len());
    assert_eq!(data, &frame, "the whole frame is copied");
    let a = decode_answer_frame(data)
        .expect("decodes")
        .expect("an answer");
    assert_eq!(a.names, ["cloud.example.com"]);
    assert_eq!(a.addrs, [IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))]);
    let egress = p.egress();
    assert_eq!(
        egress,
        [(DEV, 1, frame.len() as u64)],
        "downstream volume of the device"
    );
    let s = nonzero_stats(&p.stats());
    assert_eq!(s.get("egress_frames"), Some(&1), "{s:?}");
    assert_eq!(s.get("dns_answers_copied"), Some(&1), "{s:?}");
}

#[test]
fn other_traffic_is_counted_but_not_copied_and_broadcast_belongs_to_no_device() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    // Not from port 53: volume only.
    let ntp = to_device(DEV, 123, &[0x24; 48]);
    p.run_egress(&ntp);
    p.run_egress(&ntp);
    // To every device (a DHCP offer): counted as a frame, not as any device's volume.
    p.run_egress(&to_device(MacAddr::BROADCAST, 67, &[0; 240]));
    // Not IP (ARP): counted as a frame, for the device.
    let arp = cat(&[&eth(DEV, GW, &[], et::ARP), &[0u8; 28]]);
    p.run_egress(&arp);
    assert!(p.events().is_empty(), "no record but for a DNS answer");
    assert_eq!(p.egress(), [(DEV, 3, (2 * ntp.len() + arp.len()) as u64)]);
    let s = nonzero_stats(&p.stats());
    assert_eq!(s.get("egress_frames"), Some(&4), "{s:?}");
    assert_eq!(s.get("dns_answers_copied"), None, "{s:?}");
}
