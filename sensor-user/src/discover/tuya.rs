//! Tuya's local protocol: Tuya-based devices (plugs, bulbs, sensors sold under hundreds
//! of brands) broadcast their product key and device id on UDP 6666 (plain) and 6667
//! (AES-128-ECB under a key that is the same in every device, MD5 of a public string).

use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};

use super::{DecodeError, text};

/// UDP port of plain broadcasts (protocol 3.1).
pub const PORT_PLAIN: u16 = 6666;
/// UDP port of encrypted broadcasts (protocol 3.3).
pub const PORT_ENCRYPTED: u16 = 6667;
/// MD5("yGAdlopoPVldABfn"): Tuya's fixed broadcast key (the unit test recomputes it).
const BROADCAST_KEY: [u8; 16] = [
    0x6c, 0x1e, 0xc8, 0xe2, 0xbb, 0x9b, 0xb5, 0x9a, 0xb5, 0x0b, 0x0d, 0xaf, 0x64, 0x9b, 0x41, 0x0a,
];
const PREFIX: [u8; 4] = [0, 0, 0x55, 0xaa];

/// What a Tuya broadcast says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TuyaFacts {
    /// Product key: the product model in Tuya's cloud.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_key: Option<String>,
    /// Device id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gw_id: Option<String>,
    /// Protocol version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::new("tuya", why)
}

/// Decodes a broadcast to `port`.
pub fn decode(port: u16, m: &[u8]) -> Result<TuyaFacts, DecodeError> {
    if m.len() < 28 || m[..4] != PREFIX {
        return Err(malformed("no 000055aa prefix"));
    }
    let len = u32::from_be_bytes([m[12], m[13], m[14], m[15]]) as usize;
    // Return code (4) after the 16-byte header; CRC (4) and suffix (4) at the end.
    let body = m
        .get(20..(16 + len).saturating_sub(8))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| malformed("length beyond the datagram"))?;
    let json = if port == PORT_ENCRYPTED {
        decrypt(body)?
    } else {
        body.to_vec()
    };
    let v: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| malformed(&format!("payload: {e}")))?;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(|x| text(x.as_bytes()))
    };
    Ok(TuyaFacts {
        product_key: s("productKey"),
        gw_id: s("gwId"),
        version: s("version"),
    })
}

/// AES-128-ECB with PKCS#7 padding, as Tuya uses it.
fn decrypt(c: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if !c.len().is_multiple_of(16) {
        return Err(malformed("ciphertext is not whole blocks"));
    }
    let cipher = aes::Aes128::new(&GenericArray::from(BROADCAST_KEY));
    let mut out = c.to_vec();
    for block in out.as_chunks_mut::<16>().0 {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    let pad = *out.last().unwrap_or(&0) as usize;
    if pad == 0 || pad > 16 || pad > out.len() {
        return Err(malformed("bad padding (not Tuya's broadcast key)"));
    }
    out.truncate(out.len() - pad);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, decode as decode_frame};
    use crate::testdata::frames as fixture;

    #[test]
    fn the_key_is_md5_of_the_public_string() {
        assert_eq!(md5::compute(b"yGAdlopoPVldABfn").0, BROADCAST_KEY);
    }

    /// Expected values from decrypting the same frame with Python's `cryptography`.
    #[test]
    fn encrypted_broadcast_in_the_ndpi_capture() {
        let frames = fixture("ndpi/tuya_lp.pcap");
        let d = decode_frame(&frames[0]).unwrap().unwrap();
        assert_eq!(d.mac, [0xdc, 0x4f, 0x22, 0xbd, 0x40, 0xa1]);
        let Facts::Tuya(f) = d.facts else {
            panic!("not Tuya: {:?}", d.facts)
        };
        assert_eq!(f.product_key.as_deref(), Some("keyvtdmgqcsh5hug"));
        assert_eq!(f.gw_id.as_deref(), Some("50650122dc4f22bd40a1"));
        assert_eq!(f.version.as_deref(), Some("3.3"));
        let decoded = frames
            .iter()
            .filter(|f| matches!(decode_frame(f), Ok(Some(_))))
            .count();
        assert_eq!(decoded, frames.len(), "every broadcast decodes");
    }

    #[test]
    fn plain_broadcast() {
        let body = br#"{"ip":"198.51.100.9","gwId":"abc","productKey":"keyplain","version":"3.1"}"#;
        let mut m = PREFIX.to_vec();
        m.extend([0, 0, 0, 0, 0, 0, 0, 0x13]);
        m.extend(((body.len() + 12) as u32).to_be_bytes());
        m.extend([0; 4]);
        m.extend(body);
        m.extend([0, 0, 0, 0, 0, 0, 0xaa, 0x55]);
        let f = decode(PORT_PLAIN, &m).unwrap();
        assert_eq!(f.product_key.as_deref(), Some("keyplain"));
    }

    #[test]
    fn lies_about_length_are_errors() {
        let mut m = PREFIX.to_vec();
        m.extend([0, 0, 0, 0, 0, 0, 0, 0x13, 0xff, 0xff, 0xff, 0xff]);
        m.extend([0; 16]);
        assert!(decode(PORT_ENCRYPTED, &m).is_err());
    }
}
