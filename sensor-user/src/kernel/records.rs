//! Decoding ring-buffer records into typed kernel events.

use sensor_common::{
    DISCOVERY_BYTES, DiscoveryRecord, EVENT_DISCOVERY, EVENT_DNS_ANSWER, EVENT_NEW_DEVICE,
    EVENT_NEW_FLOW, Event,
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
}

/// A ring-buffer record that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than an `Event`.
    #[error("ring-buffer record of {0} bytes, expected {size}", size = size_of::<Event>())]
    Short(usize),
    /// An event kind this build does not know.
    #[error("unknown event kind {0}")]
    UnknownKind(u8),
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    if bytes.len() < size_of::<Event>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: length checked; Event is plain old data valid for any bit pattern, and
    // read_unaligned makes no alignment assumption.
    let ev: Event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    match ev.kind {
        EVENT_NEW_FLOW => Ok(KernelEvent::NewFlow(ev)),
        EVENT_NEW_DEVICE => Ok(KernelEvent::NewDevice(ev)),
        EVENT_DISCOVERY | EVENT_DNS_ANSWER => {
            if bytes.len() < size_of::<DiscoveryRecord>() {
                return Err(DecodeError::Short(bytes.len()));
            }
            let at = size_of::<Event>();
            let cap = u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let data = &bytes[at + 8..at + 8 + cap.min(DISCOVERY_BYTES)];
            Ok(if ev.kind == EVENT_DISCOVERY {
                KernelEvent::Discovery(ev, data.to_vec())
            } else {
                KernelEvent::DnsAnswer(ev, data.to_vec())
            })
        }
        other => Err(DecodeError::UnknownKind(other)),
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
            kind: EVENT_NEW_FLOW,
            src_port: 40000,
            ..Event::default()
        };
        assert_eq!(decode(&bytes_of(&ev)), Ok(KernelEvent::NewFlow(ev)));
        ev.kind = EVENT_NEW_DEVICE;
        assert_eq!(decode(&bytes_of(&ev)), Ok(KernelEvent::NewDevice(ev)));
    }

    #[test]
    fn rejects_short_and_unknown() {
        let ev = Event {
            kind: 99,
            ..Event::default()
        };
        let b = bytes_of(&ev);
        assert_eq!(decode(&b[..10]), Err(DecodeError::Short(10)));
        assert_eq!(decode(&b), Err(DecodeError::UnknownKind(99)));
    }
}
