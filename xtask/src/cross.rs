//! `cargo xtask build --target aarch64-unknown-linux-gnu`: the sensor for arm64 gateways,
//! cross-built with Debian's cross compiler (gcc-aarch64-linux-gnu) as the linker and the
//! C compiler of the crates that build C (ring, SQLite). The eBPF object is built for the
//! BPF target either way; this checks that the one the arm64 binary embeds has the same
//! programs, maps and relocations, byte for byte, as the x86-64 build's, so what was
//! verified on one is what runs on the other. Only its debug information and BTF differ:
//! aya-ebpf's helper bindings live in a module per architecture, and the module's name is
//! in the type names.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::toolchain::{TOOLCHAIN, Tools};

/// The targets this knows a cross linker for: (Rust target, Debian cross gcc, its package,
/// its libc package).
const TARGETS: &[(&str, &str, &str, &str)] = &[(
    "aarch64-unknown-linux-gnu",
    "aarch64-linux-gnu-gcc",
    "gcc-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
)];

/// Cross-builds `kettlewatch` for `target`; returns the binary's path.
pub fn build(tools: &Tools, root: &Path, target: &str, release: bool) -> Result<PathBuf> {
    let Some(&(_, gcc, gcc_pkg, libc_pkg)) = TARGETS.iter().find(|t| t.0 == target) else {
        bail!(
            "no cross build for {target}: known targets are {:?}",
            TARGETS.iter().map(|t| t.0).collect::<Vec<_>>()
        );
    };
    crate::run(Command::new("rustup").args(["target", "add", target, "--toolchain", TOOLCHAIN]))?;
    crate::toolchain::install_packages(&[
        (gcc, gcc_pkg),
        ("/usr/aarch64-linux-gnu/lib/libc.so", libc_pkg),
    ])?;
    let env_target = target.replace('-', "_");
    let mut cmd = tools.cargo();
    cmd.args([
        "build",
        "-p",
        "sensor-user",
        "--bin",
        "kettlewatch",
        "--target",
        target,
    ]);
    if release {
        cmd.arg("--release");
    }
    cmd.env(
        format!("CARGO_TARGET_{}_LINKER", env_target.to_uppercase()),
        gcc,
    )
    .env(format!("CC_{env_target}"), gcc)
    .env(format!("AR_{env_target}"), gcc.replace("-gcc", "-ar"));
    crate::run(&mut cmd)?;
    let profile = if release { "release" } else { "debug" };
    let bin = root
        .join("target")
        .join(target)
        .join(profile)
        .join("kettlewatch");
    compare_objects(
        &root.join("target").join(profile),
        &root.join("target").join(target).join(profile),
    )?;
    eprintln!("xtask: {}", bin.display());
    Ok(bin)
}

/// The eBPF object a build embeds: `sensor` in the newest build-script output of
/// sensor-user under `dir` (older hashes of the build script may linger beside it).
fn embedded_object(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir.join("build"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sensor-user-"))
        })
        .map(|p| p.join("out/sensor"))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

fn compare_objects(host: &Path, cross: &Path) -> Result<()> {
    let cross_obj = embedded_object(cross).context("the cross build left no eBPF object")?;
    let Some(host_obj) = embedded_object(host) else {
        eprintln!(
            "xtask: no x86-64 build of the same profile to compare the eBPF object with (run `cargo xtask build` too)"
        );
        return Ok(());
    };
    let (a, b) = (std::fs::read(&host_obj)?, std::fs::read(&cross_obj)?);
    let (sa, sb) = (
        loaded_sections(&a).context("reading the x86-64 eBPF object")?,
        loaded_sections(&b).context("reading the arm64 eBPF object")?,
    );
    if sa != sb {
        let differ: Vec<&str> = sa
            .iter()
            .filter(|(n, d)| !sb.iter().any(|(m, e)| m == n && e == d))
            .map(|(n, _)| n.as_str())
            .collect();
        bail!(
            "the arm64 binary's eBPF programs differ from the x86-64 build's (sections {differ:?}; {} and {}); rebuild both from the same tree",
            cross_obj.display(),
            host_obj.display()
        );
    }
    eprintln!(
        "xtask: the arm64 binary embeds the same eBPF programs, maps and relocations as the x86-64 build ({} sections identical; debug info and BTF names differ by the bindings' architecture module)",
        sa.len()
    );
    Ok(())
}

/// The sections of an ELF64 little-endian object that the loader uses (programs, maps,
/// data, relocations, symbols), as (name, bytes); debug information and BTF left out.
fn loaded_sections(elf: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    if elf.get(..4)? != b"\x7fELF" || *elf.get(4)? != 2 || *elf.get(5)? != 1 {
        return None;
    }
    let shoff = u64_at(0x28)? as usize;
    let (entsize, count, strndx) = (
        u16_at(0x3a)? as usize,
        u16_at(0x3c)? as usize,
        u16_at(0x3e)? as usize,
    );
    let header = |i: usize| {
        let h = shoff + i * entsize;
        Some((
            u32_at(h)? as usize,
            u32_at(h + 4)?,
            u64_at(h + 0x18)? as usize,
            u64_at(h + 0x20)? as usize,
        ))
    };
    let names = header(strndx)?.2;
    let mut out = Vec::new();
    for i in 0..count {
        let (name_at, kind, offset, size) = header(i)?;
        let name_bytes = elf.get(names + name_at..)?;
        let end = name_bytes.iter().position(|&b| b == 0)?;
        let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
        if [".debug", ".rel.debug", ".BTF", ".rel.BTF"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        // SHT_NOBITS (.bss) has a size but no bytes in the file.
        let bytes = if kind == 8 {
            Vec::new()
        } else {
            elf.get(offset..offset + size)?.to_vec()
        };
        out.push((name, bytes));
    }
    Some(out)
}
