//! What a test needs from the machine, and the rule when it is missing: fail under
//! `CI=true`, otherwise print "skipping: why" and return.

use std::path::PathBuf;

/// Whether we run under CI, where a missing prerequisite is a failure.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing prerequisite: panics under CI, prints a skip note otherwise.
/// Returns so the caller can `return` right after.
pub fn skip(why: &str) {
    if ci() {
        panic!("CI=true and this test cannot run: {why}");
    }
    eprintln!("skipping: {why}");
}

/// Root (CAP_BPF, CAP_NET_ADMIN, namespaces); prints why not otherwise.
pub fn have_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip("needs root for eBPF and network namespaces");
    false
}

/// A program on PATH; prints why not otherwise.
pub fn have_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| PathBuf::from(d).join(tool).is_file());
    if !found {
        skip(&format!("needs `{tool}` (cargo xtask setup installs it)"));
    }
    found
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// `tests/fixtures`: the third-party captures and files the tests read, kept in the
/// repository with their licences so a fresh clone runs every test.
pub fn fixtures() -> PathBuf {
    let dir = workspace().join("tests/fixtures");
    assert!(
        dir.join("README.md").is_file(),
        "{} is missing: the checkout is incomplete",
        dir.display()
    );
    dir
}

/// The `kettlewatch` binary: `$KETTLEWATCH_BIN` (set by `cargo xtask test`) or the
/// workspace's debug build.
pub fn kettlewatch() -> PathBuf {
    let bin = std::env::var_os("KETTLEWATCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/debug/kettlewatch"));
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo xtask test`, which builds it",
        bin.display()
    );
    bin
}

/// A name no other test run on this machine uses: `kw<pid>x<n>`.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "kw{}x{}{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `/tmp/<unique>`.
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(unique("tmp"));
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `timeout` stretched by `KW_TIME_SCALE` (a whole number, default 1): `cargo xtask
/// vm-test` sets it, because under qemu's TCG a program load that takes milliseconds here
/// takes seconds. Only waits for something to happen are stretched, never a measurement.
pub fn slow(timeout: std::time::Duration) -> std::time::Duration {
    let scale = std::env::var("KW_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    timeout * scale
}
