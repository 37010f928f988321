//! Discovery: pure decoders from captured frames to typed facts about devices.

pub mod dhcp;
pub mod oui;

/// Longest string kept from the network: a hostile device cannot grow events without bound.
pub const MAX_TEXT: usize = 255;

/// Text from the network as something safe to put in an event: invalid UTF-8 replaced,
/// control characters replaced, at most [`MAX_TEXT`] characters. (JSON escaping of quotes
/// and backslashes is the serializer's.)
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .take(MAX_TEXT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_bounded_and_printable() {
        assert_eq!(text(b"cam\x00era\n\"x\""), "cam\u{fffd}era\u{fffd}\"x\"");
        assert_eq!(text(&[0x66, 0xff, 0x6f]), "f\u{fffd}o");
        let long = vec![b'a'; 10_000];
        assert_eq!(text(&long).chars().count(), MAX_TEXT);
    }
}
