//! WS-Discovery (UDP 3702, SOAP over multicast): ONVIF cameras and network printers
//! announce their types and scopes with it; Windows hosts probe and resolve with it.

use quick_xml::{Reader, events::Event};

use super::{DecodeError, text};

/// The WS-Discovery port.
pub const PORT: u16 = 3702;
const MAX_ITEMS: usize = 16;

/// What one WS-Discovery message says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WsdFacts {
    /// The action's last path segment: `Probe`, `Resolve`, `Hello`, `ProbeMatches`, ...
    pub action: String,
    /// Device types (`dn:NetworkVideoTransmitter`, `wprt:PrintDeviceType`).
    pub types: Vec<String>,
    /// Scopes (ONVIF puts hardware model and name here).
    pub scopes: Vec<String>,
}

/// Decodes one SOAP envelope.
pub fn decode(m: &[u8]) -> Result<WsdFacts, DecodeError> {
    let mut r = Reader::from_reader(m);
    let mut f = WsdFacts::default();
    let mut current: Option<Vec<u8>> = None;
    let mut buf = Vec::new();
    let mut seen_envelope = false;
    loop {
        match r.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().to_vec();
                seen_envelope |= name == b"Envelope";
                current = Some(name);
            }
            Ok(Event::Text(t)) => {
                let Some(name) = &current else { continue };
                let value = t.into_inner();
                let words = || {
                    value
                        .split(|b| b.is_ascii_whitespace())
                        .filter(|w| !w.is_empty())
                        .take(MAX_ITEMS)
                        .map(text)
                };
                match name.as_slice() {
                    b"Action" => {
                        let a = text(&value);
                        f.action = a.rsplit('/').next().unwrap_or_default().to_string();
                    }
                    b"Types" => f.types.extend(words()),
                    b"Scopes" => f.scopes.extend(words()),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => current = None,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(DecodeError::new("wsd", e.to_string())),
        }
        buf.clear();
    }
    if !seen_envelope || f.action.is_empty() {
        return Err(DecodeError::new("wsd", "no SOAP envelope with an action"));
    }
    f.types.truncate(MAX_ITEMS);
    f.scopes.truncate(MAX_ITEMS);
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, decode as decode_frame};
    use crate::testdata::frames as fixture;

    /// The nDPI capture holds a Windows host's Resolve messages (tshark shows their SOAP).
    #[test]
    fn resolves_in_the_ndpi_capture() {
        let frames = fixture("ndpi/upnp.pcap");
        for f in &frames {
            let d = decode_frame(f).unwrap().unwrap();
            let Facts::Wsd(w) = d.facts else {
                panic!("not WS-Discovery: {:?}", d.facts)
            };
            assert_eq!(w.action, "Resolve");
        }
    }

    #[test]
    fn onvif_hello_gives_types_and_scopes() {
        let m = br#"<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello</a:Action></s:Header><s:Body><d:Hello><d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/hardware/DS-2CD2142FWD-I</d:Scopes></d:Hello></s:Body></s:Envelope>"#;
        let w = decode(m).unwrap();
        assert_eq!(w.action, "Hello");
        assert_eq!(w.types, ["dn:NetworkVideoTransmitter"]);
        assert_eq!(w.scopes.len(), 2);
    }

    #[test]
    fn broken_xml_is_an_error() {
        assert!(decode(b"<s:Envelope><a:Action>x</b:Action>").is_err());
        assert!(decode(b"not xml").is_err());
    }
}
