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

/// A TCP or UDP payload of a fixture capture, with its ports.
pub(crate) struct Payload {
    /// The frame's 1-based number, as tshark counts.
    pub frame: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub data: Vec<u8>,
}

/// The non-empty TCP and UDP payloads of a fixture capture, frame by frame.
pub(crate) fn payloads(capture: &str) -> Vec<Payload> {
    use etherparse::{SlicedPacket, TransportSlice};
    frames(capture)
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let p = SlicedPacket::from_ethernet(f).ok()?;
            let (src_port, dst_port, data) = match &p.transport {
                Some(TransportSlice::Tcp(t)) => {
                    (t.source_port(), t.destination_port(), t.payload())
                }
                Some(TransportSlice::Udp(u)) => {
                    (u.source_port(), u.destination_port(), u.payload())
                }
                _ => return None,
            };
            (!data.is_empty()).then(|| Payload {
                frame: i + 1,
                src_port,
                dst_port,
                data: data.to_vec(),
            })
        })
        .collect()
}

/// The payload of frame `number` (1-based, as tshark counts) of a fixture capture.
pub(crate) fn payload(capture: &str, number: usize) -> Payload {
    payloads(capture)
        .into_iter()
        .find(|p| p.frame == number)
        .unwrap_or_else(|| panic!("{capture}: frame {number} has no TCP or UDP payload"))
}
