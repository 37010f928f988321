//! TP-Link Kasa smart-home protocol (UDP 9999): JSON under an "autokey" XOR (each byte
//! XORed with the previous ciphertext byte, starting from 171). Plugs, switches and bulbs
//! answer `get_sysinfo` with their model; controllers (the Kasa app, a Google or Alexa
//! hub) send the empty query.

use super::{DecodeError, text};

/// The Kasa port.
pub const PORT: u16 = 9999;

/// What one Kasa datagram says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KasaFacts {
    /// `query` (asks devices about themselves: a controller) or `sysinfo` (a device
    /// describing itself).
    pub kind: &'static str,
    /// Model, e.g. `HS110(EU)`.
    pub model: Option<String>,
    /// Device type, e.g. `IOT.SMARTPLUGSWITCH`.
    pub device_type: Option<String>,
    /// The name its owner gave it.
    pub alias: Option<String>,
    /// Its firmware version (`sw_ver`, e.g. `1.5.4 Build 180815 Rel.121440`).
    pub sw_ver: Option<String>,
    /// Its hardware revision (`hw_ver`).
    pub hw_ver: Option<String>,
}

/// Decodes one datagram.
pub fn decode(m: &[u8]) -> Result<KasaFacts, DecodeError> {
    let mut key = 171u8;
    let plain: Vec<u8> = m
        .iter()
        .map(|&c| {
            let p = c ^ key;
            key = c;
            p
        })
        .collect();
    let v: serde_json::Value = serde_json::from_slice(&plain)
        .map_err(|e| DecodeError::new("kasa", format!("not Kasa JSON: {e}")))?;
    let info = v
        .pointer("/system/get_sysinfo")
        .and_then(|i| i.as_object())
        .ok_or_else(|| DecodeError::new("kasa", "no system.get_sysinfo"))?;
    if info.is_empty() {
        return Ok(KasaFacts {
            kind: "query",
            ..KasaFacts::default()
        });
    }
    let s = |k: &str| {
        info.get(k)
            .and_then(|x| x.as_str())
            .map(|x| text(x.as_bytes()))
    };
    Ok(KasaFacts {
        kind: "sysinfo",
        model: s("model"),
        device_type: s("type").or_else(|| s("mic_type")),
        alias: s("alias"),
        sw_ver: s("sw_ver"),
        hw_ver: s("hw_ver"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, decode as decode_frame};
    use crate::testdata::frames as fixture;

    fn encrypt(p: &[u8]) -> Vec<u8> {
        let mut key = 171u8;
        p.iter()
            .map(|&b| {
                key ^= b;
                key
            })
            .collect()
    }

    /// tshark shows every datagram of the nDPI capture as `{"system":{"get_sysinfo":{}}}`
    /// from Google devices: controllers looking for plugs.
    #[test]
    fn queries_in_the_ndpi_capture() {
        let frames = fixture("ndpi/tplink_shp.pcap");
        let mut n = 0;
        for f in &frames {
            let d = decode_frame(f).unwrap().unwrap();
            let Facts::Kasa(k) = d.facts else {
                panic!("not Kasa: {:?}", d.facts)
            };
            assert_eq!(k.kind, "query");
            n += 1;
        }
        assert_eq!(n, 251);
    }

    #[test]
    fn sysinfo_answer_names_the_model() {
        let m = encrypt(
            br#"{"system":{"get_sysinfo":{"model":"HS110(EU)","type":"IOT.SMARTPLUGSWITCH","alias":"Kettle"}}}"#,
        );
        let k = decode(&m).unwrap();
        assert_eq!(k.kind, "sysinfo");
        assert_eq!(k.model.as_deref(), Some("HS110(EU)"));
        assert_eq!(k.device_type.as_deref(), Some("IOT.SMARTPLUGSWITCH"));
        assert_eq!(k.alias.as_deref(), Some("Kettle"));
    }

    #[test]
    fn other_bytes_are_an_error() {
        assert!(decode(b"hello").is_err());
    }
}
