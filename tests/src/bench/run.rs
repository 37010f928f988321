//! The benchmarks' BPF_PROG_TEST_RUN primitives: test frames by kind, timed runs,
//! medians and spreads, and this process's CPU time and resident memory.

use anyhow::{Context as _, Result};
use aya::Ebpf;
use aya::programs::{TestRun as _, TestRunOptions, Xdp};
use sensor_common::{MacAddr, proto};

use crate::frames::{self, cat, eth, ethertype as et};

pub const DEV: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x17]);
pub const GW: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);

#[derive(Clone, Copy)]
pub enum Kind {
    V4Tcp,
    V6Udp,
    VlanV4Udp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::V4Tcp => "IPv4/TCP",
            Kind::V6Udp => "IPv6/UDP",
            Kind::VlanV4Udp => "802.1Q IPv4/UDP",
        }
    }

    /// A 64-byte-class frame to destination number `n`.
    pub fn frame(self, n: u32) -> Vec<u8> {
        let b = n.to_be_bytes();
        match self {
            Kind::V4Tcp => cat(&[
                &eth(GW, DEV, &[], et::IPV4),
                &frames::ipv4(
                    [198, 51, 100, 23],
                    [10, b[1], b[2], b[3]],
                    proto::TCP,
                    &[],
                    0,
                    &frames::tcp(50000, 443, 0x10, &[0; 6]),
                ),
            ]),
            Kind::V6Udp => {
                let mut dst = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                dst[12..].copy_from_slice(&b);
                cat(&[
                    &eth(GW, DEV, &[], et::IPV6),
                    &frames::ipv6(
                        [
                            0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17,
                        ],
                        dst,
                        proto::UDP,
                        &frames::udp(50000, 443, &[0; 10]),
                    ),
                ])
            }
            Kind::VlanV4Udp => cat(&[
                &eth(GW, DEV, &[(et::VLAN, 10)], et::IPV4),
                &frames::ipv4(
                    [198, 51, 100, 23],
                    [10, b[1], b[2], b[3]],
                    proto::UDP,
                    &[],
                    0,
                    &frames::udp(50000, 123, &[0; 14]),
                ),
            ]),
        }
    }
}

pub fn prog<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    let p: &mut Xdp = ebpf.program_mut(name).context("program")?.try_into()?;
    Ok(p)
}

/// Average ns per run over `repeat` runs of one frame, as the kernel measures it.
pub fn repeat_ns(p: &Xdp, frame: &[u8], repeat: u32) -> Result<f64> {
    let r = p.test_run(TestRunOptions {
        data_in: Some(frame),
        repeat,
        ..TestRunOptions::default()
    })?;
    Ok(r.duration.as_nanos() as f64)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// "median (lowest-highest)" of the rounds: one figure and how much it moved.
pub fn spread(v: &[f64]) -> String {
    spread_with(v, 1)
}

/// [`spread`] with `digits` decimals.
pub fn spread_with(v: &[f64], digits: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = median(v.to_vec());
    format!("{m:.digits$} ({lo:.digits$}-{hi:.digits$})")
}

pub fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of this process so far (user + system), ms.
pub fn cpu_ms() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}
