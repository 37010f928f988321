//! Dropping root once the sensor is attached. Everything it does afterwards works on file
//! descriptors it already holds (map reads, the ring buffer, detaching through the
//! bpf_link, the output), which needs no capability on Linux 6.5 and later.

use std::ffi::CString;

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
}

/// Switches to `user` (its uid and primary gid, no supplementary groups), with no
/// capabilities and no way to regain privileges.
pub fn drop_to(user: &str) -> Result<(), DropError> {
    let name = CString::new(user).map_err(|_| DropError::NoUser(user.into()))?;
    // SAFETY: getpwnam returns a pointer to static storage or null; read at once.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(DropError::NoUser(user.into()));
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
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
        // Leaving uid 0 for good clears the permitted and effective capability sets.
        call("setresuid", libc::setresuid(uid, uid, uid))?;
        call(
            "no_new_privs",
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
        )?;
    }
    if effective_caps() != Some(0) {
        return Err(DropError::CapsRemain(user.into()));
    }
    Ok(())
}

/// CapEff of this process, from /proc.
pub fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}
