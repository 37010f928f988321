//! Builds the eBPF object with aya-build. `cargo xtask` puts bpf-linker on PATH and runs
//! this under the pinned toolchain; see ../shared/toolchain.md for why stable works.
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN")
        .context("RUSTUP_TOOLCHAIN is unset: build through `cargo xtask build`")?;
    // The toolchain name may carry the host triple; aya-build wants what `rustup run` takes.
    let toolchain: &'static str = Box::leak(toolchain.into_boxed_str());
    if !skipped() && which_bpf_linker().is_none() {
        return Err(anyhow!(
            "bpf-linker is not on PATH: build through `cargo xtask build`, which installs it"
        ));
    }
    if skipped() {
        // The parser fuzz targets build this crate without the eBPF object (nightly with
        // sanitizers, no bpf-linker); the loader then finds an empty object and says so.
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
        std::fs::write(out.join("sensor"), [])?;
        std::fs::write(out.join("kw-bench"), [])?;
    }
    // Stable rustc builds `core` for the bpf target only with RUSTC_BOOTSTRAP; set it for
    // the nested eBPF build alone (aya-build reads it from our environment).
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    println!("cargo::rerun-if-env-changed=PATH");
    let ebpf = aya_build::Package {
        name: "sensor-ebpf",
        root_dir: "../sensor-ebpf",
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::Custom(toolchain))
}

fn skipped() -> bool {
    std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn which_bpf_linker() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}
