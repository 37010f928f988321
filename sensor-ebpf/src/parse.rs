//! Frame parsing: Ethernet, up to two VLAN tags, IPv4/IPv6 (extension headers skipped in a
//! bounded loop), then the TCP/UDP/ICMP header. Every read is bounds-checked against
//! `data_end`; a failure names the stats slot that counts it.
//!
//! Kernel: direct packet access between `data` and `data_end`, in XDP (4.8) and TC (4.7)
//! contexts; the verifier rejects a read it cannot prove below `data_end`, hence the checks
//! and the offset mask. `byte_at` (XDP only) calls bpf_xdp_load_bytes (5.18). No maps.
//! Also compiled into the benchmark object (`bin/kw-bench.rs`).

use aya_ebpf::programs::{TcContext, XdpContext};
use sensor_common::{MacAddr, proto, stats};

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_HLEN: usize = 14;
/// How many IPv6 extension headers we follow before calling the chain unsupported.
const MAX_IPV6_EXT: usize = 6;

/// What the data path needs from layer 2.
pub struct L2 {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub ethertype: u16,
    pub vlan: u16,
    /// Offset of the layer-3 header.
    pub l3: usize,
}

/// What the data path needs from layers 3 and 4.
pub struct L3 {
    /// Source, like `dst`.
    pub src: [u32; 4],
    /// Destination, 16 bytes (IPv4 mapped) as four native-order words.
    pub dst: [u32; 4],
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    /// A non-first fragment: no transport header to read.
    pub fragment: bool,
    /// Offset of the TCP or UDP payload (0 for other protocols).
    pub payload: usize,
    /// Bytes of that payload, by the IP header's length (so Ethernet padding is not
    /// payload); 0 for a bare TCP segment or another protocol.
    pub payload_len: u16,
}

/// A frame the parser can read directly: XDP on ingress, TC on egress.
pub trait Packet {
    /// Start of the frame's linear data.
    fn data(&self) -> usize;
    /// End of it.
    fn data_end(&self) -> usize;
}

impl Packet for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
}

impl Packet for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
}

#[inline(always)]
fn bytes<const N: usize, C: Packet>(ctx: &C, off: usize) -> Option<&[u8; N]> {
    let start = ctx.data();
    // The mask keeps the offset provably bounded for the verifier; no frame we parse is
    // anywhere near 64 KiB deep.
    let off = off & 0xffff;
    if start + off + N > ctx.data_end() {
        return None;
    }
    // SAFETY: bounds checked against data_end just above; [u8; N] has alignment 1.
    Some(unsafe { &*((start + off) as *const [u8; N]) })
}

#[inline(always)]
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// Ethernet and VLAN tags.
#[inline(always)]
pub fn l2<C: Packet>(ctx: &C) -> Result<L2, u32> {
    let eth = bytes::<ETH_HLEN, C>(ctx, 0).ok_or(stats::ERR_TRUNCATED_L2)?;
    let mut dst_mac = [0u8; 6];
    let mut src_mac = [0u8; 6];
    dst_mac.copy_from_slice(&eth[0..6]);
    src_mac.copy_from_slice(&eth[6..12]);
    let mut ethertype = be16(eth, 12);
    let mut l3 = ETH_HLEN;
    let mut vlan = 0;
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let tag = bytes::<4, C>(ctx, l3).ok_or(stats::ERR_TRUNCATED_L2)?;
        if vlan == 0 {
            vlan = be16(tag, 0) & 0x0fff;
        }
        ethertype = be16(tag, 2);
        l3 += 4;
    }
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        return Err(stats::ERR_UNSUPPORTED);
    }
    Ok(L2 {
        src_mac: MacAddr(src_mac),
        dst_mac: MacAddr(dst_mac),
        ethertype,
        vlan,
        l3,
    })
}

/// IPv4 header, then the transport header.
#[inline(always)]
pub fn ipv4<C: Packet>(ctx: &C, off: usize) -> Result<L3, u32> {
    let ip = bytes::<20, C>(ctx, off).ok_or(stats::ERR_TRUNCATED_L3)?;
    if ip[0] >> 4 != 4 {
        return Err(stats::ERR_UNSUPPORTED);
    }
    let ihl = (ip[0] & 0x0f) as usize;
    if ihl < 5 {
        return Err(stats::ERR_BAD_IHL);
    }
    let hlen = ihl * 4;
    // Options must be present in full, even though we don't read them.
    if ctx.data() + (off & 0xffff) + hlen > ctx.data_end() {
        return Err(stats::ERR_TRUNCATED_L3);
    }
    let mut l3 = L3 {
        src: [0, 0, u32::from_ne_bytes([0, 0, 0xff, 0xff]), word(ip, 12)],
        dst: [0, 0, u32::from_ne_bytes([0, 0, 0xff, 0xff]), word(ip, 16)],
        proto: ip[9],
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        fragment: be16(ip, 6) & 0x1fff != 0,
        payload: 0,
        payload_len: 0,
    };
    if !l3.fragment {
        l4(ctx, off + hlen, off + be16(ip, 2) as usize, &mut l3)?;
    }
    Ok(l3)
}

/// IPv6 header, extension headers, then the transport header.
#[inline(always)]
pub fn ipv6<C: Packet>(ctx: &C, off: usize) -> Result<L3, u32> {
    let ip = bytes::<40, C>(ctx, off).ok_or(stats::ERR_TRUNCATED_L3)?;
    if ip[0] >> 4 != 6 {
        return Err(stats::ERR_UNSUPPORTED);
    }
    let src = [word(ip, 8), word(ip, 12), word(ip, 16), word(ip, 20)];
    let dst = [word(ip, 24), word(ip, 28), word(ip, 32), word(ip, 36)];
    let mut next = ip[6];
    let end = off + 40 + be16(ip, 4) as usize;
    let mut off = off + 40;
    let mut fragment = false;
    let mut done = false;
    for _ in 0..MAX_IPV6_EXT {
        let hlen = match next {
            // Hop-by-hop, routing, destination options: (len + 1) * 8 bytes.
            0 | 43 | 60 => {
                let h = bytes::<2, C>(ctx, off).ok_or(stats::ERR_TRUNCATED_L3)?;
                next = h[0];
                (h[1] as usize + 1) * 8
            }
            // Fragment header: 8 bytes; a non-zero offset means no transport header here.
            44 => {
                let h = bytes::<8, C>(ctx, off).ok_or(stats::ERR_TRUNCATED_L3)?;
                next = h[0];
                if be16(h, 2) >> 3 != 0 {
                    fragment = true;
                }
                8
            }
            // Authentication header: (len + 2) * 4 bytes.
            51 => {
                let h = bytes::<2, C>(ctx, off).ok_or(stats::ERR_TRUNCATED_L3)?;
                next = h[0];
                (h[1] as usize + 2) * 4
            }
            _ => {
                done = true;
                break;
            }
        };
        // The whole extension header must be there, not just the bytes we read of it.
        if ctx.data() + (off & 0xffff) + hlen > ctx.data_end() {
            return Err(stats::ERR_TRUNCATED_L3);
        }
        off += hlen;
    }
    if !done {
        return Err(stats::ERR_UNSUPPORTED);
    }
    let mut l3 = L3 {
        src,
        dst,
        proto: next,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        fragment,
        payload: 0,
        payload_len: 0,
    };
    if !fragment {
        l4(ctx, off, end, &mut l3)?;
    }
    Ok(l3)
}

/// The transport header at `off`; `end` is where the IP packet ends by its header.
#[inline(always)]
fn l4<C: Packet>(ctx: &C, off: usize, end: usize, l3: &mut L3) -> Result<(), u32> {
    match l3.proto {
        proto::TCP => {
            let h = bytes::<20, C>(ctx, off).ok_or(stats::ERR_TRUNCATED_L4)?;
            l3.src_port = be16(h, 0);
            l3.dst_port = be16(h, 2);
            l3.tcp_flags = h[13];
            l3.payload = off + (h[12] >> 4) as usize * 4;
            l3.payload_len = bytes_between(l3.payload, end);
        }
        proto::UDP => {
            let h = bytes::<8, C>(ctx, off).ok_or(stats::ERR_TRUNCATED_L4)?;
            l3.src_port = be16(h, 0);
            l3.dst_port = be16(h, 2);
            l3.payload = off + 8;
            l3.payload_len = bytes_between(l3.payload, end);
        }
        proto::ICMP | proto::ICMPV6 => {
            let h = bytes::<4, C>(ctx, off).ok_or(stats::ERR_TRUNCATED_L4)?;
            l3.dst_port = be16(h, 0);
        }
        _ => {}
    }
    Ok(())
}

/// `end - start`, or 0 when a lying header puts `end` first; without a branch, so the
/// verifier does not walk the rest of the program once for each case.
#[inline(always)]
fn bytes_between(start: usize, end: usize) -> u16 {
    let d = end as i64 - start as i64;
    (d & !(d >> 63)) as u16
}

/// Four bytes as a native-order word, assembled in registers.
#[inline(always)]
fn word(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// The byte at `off`, if the frame holds it. Through the helper: a one-byte direct read
/// compiles to a bounds check (`p >= end`) the verifier cannot use, and this is only on
/// the rare path (segments to the MQTT port).
#[inline(always)]
pub fn byte_at(ctx: &XdpContext, off: usize) -> Option<u8> {
    let mut b = 0u8;
    // SAFETY: the helper checks the offset against the frame and writes one byte to `b`.
    let r = unsafe {
        aya_ebpf::helpers::bpf_xdp_load_bytes(
            ctx.ctx,
            (off & 0xffff) as u32,
            (&mut b as *mut u8).cast(),
            1,
        )
    };
    (r == 0).then_some(b)
}
