//! Dropping root once the sensor is attached. Everything it does afterwards works on file
//! descriptors it already holds (map reads, the ring buffer, detaching through the
//! bpf_link, the output), which needs no capability on Linux 6.5 and later. Before 6.5,
//! and for a netlink egress filter, [`still_needed`] says what is kept.

use std::ffi::CString;

use caps::{CapSet, Capability, CapsHashSet};

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    /// No such user.
    #[error("no user named {0:?} (see /etc/passwd)")]
    NoUser(String),
    /// A set*id call failed.
    #[error("dropping to {user:?} failed at {step}: {source}")]
    Call {
        user: String,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Capabilities survived the switch.
    #[error("capabilities remain after switching to {0:?}; refusing to run like this")]
    CapsRemain(String),
    /// The capabilities to keep could not be set.
    #[error("keeping {keep} after switching to {user:?} failed: {source}")]
    Keep {
        user: String,
        keep: String,
        #[source]
        source: caps::errors::CapsError,
    },
}

/// The capabilities the sensor still needs once attached, with the reason for each.
///
/// - CAP_BPF before Linux 6.5 while `kernel.unprivileged_bpf_disabled` is set (Debian's
///   default): until 6.5 that sysctl is checked on every bpf() call, so even a map read
///   on a descriptor the process holds is refused without it. 6.5 moved the check to
///   map creation and program loading.
/// - CAP_NET_ADMIN when the egress program is a netlink filter: removing it at stop is a
///   netlink request; a tcx link goes with its descriptor.
pub fn still_needed(
    kernel_before_6_5: bool,
    unprivileged_bpf_disabled: bool,
    netlink_egress: bool,
) -> Vec<(Capability, &'static str)> {
    let mut keep = Vec::new();
    if kernel_before_6_5 && unprivileged_bpf_disabled {
        keep.push((
            Capability::CAP_BPF,
            "map reads: before Linux 6.5 kernel.unprivileged_bpf_disabled gates every bpf() call",
        ));
    }
    if netlink_egress {
        keep.push((
            Capability::CAP_NET_ADMIN,
            "removing the netlink egress filter at stop",
        ));
    }
    keep
}

/// [`still_needed`] for this kernel and its `kernel.unprivileged_bpf_disabled`.
pub fn still_needed_here(netlink_egress: bool) -> Vec<(Capability, &'static str)> {
    let before_6_5 = aya::util::KernelVersion::current()
        .is_ok_and(|v| v < aya::util::KernelVersion::new(6, 5, 0));
    // Unreadable counts as set: keeping CAP_BPF is the answer that still works.
    let disabled = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .map_or(true, |v| v.trim() != "0");
    still_needed(before_6_5, disabled, netlink_egress)
}

/// The uid and primary gid of `user`.
pub fn lookup(user: &str) -> Result<(libc::uid_t, libc::gid_t), DropError> {
    let name = CString::new(user).map_err(|_| DropError::NoUser(user.into()))?;
    // SAFETY: getpwnam returns a pointer to static storage or null; read at once.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(DropError::NoUser(user.into()));
        }
        Ok(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// Switches to `user` (its uid and primary gid, no supplementary groups), with no
/// capabilities but `keep` and no way to regain privileges.
///
/// `keep` holds on the calling thread and threads it starts afterwards; threads started
/// before lose every capability (capability sets are per thread, and only this one asks
/// the kernel to keep them across the uid change).
pub fn drop_to(user: &str, keep: &[Capability]) -> Result<(), DropError> {
    let (uid, gid) = lookup(user)?;
    let call = |step, rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(DropError::Call {
                user: user.into(),
                step,
                source: std::io::Error::last_os_error(),
            })
        }
    };
    // SAFETY: plain syscalls; glibc applies set*id to every thread of the process.
    unsafe {
        call("setgroups", libc::setgroups(0, std::ptr::null()))?;
        call("setresgid", libc::setresgid(gid, gid, gid))?;
        if !keep.is_empty() {
            call("keepcaps", libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0))?;
        }
        // Leaving uid 0 for good clears the effective capability set, and the permitted
        // one unless keepcaps is on.
        call("setresuid", libc::setresuid(uid, uid, uid))?;
    }
    let wanted: CapsHashSet = keep.iter().copied().collect();
    if !keep.is_empty() {
        let set = |which| {
            caps::set(None, which, &wanted).map_err(|source| DropError::Keep {
                user: user.into(),
                keep: names(keep),
                source,
            })
        };
        set(CapSet::Permitted)?;
        set(CapSet::Effective)?;
        // Nothing is passed on to a program it might exec.
        caps::clear(None, CapSet::Inheritable).map_err(|source| DropError::Keep {
            user: user.into(),
            keep: names(keep),
            source,
        })?;
        // SAFETY: plain prctl.
        call("keepcaps off", unsafe {
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0)
        })?;
    }
    // SAFETY: plain prctl.
    call("no_new_privs", unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    })?;
    let expected = keep.iter().fold(0u64, |m, c| m | c.bitmask());
    if effective_caps() != Some(expected) {
        return Err(DropError::CapsRemain(user.into()));
    }
    Ok(())
}

/// Capability names as `ip` and `capsh` print them: `cap_bpf,cap_net_admin`.
pub fn names(caps: &[Capability]) -> String {
    caps.iter()
        .map(|c| c.to_string().to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// CapEff of this process, from /proc.
pub fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_kernels_with_the_sysctl_set_keep_cap_bpf_and_netlink_keeps_net_admin() {
        let caps = |old, sysctl, netlink| -> Vec<Capability> {
            still_needed(old, sysctl, netlink)
                .into_iter()
                .map(|(c, _)| c)
                .collect()
        };
        assert_eq!(caps(false, true, false), []);
        assert_eq!(caps(true, false, false), []);
        assert_eq!(caps(true, true, false), [Capability::CAP_BPF]);
        assert_eq!(caps(false, false, true), [Capability::CAP_NET_ADMIN]);
        assert_eq!(
            caps(true, true, true),
            [Capability::CAP_BPF, Capability::CAP_NET_ADMIN]
        );
        assert_eq!(
            names(&[Capability::CAP_BPF, Capability::CAP_NET_ADMIN]),
            "cap_bpf,cap_net_admin"
        );
    }
}
