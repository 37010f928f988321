//! The repository's third-party fixtures (`tests/fixtures`), for unit tests.

use std::path::PathBuf;

/// The path of `rel` under `tests/fixtures`; panics when the checkout lacks it, since the
/// fixtures are part of the repository.
pub(crate) fn path(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel);
    assert!(
        p.exists(),
        "fixture {} is missing from the checkout",
        p.display()
    );
    p
}

/// Every frame of a fixture capture under `tests/fixtures/captures`.
pub(crate) fn frames(capture: &str) -> Vec<Vec<u8>> {
    let p = path(&format!("captures/{capture}"));
    let mut cap = crate::ingest::pcap::Capture::open(&p).unwrap();
    let mut out = Vec::new();
    while let Some(f) = cap.next_frame() {
        out.push(f.unwrap().data);
    }
    out
}
