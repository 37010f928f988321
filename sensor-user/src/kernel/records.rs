//! Decoding ring-buffer records into typed kernel events.

use sensor_common::{
    DISCOVERY_BYTES, DiscoveryRecord, Event, EventKind, PAYLOAD_BYTES, PayloadRecord,
};

/// A record from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// The first packet of a new flow.
    NewFlow(Event),
    /// The first frame of a new device.
    NewDevice(Event),
    /// A discovery frame (its first bytes) for the decoders.
    Discovery(Event, Vec<u8>),
    /// A DNS answer the gateway sent the device `key.mac` (its first bytes).
    DnsAnswer(Event, Vec<u8>),
    /// A flow's first payload from the device (its first bytes) for the payload
    /// decoders; dropped once decoded.
    Payload(Event, Vec<u8>),
    /// A flow's first payload to the device (`key` is the device's flow).
    PayloadIn(Event, Vec<u8>),
}

/// A ring-buffer record that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Shorter than an `Event`.
    #[error("ring-buffer record of {0} bytes, expected {size}", size = size_of::<Event>())]
    Short(usize),
    /// An event kind this build does not know.
    #[error("unknown event kind {0}")]
    UnknownKind(u8),
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<KernelEvent, RecordError> {
    if bytes.len() < size_of::<Event>() {
        return Err(RecordError::Short(bytes.len()));
    }
    // SAFETY: length checked; Event is plain old data valid for any bit pattern, and
    // read_unaligned makes no alignment assumption.
    let ev: Event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    match EventKind::from_u8(ev.kind) {
        Some(EventKind::NewFlow) => Ok(KernelEvent::NewFlow(ev)),
        Some(EventKind::NewDevice) => Ok(KernelEvent::NewDevice(ev)),
        Some(kind @ (EventKind::Discovery | EventKind::DnsAnswer)) => {
            if bytes.len() < size_of::<DiscoveryRecord>() {
                return Err(RecordError::Short(bytes.len()));
            }
            let at = size_of::<Event>();
            let cap = u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let data = &bytes[at + 8..at + 8 + cap.min(DISCOVERY_BYTES)];
            Ok(if kind == EventKind::Discovery {
                KernelEvent::Discovery(ev, data.to_vec())
            } else {
                KernelEvent::DnsAnswer(ev, data.to_vec())
            })
        }
        Some(kind @ (EventKind::Payload | EventKind::PayloadIn)) => {
            if bytes.len() < size_of::<PayloadRecord>() {
                return Err(RecordError::Short(bytes.len()));
            }
            let at = size_of::<Event>();
            let cap = u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let data = &bytes[at + 8..at + 8 + cap.min(PAYLOAD_BYTES)];
            Ok(if kind == EventKind::Payload {
                KernelEvent::Payload(ev, data.to_vec())
            } else {
                KernelEvent::PayloadIn(ev, data.to_vec())
            })
        }
        None => Err(RecordError::UnknownKind(ev.kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(ev: &Event) -> Vec<u8> {
        // SAFETY: Event is repr(C) without implicit padding.
        unsafe { std::slice::from_raw_parts((ev as *const Event).cast(), size_of::<Event>()) }
            .to_vec()
    }

    #[test]
    fn decodes_each_kind() {
        let mut ev = Event {
            kind: EventKind::NewFlow as u8,
            src_port: 40000,
            ..Event::default()
        };
        assert_eq!(decode(&bytes_of(&ev)), Ok(KernelEvent::NewFlow(ev)));
        ev.kind = EventKind::NewDevice as u8;
        assert_eq!(decode(&bytes_of(&ev)), Ok(KernelEvent::NewDevice(ev)));
    }

    #[test]
    fn rejects_short_and_unknown() {
        let ev = Event {
            kind: 99,
            ..Event::default()
        };
        let b = bytes_of(&ev);
        assert_eq!(decode(&b[..10]), Err(RecordError::Short(10)));
        assert_eq!(decode(&b), Err(RecordError::UnknownKind(99)));
    }
}
