//! The lab: IoT-like devices on a switch, a gateway between the switch and an "internet"
//! namespace with servers. Everything lives in namespaces this lab created and is gone
//! when the lab is dropped.
//!
//! ```text
//!  dev0 ─┐                          gw                       inet
//!  dev1 ─┼─ sw (bridge br0) ── lan0 [198.51.100.1]  wan0 ── up0 [203.0.113.254,
//!  dev2 ─┘                          [2001:db8:1::1] [203.0.113.1]   .10 .20 .30, 2001:db8:2::10 ...]
//! ```

use sensor_common::MacAddr;

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::netns::{Netns, sweep_stale};

/// The gateway's LAN MAC.
pub const GW_MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
/// The gateway's LAN address.
pub const GW_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The gateway's LAN IPv6 address.
pub const GW_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// Servers in the internet namespace.
pub const SERVERS_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(203, 0, 113, 10),
    Ipv4Addr::new(203, 0, 113, 20),
    Ipv4Addr::new(203, 0, 113, 30),
];
/// The same servers' IPv6 addresses.
pub const SERVERS_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x10),
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x20),
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x30),
];

/// One simulated device.
pub struct Device {
    /// Its namespace.
    pub ns: Netns,
    /// Its MAC.
    pub mac: MacAddr,
    /// Its IPv4 address.
    pub v4: Ipv4Addr,
    /// Its IPv6 address.
    pub v6: Ipv6Addr,
}

/// A lab; dropping it deletes every namespace (and so every veth and attachment) it made,
/// devices first, then gateway, internet and switch (field order).
pub struct Lab {
    /// The devices.
    pub devices: Vec<Device>,
    /// The gateway; the sensor attaches to its `lan0`.
    pub gw: Netns,
    /// The internet side, with the servers.
    pub inet: Netns,
    /// The switch.
    pub sw: Netns,
}

/// The MAC of device `i`.
pub fn device_mac(i: usize) -> MacAddr {
    MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x10 + i as u8])
}

/// A MAC as `ip link` writes it.
pub fn mac_str(m: MacAddr) -> String {
    m.to_string()
}

impl Lab {
    /// Builds a lab with `n` devices. Panics (after cleaning up what it made) on failure.
    pub fn build(n: usize) -> Self {
        sweep_stale();
        let p = crate::env::unique("");
        // Declared in this order so that a panic half-way drops (deletes) what exists.
        let sw = Netns::new(&format!("{p}-sw"));
        let gw = Netns::new(&format!("{p}-gw"));
        let inet = Netns::new(&format!("{p}-inet"));
        // A switch has no addresses of its own; without this its bridge and ports would
        // send IPv6 MLD and router solicitations and show up as devices.
        sw.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
        sw.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        sw.ip(&["link", "add", "br0", "type", "bridge"]);
        sw.ip(&["link", "set", "br0", "up"]);

        gw.ip(&[
            "link", "add", "lan0", "type", "veth", "peer", "name", "gw", "netns", &sw.name,
        ]);
        gw.ip(&["link", "set", "lan0", "address", &mac_str(GW_MAC)]);
        gw.ip(&["addr", "add", "198.51.100.1/24", "dev", "lan0"]);
        gw.ip(&["addr", "add", "2001:db8:1::1/64", "dev", "lan0", "nodad"]);
        gw.ip(&["link", "set", "lan0", "up"]);
        sw.ip(&["link", "set", "gw", "master", "br0"]);
        sw.ip(&["link", "set", "gw", "up"]);

        gw.ip(&[
            "link", "add", "wan0", "type", "veth", "peer", "name", "up0", "netns", &inet.name,
        ]);
        gw.ip(&["addr", "add", "203.0.113.1/24", "dev", "wan0"]);
        gw.ip(&["addr", "add", "2001:db8:2::1/64", "dev", "wan0", "nodad"]);
        gw.ip(&["link", "set", "wan0", "up"]);
        gw.sysctl("net.ipv4.ip_forward", "1");
        gw.sysctl("net.ipv6.conf.all.forwarding", "1");

        inet.ip(&["addr", "add", "203.0.113.254/24", "dev", "up0"]);
        inet.ip(&["addr", "add", "2001:db8:2::fe/64", "dev", "up0", "nodad"]);
        for (v4, v6) in SERVERS_V4.iter().zip(SERVERS_V6) {
            inet.ip(&["addr", "add", &format!("{v4}/24"), "dev", "up0"]);
            inet.ip(&["addr", "add", &format!("{v6}/64"), "dev", "up0", "nodad"]);
        }
        inet.ip(&["link", "set", "up0", "up"]);
        inet.ip(&["route", "add", "198.51.100.0/24", "via", "203.0.113.1"]);
        inet.ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:1::/64",
            "via",
            "2001:db8:2::1",
        ]);

        let mut lab = Lab {
            devices: Vec::new(),
            gw,
            inet,
            sw,
        };
        for i in 0..n {
            let ns = Netns::new(&format!("{p}-d{i}"));
            let mac = device_mac(i);
            let v4 = Ipv4Addr::new(198, 51, 100, 10 + i as u8);
            let v6 = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10 + i as u16);
            let port = format!("d{i}");
            ns.ip(&[
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &lab.sw.name,
            ]);
            ns.ip(&["link", "set", "eth0", "address", &mac_str(mac)]);
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
            ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"]);
            ns.ip(&["link", "set", "eth0", "up"]);
            ns.ip(&["route", "add", "default", "via", "198.51.100.1"]);
            ns.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"]);
            lab.sw.ip(&["link", "set", &port, "master", "br0"]);
            lab.sw.ip(&["link", "set", &port, "up"]);
            lab.devices.push(Device { ns, mac, v4, v6 });
        }
        lab
    }
}

/// dnsmasq serving DHCP on the gateway's LAN side, stopped when dropped.
pub struct Dnsmasq {
    child: std::process::Child,
    _dir: crate::env::TempDir,
}

impl Lab {
    /// Starts dnsmasq (DHCP only, leases 198.51.100.100-150) on the gateway's `lan0`.
    pub fn dnsmasq(&self) -> Dnsmasq {
        let dir = crate::env::TempDir::new();
        let child = self
            .gw
            .cmd("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--interface=lan0",
                "--bind-interfaces",
                "--port=0",
                "--dhcp-range=198.51.100.100,198.51.100.150,1h",
                "--dhcp-authoritative",
            ])
            .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        // dnsmasq binds its DHCP socket within milliseconds; give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Dnsmasq { child, _dir: dir }
    }
}

impl Lab {
    /// Starts dnsmasq on the gateway's `lan0` answering DNS for `records` (name, address)
    /// and nothing else (no upstream, no hosts file), as well as DHCP.
    pub fn dnsmasq_dns(&self, records: &[(&str, &str)]) -> Dnsmasq {
        let dir = crate::env::TempDir::new();
        let mut cmd = self.gw.cmd("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--interface=lan0",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--local-ttl=60",
            "--dhcp-range=198.51.100.100,198.51.100.150,1h",
        ]);
        for (name, addr) in records {
            cmd.arg(format!("--address=/{name}/{addr}"));
        }
        let child = cmd
            .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        std::thread::sleep(std::time::Duration::from_millis(300));
        Dnsmasq { child, _dir: dir }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sensor configuration for labs: polls often and reports often, so tests see results
/// within a second.
pub const FAST_CONFIG: &str = "[sensor]\nname = \"lab\"\npoll_interval = \"200ms\"\nflow_report = \"1s\"\nstats_interval = \"1s\"\n";

/// What the sensor logs once it is attached and watching the lab's LAN.
pub const ATTACHED: &str = "watching lan0";

impl Lab {
    /// Sends `n` UDP datagrams of `payload` bytes from device `dev` (its IPv4 or IPv6
    /// address, as `to` is) to `to`.
    pub fn send_udp(&self, dev: usize, to: std::net::SocketAddr, n: usize, payload: usize) {
        let from: std::net::IpAddr = match to {
            std::net::SocketAddr::V4(_) => self.devices[dev].v4.into(),
            std::net::SocketAddr::V6(_) => self.devices[dev].v6.into(),
        };
        self.devices[dev].ns.run(move || {
            let s = std::net::UdpSocket::bind((from, 0)).expect("bind in device namespace");
            for _ in 0..n {
                s.send_to(&vec![0x5a; payload], to).expect("send");
            }
        });
    }

    /// Whether an XDP program is attached to the gateway's `lan0`.
    pub fn xdp_attached(&self) -> bool {
        self.gw.ip(&["link", "show", "lan0"]).contains("xdp")
    }

    /// How many netlink (clsact) egress filters on the gateway's `lan0` run the sensor's
    /// egress program, as `tc filter show` lists them.
    pub fn egress_filters(&self) -> usize {
        let out = self
            .gw
            .cmd("tc")
            .args(["filter", "show", "dev", "lan0", "egress"])
            .output()
            .expect("run tc filter show");
        // One line per filter; the program's name appears twice on it (filter and program).
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(sensor_common::maps::EGRESS_PROGRAM))
            .count()
    }

    /// Starts the sensor on the gateway's `lan0` with `config` (written to a file in the
    /// returned directory, which must live as long as the sensor) and `extra` arguments,
    /// and waits until it is watching.
    pub fn watch(
        &self,
        config: &str,
        extra: &[&str],
    ) -> (crate::env::TempDir, crate::proc::Sensor) {
        let dir = crate::env::TempDir::new();
        let path = dir.join("kw.toml");
        std::fs::write(&path, config).expect("write the lab config");
        let mut args = vec!["--config", path.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        let mut sensor = crate::proc::Sensor::start(&self.gw, "lan0", &args, false);
        sensor.wait_for_log(ATTACHED, std::time::Duration::from_secs(30));
        (dir, sensor)
    }

    /// Sends one UDP datagram from device `dev`'s IPv4 address and `sport` (0: any) to
    /// `to`, broadcast allowed.
    pub fn udp(&self, dev: usize, sport: u16, to: &str, payload: &[u8]) {
        let from: std::net::IpAddr = self.devices[dev].v4.into();
        let to: std::net::SocketAddr = to.parse().expect("a socket address");
        let payload = payload.to_vec();
        self.devices[dev].ns.run(move || {
            let s = std::net::UdpSocket::bind((from, sport)).expect("bind in device namespace");
            s.set_broadcast(true).expect("broadcast");
            s.send_to(&payload, to).expect("send");
        });
    }
}
