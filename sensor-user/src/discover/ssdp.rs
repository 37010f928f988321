//! SSDP (UPnP discovery): what a device searches for, announces or answers. The SERVER
//! and USER-AGENT headers name the OS and UPnP stack, NT/ST the device and service types,
//! LOCATION its description document.

use super::{DecodeError, text};

/// The headers of one SSDP message that say something about the device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SsdpFacts {
    /// `search` (M-SEARCH), `notify` (NOTIFY) or `response` (an answer to a search).
    pub kind: &'static str,
    /// SERVER.
    pub server: Option<String>,
    /// USER-AGENT.
    pub user_agent: Option<String>,
    /// USN.
    pub usn: Option<String>,
    /// NT (notifications).
    pub nt: Option<String>,
    /// ST (searches and answers).
    pub st: Option<String>,
    /// LOCATION.
    pub location: Option<String>,
}

/// Decodes one SSDP message (the UDP payload).
pub fn decode(m: &[u8]) -> Result<SsdpFacts, DecodeError> {
    let err = |e: &dyn std::fmt::Display| DecodeError::new("ssdp", e.to_string());
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let kind = if m.starts_with(b"HTTP/") {
        let mut r = httparse::Response::new(&mut headers);
        r.parse(m).map_err(|e| err(&e))?;
        "response"
    } else {
        let mut r = httparse::Request::new(&mut headers);
        r.parse(m).map_err(|e| err(&e))?;
        match r.method {
            Some("M-SEARCH") => "search",
            Some("NOTIFY") => "notify",
            _ => return Err(err(&"neither M-SEARCH, NOTIFY nor a response")),
        }
    };
    let mut f = SsdpFacts {
        kind,
        ..SsdpFacts::default()
    };
    for h in headers.iter().take_while(|h| !h.name.is_empty()) {
        let slot = match h.name.to_ascii_uppercase().as_str() {
            "SERVER" => &mut f.server,
            "USER-AGENT" => &mut f.user_agent,
            "USN" => &mut f.usn,
            "NT" => &mut f.nt,
            "ST" => &mut f.st,
            "LOCATION" => &mut f.location,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(text(h.value));
        }
    }
    Ok(f)
}

static STACKS: std::sync::LazyLock<globset::GlobSet> = std::sync::LazyLock::new(|| {
    crate::discover::glob_list::compile(
        include_str!("../../data/upnp-stacks.txt"),
        "data/upnp-stacks.txt",
    )
});

/// The product token of a SERVER or USER-AGENT header ("OS/version UPnP/1.0
/// product/version", UPnP Device Architecture 1.0 section 1.1.2), unless it names a UPnP
/// stack or a placeholder (`data/upnp-stacks.txt`): vendors put the model there.
pub fn server_product(header: &str) -> Option<&str> {
    let at = header.find("UPnP/")?;
    let rest = &header[at + "UPnP/".len()..];
    // Past the UPnP version, then the separators devices use (space, comma or both).
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let rest = rest.trim_start_matches([',', ' ', '\t']);
    let product = rest.split('/').next()?.trim().trim_end_matches(',').trim();
    let ok = !product.is_empty()
        && product.len() <= 64
        && product.chars().any(|c| c.is_ascii_alphabetic())
        && !STACKS.is_match(product);
    ok.then_some(product)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, decode as decode_frame};
    use crate::testdata::frames as fixture;

    /// What tshark shows for the nDPI capture: searches with a DIAL search target and a
    /// user agent.
    #[test]
    fn searches_in_the_ndpi_capture() {
        let frames = fixture("ndpi/ssdp-m-search-ua.pcap");
        let ssdp: Vec<SsdpFacts> = frames
            .iter()
            .filter_map(|f| match decode_frame(f) {
                Ok(Some(d)) => match d.facts {
                    Facts::Ssdp(s) => Some(s),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert!(!ssdp.is_empty());
        assert!(ssdp.iter().all(|s| s.kind == "search"));
        assert!(
            ssdp.iter()
                .any(|s| s.st.as_deref() == Some("urn:dial-multiscreen-org:service:dial:1"))
        );
        assert!(ssdp.iter().any(|s| s.user_agent.is_some()));
    }

    #[test]
    fn notify_and_response_headers() {
        let n = decode(
            b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: urn:schemas-upnp-org:device:MediaRenderer:1\r\n\
              NTS: ssdp:alive\r\nSERVER: Linux/3.10 UPnP/1.0 Roku/9.4\r\nUSN: uuid:abc::urn:x\r\n\
              LOCATION: http://198.51.100.7:8060/\r\n\r\n",
        )
        .unwrap();
        assert_eq!(n.kind, "notify");
        assert_eq!(n.server.as_deref(), Some("Linux/3.10 UPnP/1.0 Roku/9.4"));
        assert_eq!(
            n.nt.as_deref(),
            Some("urn:schemas-upnp-org:device:MediaRenderer:1")
        );
        assert_eq!(n.location.as_deref(), Some("http://198.51.100.7:8060/"));
        let r = decode(b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nServer: x\r\n\r\n").unwrap();
        assert_eq!(
            (r.kind, r.st.as_deref()),
            ("response", Some("upnp:rootdevice"))
        );
    }

    #[test]
    fn other_text_is_an_error() {
        assert!(decode(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(decode(&[0xff; 40]).is_err());
    }

    #[test]
    fn the_product_token_is_the_model_unless_it_names_a_stack() {
        for (header, product) in [
            ("Linux/3.10 UPnP/1.0 Roku/9.4", Some("Roku")),
            (
                "FreeRTOS/6.0.5, UPnP/1.0, IpBridge/1.26.0",
                Some("IpBridge"),
            ),
            (
                "Linux, UPnP/1.0, DCS-930L Ver 1.0",
                Some("DCS-930L Ver 1.0"),
            ),
            (
                "Linux/2.6.21, UPnP/1.0, Portable SDK for UPnP devices/1.6.6",
                None,
            ),
            ("Unspecified, UPnP/1.0, Unspecified", None),
            ("Ubuntu/22.04 UPnP/1.1 MiniUPnPd/2.2.1", None),
            ("Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)", Some("Sonos")),
            ("Microsoft-Windows/10.0 UPnP/1.0", None),
            ("no upnp here", None),
        ] {
            assert_eq!(server_product(header), product, "{header}");
        }
    }
}
