//! Loading the eBPF object into the kernel and attaching it to the LAN interface, with
//! errors that tell the user what to do.

use std::{ffi::CString, io};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    programs::{
        LinkOrder, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode, tc,
        tc::{NlOptions, SchedClassifierLinkId, TcAttach},
        xdp::XdpLinkId,
    },
};
use sensor_common::maps;

use crate::config::SensorConfig;

/// The compiled eBPF object, embedded at build time.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sensor"));

/// The benchmark programs' object (`kw_bench_*`), built beside [`OBJECT`]; only the
/// benchmarks and their tests ask for it.
#[cfg(feature = "bench-object")]
pub static BENCH_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/kw-bench"));

/// Map sizes chosen at load time.
#[derive(Clone, Copy, Debug)]
pub struct MapSizes {
    /// Flow-table entries.
    pub flows: u32,
    /// Device-table entries.
    pub devices: u32,
    /// Ring-buffer bytes.
    pub ring_bytes: u32,
}

impl From<&SensorConfig> for MapSizes {
    fn from(c: &SensorConfig) -> Self {
        Self {
            flows: *c.max_flows.get_ref(),
            devices: *c.max_devices.get_ref(),
            ring_bytes: *c.ring_buffer_bytes.get_ref(),
        }
    }
}

/// `--xdp-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// Native, falling back to generic (skb) with a note.
    Auto,
    /// Native (driver) only.
    Native,
    /// Generic (skb) only.
    Skb,
}

/// `--egress-attach`: how the egress (TC) program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EgressAttach {
    /// A tcx link on Linux 6.6 and later, a netlink filter before.
    Auto,
    /// A netlink filter on a clsact qdisc, on any kernel: what `tc filter show` lists, and
    /// the path older kernels take.
    Netlink,
}

/// Why the sensor could not start, phrased for the person running it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not enough privilege.
    #[error(
        "the kernel refused to load the sensor ({0}): run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON"
    )]
    Permission(String),
    /// The kernel lacks something the sensor needs.
    #[error(
        "this kernel cannot run the sensor ({0}): it needs Linux 5.18 or later (ring buffers, XDP links, multi-buffer XDP)"
    )]
    Unsupported(String),
    /// Anything else while loading.
    #[error("loading the eBPF program failed: {0}")]
    Other(String),
    /// No such interface.
    #[error("there is no interface named {0:?} in this network namespace (`ip link` lists them)")]
    NoInterface(String),
    /// An XDP program is already there.
    #[error(
        "interface {0:?} already has an XDP program attached (`ip link show {0}` shows it): detach it first, or run the sensor where that program can chain to it"
    )]
    Busy(String),
    /// The mode asked for is not available on this interface.
    #[error("XDP in {mode} mode is not available on {iface:?} ({detail}); try --xdp-mode auto")]
    Mode {
        mode: &'static str,
        iface: String,
        detail: String,
    },
    /// Attaching failed for another reason.
    #[error("attaching to {iface:?} failed: {detail}")]
    Attach { iface: String, detail: String },
}

fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(n) = err
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(n);
        }
        cur = err.source();
    }
    None
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        s.push_str(": ");
        s.push_str(&err.to_string());
        cur = err.source();
    }
    s
}

fn classify(e: &(dyn std::error::Error + 'static)) -> LoadError {
    match errno_of(e) {
        Some(libc::EPERM) | Some(libc::EACCES) => LoadError::Permission(chain(e)),
        Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => LoadError::Unsupported(chain(e)),
        _ => LoadError::Other(chain(e)),
    }
}

/// How the object runs, fixed at load as read-only globals (the verifier drops what is
/// off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// Take time from the capture clock (a replay), not the kernel's.
    pub replay: bool,
    /// Copy each flow's first payload from a device (`[sensor] payload_sampling`).
    pub payloads: bool,
}

impl Mode {
    /// A live sensor with payload sampling on.
    pub const LIVE: Mode = Mode {
        replay: false,
        payloads: true,
    };
    /// A replay with payload sampling on.
    pub const REPLAY: Mode = Mode {
        replay: true,
        payloads: true,
    };

    /// The same with payload sampling on or off.
    pub const fn payloads(self, on: bool) -> Mode {
        Mode {
            payloads: on,
            ..self
        }
    }
}

/// Loads the object with the given map sizes and loads (verifies) the XDP program.
pub fn load(sizes: MapSizes, mode: Mode) -> Result<Ebpf, LoadError> {
    if OBJECT.is_empty() {
        return Err(LoadError::Other(
            "this binary was built without its eBPF object (AYA_BUILD_SKIP): build it with `cargo xtask build`".into(),
        ));
    }
    raise_memlock();
    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries(maps::FLOWS, sizes.flows)
        .map_max_entries(maps::DEVICES, sizes.devices)
        .map_max_entries(maps::EGRESS, sizes.devices)
        .map_max_entries(maps::EVENTS, sizes.ring_bytes)
        .map_max_entries(maps::DIRTY, maps::dirty_slots(sizes.flows));
    let dirty_mask = maps::dirty_slots(sizes.flows) - 1;
    loader.override_global(maps::GLOBAL_DIRTY_MASK, &dirty_mask, true);
    if mode.replay {
        loader.override_global(maps::GLOBAL_REPLAY, &1u8, true);
    }
    if !mode.payloads {
        loader.override_global(maps::GLOBAL_PAYLOADS, &0u8, true);
    }
    let mut ebpf = loader.load(OBJECT).map_err(|e: EbpfError| classify(&e))?;
    xdp(&mut ebpf)?.load().map_err(|e| classify(&e))?;
    egress(&mut ebpf)?.load().map_err(|e| classify(&e))?;
    payload_program(&mut ebpf)?;
    Ok(ebpf)
}

/// Loads the first-payload program and puts it where the ingress program tail-calls it.
fn payload_program(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let prog: &mut Xdp = ebpf
        .program_mut(maps::PAYLOAD_PROGRAM)
        .ok_or_else(|| LoadError::Other(format!("no program {}", maps::PAYLOAD_PROGRAM)))?
        .try_into()
        .map_err(|e: ProgramError| classify(&e))?;
    prog.load().map_err(|e| classify(&e))?;
    let fd = prog
        .fd()
        .map_err(|e| classify(&e))?
        .try_clone()
        .map_err(|e| LoadError::Other(format!("{}: {e}", maps::PAYLOAD_PROGRAM)))?;
    let map = ebpf
        .map_mut(maps::PAYLOAD_PROG)
        .ok_or_else(|| LoadError::Other(format!("no map {}", maps::PAYLOAD_PROG)))?;
    let mut jump: aya::maps::ProgramArray<_> = map
        .try_into()
        .map_err(|e: aya::maps::MapError| LoadError::Other(e.to_string()))?;
    jump.set(0, &fd, 0)
        .map_err(|e| LoadError::Other(format!("{}: {e}", maps::PAYLOAD_PROG)))
}

/// The TC egress program of a loaded object.
pub fn egress(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, LoadError> {
    let prog = ebpf
        .program_mut(maps::EGRESS_PROGRAM)
        .ok_or_else(|| LoadError::Other(format!("no program {}", maps::EGRESS_PROGRAM)))?;
    prog.try_into().map_err(|e: ProgramError| classify(&e))
}

/// Attaches the egress program to `iface` and says how: `"tcx"`, a link that goes away
/// with the process (Linux 6.6 and later), or `"netlink"`, a filter on a clsact qdisc
/// (before 6.6, or when asked for).
pub fn attach_egress(
    ebpf: &mut Ebpf,
    iface: &str,
    how: EgressAttach,
) -> Result<(SchedClassifierLinkId, &'static str), LoadError> {
    let name = CString::new(iface).map_err(|_| LoadError::NoInterface(iface.into()))?;
    let prog = egress(ebpf)?;
    if how == EgressAttach::Auto
        && aya::util::KernelVersion::current()
            .is_ok_and(|v| v >= aya::util::KernelVersion::new(6, 6, 0))
    {
        let tcx = TcAttach::Tcx {
            attach_type: TcAttachType::Egress,
            order: LinkOrder::default(),
        };
        return prog
            .attach(name.as_c_str(), tcx)
            .map(|l| (l, "tcx"))
            .map_err(|e| attach_error(&e, iface, "tc"));
    }
    // Netlink attachment needs the qdisc; it may exist already.
    let _ = tc::qdisc_add_clsact(name.as_c_str());
    remove_leftover_egress(name.as_c_str(), iface);
    let netlink = TcAttach::Netlink {
        parent: TcAttachType::Egress.into(),
        options: NlOptions::default(),
    };
    prog.attach(name.as_c_str(), netlink)
        .map(|l| (l, "netlink"))
        .map_err(|e| attach_error(&e, iface, "tc"))
}

/// A netlink filter outlives the process that attached it: after a kill -9 or a crash the
/// last run's egress program is still on the interface, copying DNS answers to a ring
/// nobody reads. Removed here, so that one run has one filter.
fn remove_leftover_egress(name: &std::ffi::CStr, iface: &str) {
    match tc::qdisc_detach_program(name, TcAttachType::Egress.into(), maps::EGRESS_PROGRAM) {
        Ok(()) => tracing::warn!(
            iface = %iface,
            program = maps::EGRESS_PROGRAM,
            "removed the egress filter an earlier run left attached (it was killed or crashed)"
        ),
        Err(tc::TcError::IoError(e)) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(
            iface = %iface,
            error = %e,
            "could not look for an egress filter an earlier run left attached"
        ),
    }
}

/// The XDP program of a loaded object.
pub fn xdp(ebpf: &mut Ebpf) -> Result<&mut Xdp, LoadError> {
    let prog = ebpf
        .program_mut(maps::XDP_PROGRAM)
        .ok_or_else(|| LoadError::Other(format!("no program {}", maps::XDP_PROGRAM)))?;
    prog.try_into().map_err(|e: ProgramError| classify(&e))
}

/// Attaches the loaded XDP program to `iface` through a bpf_link, so that the program
/// goes away with the process however it ends. Returns the mode it got.
pub fn attach(
    ebpf: &mut Ebpf,
    iface: &str,
    mode: AttachMode,
) -> Result<(XdpLinkId, &'static str), LoadError> {
    let name = CString::new(iface).map_err(|_| LoadError::NoInterface(iface.into()))?;
    let prog = xdp(ebpf)?;
    let try_mode = |prog: &mut Xdp, m: XdpMode, label: &'static str| {
        prog.attach(name.as_c_str(), m)
            .map_err(|e| attach_error(&e, iface, label))
    };
    match mode {
        AttachMode::Native => try_mode(prog, XdpMode::Driver, "native").map(|l| (l, "native")),
        AttachMode::Skb => try_mode(prog, XdpMode::Skb, "skb").map(|l| (l, "skb")),
        AttachMode::Auto => match try_mode(prog, XdpMode::Driver, "native") {
            Ok(l) => Ok((l, "native")),
            Err(LoadError::Mode { detail, .. }) => {
                tracing::warn!(
                    iface = %iface,
                    detail = %detail,
                    "native XDP is not available; using generic (skb) mode, which sees the same frames at a higher cost"
                );
                try_mode(prog, XdpMode::Skb, "skb").map(|l| (l, "skb"))
            }
            Err(e) => Err(e),
        },
    }
}

fn attach_error(e: &ProgramError, iface: &str, mode: &'static str) -> LoadError {
    if matches!(e, ProgramError::UnknownInterface { .. }) {
        return LoadError::NoInterface(iface.into());
    }
    match errno_of(e) {
        Some(libc::ENODEV) => LoadError::NoInterface(iface.into()),
        Some(libc::EBUSY) | Some(libc::EEXIST) => LoadError::Busy(iface.into()),
        Some(libc::EPERM) | Some(libc::EACCES) => LoadError::Permission(chain(e)),
        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => LoadError::Mode {
            mode,
            iface: iface.into(),
            detail: chain(e),
        },
        _ => LoadError::Attach {
            iface: iface.into(),
            detail: chain(e),
        },
    }
}

/// Older kernels charge BPF memory to RLIMIT_MEMLOCK; newer ones (5.11+) to the cgroup,
/// where raising the limit fails harmlessly without CAP_SYS_RESOURCE.
fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        tracing::debug!(
            error = %io::Error::last_os_error(),
            "could not raise RLIMIT_MEMLOCK; fine on kernels that account BPF memory per cgroup"
        );
    }
}
