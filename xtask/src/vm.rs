//! `cargo xtask vm-test`: the kernel-facing tests inside a Debian kernel booted under
//! qemu, so the verifier and attach paths of the kernels gateways run are exercised here.
//!
//! `xtask/vm/run-in-vm.sh` does the booting: the kernel package is downloaded from
//! Debian and unpacked (never installed on this host), the host's root is shared
//! read-only into the guest over virtiofs (Debian's cloud kernels have no 9p) with a RAM
//! overlay on top, so the test binaries run at their own paths with their own libraries,
//! and the guest's exit status comes back through a shared work directory. KVM is used
//! when a guest reaches its init under it, TCG otherwise. The VM and its file servers are
//! killed on every exit path of the script.

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::toolchain::Tools;

/// The test targets that touch the kernel, and which of their tests run in the VM (none
/// named: all). Every program load and BPF_PROG_TEST_RUN test runs; of the capture replays
/// and the lab, the ones whose paths differ by kernel, since under TCG a replay of the
/// larger captures takes minutes where the host takes a second. `--all` runs every test
/// of these targets. About 8 minutes under TCG here.
const KERNEL_TESTS: &[(&str, &[&str])] = &[
    ("xdp_program", &[]),
    ("tc_egress", &[]),
    ("xdp_policy", &[]),
    ("xdp_intel", &[]),
    (
        "replay_captures",
        &["discovery_captures_give_their_facts_through_the_kernel_path"],
    ),
    ("lab_run", LAB),
];

/// `--quick` (what CI runs, about 3 minutes under TCG): both programs through the
/// verifier with its budget, each parse path, the discovery and egress copies, the flow
/// change log, a policy drop and an intel hit, and three lab tests.
const QUICK_TESTS: &[(&str, &[&str])] = &[
    (
        "xdp_program",
        &[
            "both_programs_verify_well_under_the_instruction_limit",
            "ipv4_udp_counts_flow_device_and_reports_once",
            "ipv6_with_hop_by_hop_and_fragment_headers",
            "single_and_double_vlan_tags",
            "discovery_frames_are_copied_whole_and_nothing_else_is",
            "a_poll_reads_only_the_flows_that_changed",
            "a_cached_flow_the_lru_evicted_is_created_again_at_the_next_poll_with_its_frames",
        ],
    ),
    (
        "tc_egress",
        &["a_dns_answer_is_copied_whole_and_counted_for_its_device"],
    ),
    (
        "xdp_policy",
        &["enforce_drops_every_frame_of_a_blocked_flow_until_it_is_allowed"],
    ),
    (
        "xdp_intel",
        &["hits_and_misses_for_ipv4_and_ipv6_with_the_longest_prefix_deciding"],
    ),
    (
        "lab_run",
        // Before 6.6 the default egress path is netlink, so the first `--user` test
        // covers what the second adds on newer kernels.
        &[
            "known_traffic_appears_in_flow_events_with_exact_counts",
            "a_netlink_egress_filter_left_by_kill_9_is_replaced_at_the_next_start",
            "run_as_an_unprivileged_user_after_attaching",
        ],
    ),
];

/// The lab tests whose paths differ by kernel: a device's traffic end to end, the
/// egress attachment (netlink before 6.6) with kill -9, `--user`, a clean stop.
const LAB: &[&str] = &[
    "known_traffic_appears_in_flow_events_with_exact_counts",
    "a_netlink_egress_filter_left_by_kill_9_is_replaced_at_the_next_start",
    "run_as_an_unprivileged_user_after_attaching",
    "run_as_an_unprivileged_user_keeps_net_admin_for_a_netlink_egress_filter",
    "sigterm_detaches_and_exits_zero",
];

/// Which tests a run takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// [`QUICK_TESTS`].
    Quick,
    /// [`KERNEL_TESTS`].
    Default,
    /// Every test of the targets.
    All,
}

/// Debian's kernel package for `series` (the newest `-cloud-amd64` build the archive
/// has), as the directory name the script fetches into.
fn kernel_dir(series: &str) -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["search", "--names-only"])
        .arg(format!(
            "^linux-image-{}\\.0-[0-9]+-cloud-amd64-unsigned$",
            series.replace('.', "\\.")
        ))
        .output()
        .context("apt-cache (Debian's package index) is needed to find the kernel")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let newest = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|p| {
            let v = p.strip_prefix("linux-image-")?.strip_suffix("-unsigned")?;
            let abi: u32 = v.split('-').nth(1)?.parse().ok()?;
            Some((abi, v.to_string()))
        })
        .max();
    match newest {
        Some((_, v)) => Ok(format!("linux-{v}")),
        None => bail!(
            "no linux-image-{series}.0-*-cloud-amd64-unsigned in Debian's index (apt-get update?)"
        ),
    }
}

/// Builds the test binaries, boots the kernel and runs them inside; fails when any fails.
pub fn run(
    tools: &Tools,
    root: &Path,
    kernel: &str,
    arch: &str,
    selection: Selection,
    filter: &[String],
) -> Result<()> {
    let series = match kernel {
        "6.1" => "6.1",
        other => bail!("vm-test --kernel {other}: only 6.1 (Debian 12's kernel) is known"),
    };
    match arch {
        "x86_64" => {}
        "aarch64" => return arm64(tools, root),
        other => bail!("vm-test --arch {other}: x86_64 or aarch64"),
    }
    // The sensor the lab and replay tests start is the release build: unoptimised code
    // under TCG takes minutes to start. CI's package stage has built it already.
    crate::build_sensor_release(tools)?;
    let mut cargo = tools.cargo();
    cargo.args(["test", "-p", "kettlewatch-tests", "--no-run"]);
    let tests = if selection == Selection::Quick {
        QUICK_TESTS
    } else {
        KERNEL_TESTS
    };
    for (t, _) in tests {
        cargo.args(["--test", t]);
    }
    let out = cargo.output().context("cargo test --no-run")?;
    let said = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("building the tests failed:\n{said}");
    }
    // cargo names each test executable: "Executable tests/NAME.rs (target/debug/deps/NAME-HASH)".
    let bins: Vec<(String, String)> = said
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Executable tests/")?;
            let (file, path) = rest.split_once(" (")?;
            let name = file.strip_suffix(".rs")?;
            Some((
                name.to_string(),
                root.join(path.strip_suffix(')')?).display().to_string(),
            ))
        })
        .collect();
    if bins.len() != tests.len() {
        bail!(
            "expected {} test binaries, cargo said {bins:?}",
            tests.len()
        );
    }
    let cache = crate::toolchain::cache_dir().join("vm");
    std::fs::create_dir_all(&cache)?;
    let kdir = cache.join(kernel_dir(series)?);
    let work = root.join("target/vm-test");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    // The guest runs each binary and leaves its output and status in the work directory.
    let mut guest = String::from("set -u\ncd /\nfailed=0\nuname -r\n");
    let kw = root.join("target/release/kettlewatch");
    for (name, exe) in &bins {
        // A filter given on the command line wins; otherwise this target's selection.
        let chosen = tests
            .iter()
            .find(|(t, _)| t == name)
            .map_or(&[][..], |(_, tests)| *tests);
        let select = if !filter.is_empty() {
            filter.join(" ")
        } else if selection == Selection::All || chosen.is_empty() {
            String::new()
        } else {
            format!("--exact {}", chosen.join(" "))
        };
        guest += &format!(
            "echo \"== {name}\"\nKETTLEWATCH_BIN='{}' CI=true KW_TIME_SCALE=10 RUST_BACKTRACE=0 '{exe}' --test-threads=1 {select} > '{}/{name}.log' 2>&1\nrc=$?\necho \"$rc\" > '{}/{name}.rc'\ngrep -E '^test result|^    [a-z_]+$' '{}/{name}.log'\n[ $rc = 0 ] || failed=1\n",
            kw.display(),
            work.display(),
            work.display(),
            work.display(),
        );
    }
    guest += "exit $failed\n";
    let script = work.join("guest.sh");
    std::fs::write(&script, guest)?;
    let status = Command::new("bash")
        .arg(root.join("xtask/vm/run-in-vm.sh"))
        .arg(&kdir)
        .arg(&work)
        .arg("--")
        .arg("sh")
        .arg(&script)
        .env("VM_TIMEOUT", "1500")
        .status()
        .context("running xtask/vm/run-in-vm.sh")?;
    let mut summary = Vec::new();
    for (name, _) in &bins {
        let rc = std::fs::read_to_string(work.join(format!("{name}.rc")))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "did not run".into());
        summary.push(format!(
            "{name}: {}",
            if rc == "0" {
                "ok".into()
            } else {
                format!("FAILED ({rc}), see target/vm-test/{name}.log")
            }
        ));
    }
    println!(
        "\nvm-test on Linux {series} (x86_64):\n  {}",
        summary.join("\n  ")
    );
    if !status.success() {
        bail!(
            "vm-test failed on Linux {series} (exit {:?})",
            status.code()
        );
    }
    Ok(())
}

/// The capture the arm64 guest replays: a camera's setup (DHCP, DNS, its cloud), small
/// enough for an emulated CPU.
const ARM64_CAPTURE: &str =
    "tests/fixtures/captures/nku-lifecycle/xiaobai_Y2camera_lifecycle/xiaobai_Y2camera_setup.pcap";

/// arm64: the cross-built release sensor in Debian's arm64 6.1 under qemu-system-aarch64
/// (`xtask/vm/arm64-vm.sh`: programs load, a capture replays, XDP and the egress program
/// attach to lo and detach), then the guest's events against the x86-64 replay of the
/// same capture.
fn arm64(tools: &Tools, root: &Path) -> Result<()> {
    // The host build first: the cross build checks its eBPF object against this one's.
    crate::build_sensor_release(tools)?;
    let bin = crate::cross::build(tools, root, "aarch64-unknown-linux-gnu", true)?;
    let capture = root.join(ARM64_CAPTURE);
    let out = root.join("target/vm-test/arm64");
    let _ = std::fs::remove_dir_all(&out);
    crate::run(
        Command::new("bash")
            .arg(root.join("xtask/vm/arm64-vm.sh"))
            .arg(&bin)
            .arg(&capture)
            .arg(&out),
    )?;
    let state = out.join("x86-state");
    let host = Command::new(root.join("target/release/kettlewatch"))
        .arg("replay")
        .arg("--state-dir")
        .arg(&state)
        .arg(&capture)
        .output()
        .context("the x86-64 replay")?;
    if !host.status.success() {
        bail!(
            "the x86-64 replay failed: {}",
            String::from_utf8_lossy(&host.stderr)
        );
    }
    let guest = std::fs::read_to_string(out.join("eve.json"))?;
    let (x86, arm) = (
        comparable(&String::from_utf8_lossy(&host.stdout)),
        comparable(&guest),
    );
    if x86.is_empty() {
        bail!("the x86-64 replay wrote no events");
    }
    if x86 != arm {
        let only_x86: Vec<_> = x86.iter().filter(|l| !arm.contains(l)).take(3).collect();
        let only_arm: Vec<_> = arm.iter().filter(|l| !x86.contains(l)).take(3).collect();
        bail!(
            "arm64 and x86-64 replays differ: {} vs {} events; only on x86-64: {only_x86:#?}; only on arm64: {only_arm:#?}",
            arm.len(),
            x86.len()
        );
    }
    eprintln!(
        "xtask: arm64 replay gave the same {} events as x86-64 (host and stats lines aside)",
        x86.len()
    );
    Ok(())
}

/// A replay's events, sorted, without what names the machine: the `host` field and the
/// stats lines (their counters include per-CPU cache figures of the machine).
fn comparable(lines: &str) -> Vec<String> {
    let mut v: Vec<String> = lines
        .lines()
        .filter(|l| l.starts_with('{') && !l.contains("\"event_type\":\"stats\""))
        .map(|l| {
            let start = l.find("\"host\":\"").map(|i| i + "\"host\":\"".len());
            match start.and_then(|s| l[s..].find('"').map(|e| (s, s + e))) {
                Some((s, e)) => format!("{}{}", &l[..s], &l[e..]),
                None => l.to_string(),
            }
        })
        .collect();
    v.sort();
    v
}
