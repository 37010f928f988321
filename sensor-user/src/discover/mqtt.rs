//! MQTT CONNECT: the client id and user name a device logs in to its broker with (often
//! its serial number or product id). The password is never kept.

use super::{DecodeError, text};

/// The MQTT port (plain text; 8883 is TLS and says nothing).
pub const PORT: u16 = 1883;

/// What a CONNECT says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MqttFacts {
    /// Protocol name and level, e.g. `MQTT/4`.
    pub protocol: String,
    /// Client identifier.
    pub client_id: String,
    /// User name, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::new("mqtt", why)
}

/// A length-prefixed string at the front of `p`, and the rest.
fn string(p: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let n = u16::from_be_bytes([
        *p.first().ok_or_else(|| malformed("cut short"))?,
        *p.get(1).ok_or_else(|| malformed("cut short"))?,
    ]) as usize;
    let s = p
        .get(2..2 + n)
        .ok_or_else(|| malformed("string longer than the packet"))?;
    Ok((s, &p[2 + n..]))
}

/// Decodes the TCP payload of a segment to the broker; only CONNECT carries facts.
pub fn decode(m: &[u8]) -> Result<Option<MqttFacts>, DecodeError> {
    let (&head, mut p) = m.split_first().ok_or_else(|| malformed("empty"))?;
    if head != 0x10 {
        return Ok(None);
    }
    // Remaining length: up to four 7-bit groups.
    for i in 0.. {
        let (&b, rest) = p.split_first().ok_or_else(|| malformed("cut short"))?;
        p = rest;
        if b & 0x80 == 0 {
            break;
        }
        if i == 3 {
            return Err(malformed("remaining length over four bytes"));
        }
    }
    let (name, p) = string(p)?;
    let level = *p.first().ok_or_else(|| malformed("no protocol level"))?;
    let flags = *p.get(1).ok_or_else(|| malformed("no connect flags"))?;
    let (client_id, mut p) = string(p.get(4..).ok_or_else(|| malformed("no keep-alive"))?)?;
    if level >= 5 {
        // MQTT 5 properties: a variable-length integer and that many bytes, before the id.
        return Ok(Some(MqttFacts {
            protocol: protocol(name, level),
            client_id: String::new(),
            username: None,
        }));
    }
    if flags & 0x04 != 0 {
        let (_topic, rest) = string(p)?;
        let (_message, rest) = string(rest)?;
        p = rest;
    }
    let username = if flags & 0x80 != 0 {
        Some(text(string(p)?.0))
    } else {
        None
    };
    Ok(Some(MqttFacts {
        protocol: protocol(name, level),
        client_id: text(client_id),
        username,
    }))
}

/// "MQTT/4": the name bounded so that the whole, level included, stays within
/// [`super::MAX_TEXT`] (a 255-byte name once made it 259; found by the fuzzer).
fn protocol(name: &[u8], level: u8) -> String {
    let name: String = text(name).chars().take(super::MAX_TEXT - 4).collect();
    format!("{name}/{level}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, decode as decode_frame};
    use crate::testdata::frames as fixture;

    /// What tshark shows for the nDPI capture's two Connect Commands.
    #[test]
    fn connect_in_the_ndpi_capture() {
        let frames = fixture("ndpi/mqtt.pcap");
        let connects: Vec<MqttFacts> = frames
            .iter()
            .filter_map(|f| match decode_frame(f) {
                Ok(Some(d)) => match d.facts {
                    Facts::Mqtt(m) => Some(m),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(connects.len(), 2);
        assert_eq!(connects[0].protocol, "MQIsdp/3");
        assert_eq!(connects[0].client_id, "cbaabcbabacbbbbbaaaaab");
        assert_eq!(connects[0].username.as_deref(), Some("02D5050223D3"));
        assert_eq!(connects[1].protocol, "MQTT/4");
        assert_eq!(connects[1].client_id, "P47775ID170W2120");
        assert_eq!(
            connects[1].username.as_deref(),
            Some("iotazewpmlithub.azure-devices.net/P47775ID170W2120/?api-version=2018-06-30")
        );
    }

    #[test]
    fn other_packets_and_short_connects() {
        assert_eq!(decode(&[0x30, 2, 0, 0]), Ok(None), "PUBLISH");
        assert!(decode(&[0x10, 10, 0, 4, b'M', b'Q']).is_err());
    }
}
