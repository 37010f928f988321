//! HTTP/1.x request and response heads, parsed by `httparse`: the method, `Host`,
//! `User-Agent`, `Server`, the status code, and whether authentication is involved.
//!
//! Privacy: only those facts are kept. The request target (path and query string),
//! cookies, every other header and the body are never kept; of `Authorization`,
//! `WWW-Authenticate` and their proxy forms only the scheme's name from a fixed list
//! ("Basic", "Digest", ...), never a credential, realm or nonce.

use std::borrow::Cow;

use super::{DecodeError, auth_scheme};
use crate::discover::text;

/// Headers a head may have; more is an error rather than a silent cut.
const MAX_HEADERS: usize = 64;

/// Which head a payload starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// A request line ending in `HTTP/1.x`.
    Request,
    /// A status line starting with `HTTP/1.x`.
    Response,
}

/// What a request head says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The minor version: 0 or 1.
    pub version: u8,
    /// The `Host` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The `User-Agent` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The scheme of `Authorization` or `Proxy-Authorization`, when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// The head went on past the payload: the headers are those before the cut.
    pub truncated: bool,
}

/// What a response head says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The minor version: 0 or 1.
    pub version: u8,
    /// The `Server` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The scheme of `WWW-Authenticate` or `Proxy-Authenticate`, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// The head went on past the payload: the headers are those before the cut.
    pub truncated: bool,
}

/// Methods that are HTTP's alone, for a request line cut before its version (RTSP and
/// SIP share `OPTIONS` and others).
const HTTP_ONLY_METHODS: [&str; 8] = [
    "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE",
];

/// The head `p` starts with, if it is HTTP/1.x's.
pub fn version_of(p: &[u8]) -> Option<Head> {
    if p.starts_with(b"HTTP/1.") {
        return Some(Head::Response);
    }
    let method = method_token(p)?;
    let line_end = p.iter().position(|&b| b == b'\n');
    let is_request = match line_end {
        Some(end) => {
            let line = p[..end].strip_suffix(b"\r").unwrap_or(&p[..end]);
            line.ends_with(b" HTTP/1.0") || line.ends_with(b" HTTP/1.1")
        }
        None => HTTP_ONLY_METHODS.iter().any(|m| m.as_bytes() == method),
    };
    is_request.then_some(Head::Request)
}

/// The method token at the start of `p`, followed by a space.
fn method_token(p: &[u8]) -> Option<&[u8]> {
    let end = p.iter().take(24).position(|&b| b == b' ')?;
    let m = &p[..end];
    (!m.is_empty() && m.iter().all(|b| b.is_ascii_uppercase() || *b == b'-')).then_some(m)
}

/// The head, closed with a blank line where the payload cut it, and whether it was cut.
/// `None` when not even the first line is whole.
fn whole_head(p: &[u8]) -> Option<(Cow<'_, [u8]>, bool)> {
    if p.windows(4).any(|w| w == b"\r\n\r\n") || p.windows(2).any(|w| w == b"\n\n") {
        return Some((Cow::Borrowed(p), false));
    }
    let last = p.iter().rposition(|&b| b == b'\n')?;
    let mut v = p[..=last].to_vec();
    v.extend_from_slice(b"\r\n");
    Some((Cow::Owned(v), true))
}

fn malformed(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::new("http", e.to_string())
}

/// The value of the first header named `name`, as bounded text.
fn header(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| text(h.value))
}

fn auth(headers: &[httparse::Header<'_>], names: [&str; 2]) -> Option<String> {
    headers
        .iter()
        .find(|h| names.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
        .map(|h| auth_scheme(h.value).to_string())
}

/// Decodes a request head.
pub fn decode_request(p: &[u8]) -> Result<HttpRequest, DecodeError> {
    let Some((head, truncated)) = whole_head(p) else {
        let method = method_token(p).ok_or_else(|| malformed("no method"))?;
        return Ok(HttpRequest {
            method: text(method),
            version: 1,
            truncated: true,
            ..HttpRequest::default()
        });
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut headers);
    if r.parse(&head).map_err(malformed)?.is_partial() {
        return Err(malformed("head without its end"));
    }
    Ok(HttpRequest {
        method: text(r.method.unwrap_or_default().as_bytes()),
        version: r.version.unwrap_or_default(),
        host: header(r.headers, "Host"),
        user_agent: header(r.headers, "User-Agent"),
        auth: auth(r.headers, ["Authorization", "Proxy-Authorization"]),
        truncated,
    })
}

/// Decodes a response head.
pub fn decode_response(p: &[u8]) -> Result<HttpResponse, DecodeError> {
    let Some((head, truncated)) = whole_head(p) else {
        return Err(malformed("status line cut short"));
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    if r.parse(&head).map_err(malformed)?.is_partial() {
        return Err(malformed("head without its end"));
    }
    Ok(HttpResponse {
        status: r.code.unwrap_or_default(),
        version: r.version.unwrap_or_default(),
        server: header(r.headers, "Server"),
        auth: auth(r.headers, ["WWW-Authenticate", "Proxy-Authenticate"]),
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::payload::{Hint, PayloadFacts, decode};
    use crate::testdata::payload;

    fn request(capture: &str, frame: usize) -> HttpRequest {
        match decode(&payload(capture, frame).data, Hint::default()) {
            Ok(Some(PayloadFacts::HttpRequest(r))) => r,
            other => panic!("{capture} {frame}: {other:?}"),
        }
    }

    fn response(capture: &str, frame: usize) -> HttpResponse {
        match decode(&payload(capture, frame).data, Hint::default()) {
            Ok(Some(PayloadFacts::HttpResponse(r))) => r,
            other => panic!("{capture} {frame}: {other:?}"),
        }
    }

    /// Segment by segment, as the sensor samples a flow's first payload:
    /// `tshark -o tcp.desegment_tcp_streams:FALSE -r ragdoll.pcap
    ///  -Y 'http.request or http.response' -T fields -e frame.number -e http.request.method
    ///  -e http.host -e http.user_agent -e http.server -e http.response.code`:
    /// 4 POST 172.18.0.2:8888 curl/7.68.0; 6 Python/3.8 aiohttp/3.6.2 200;
    /// 28 POST 172.18.0.2:8888 python-requests/2.32.3; 32 Python/3.8 aiohttp/3.6.2 200.
    #[test]
    fn caldera_agent_heads_match_tshark() {
        let cap = "attacks-dev/corelight-zeek-caldera-detector/ragdoll.pcap";
        for (frame, ua) in [(4, "curl/7.68.0"), (28, "python-requests/2.32.3")] {
            let r = request(cap, frame);
            assert_eq!(r.method, "POST");
            assert_eq!(r.version, 1);
            assert_eq!(r.host.as_deref(), Some("172.18.0.2:8888"));
            assert_eq!(r.user_agent.as_deref(), Some(ua));
            assert_eq!((r.auth, r.truncated), (None, false));
        }
        for frame in [6, 32] {
            let r = response(cap, frame);
            assert_eq!(r.status, 200);
            assert_eq!(r.server.as_deref(), Some("Python/3.8 aiohttp/3.6.2"));
            assert_eq!((r.auth, r.truncated), (None, false));
        }
    }

    /// `tshark -r IOT1-test-slice.pcap -Y http.request -T fields -e http.request.method
    ///  -e http.host -e http.user_agent`: GET 203.5.76.214 Dalvik/1.6.0 (Linux; U;
    /// Android 4.4.2; AOSP Netatmo-Camera Build/KOT49H).
    #[test]
    fn netatmo_camera_user_agent_matches_tshark() {
        let r = request("attacks-dev/faucetsdn-networkml/IOT1-test-slice.pcap", 3);
        assert_eq!(r.method, "GET");
        assert_eq!(r.host.as_deref(), Some("203.5.76.214"));
        assert_eq!(
            r.user_agent.as_deref(),
            Some("Dalvik/1.6.0 (Linux; U; Android 4.4.2; AOSP Netatmo-Camera Build/KOT49H)")
        );
    }

    #[test]
    fn no_path_query_cookie_or_credential_is_kept() {
        let head = b"GET /cgi-bin/login?user=admin&pass=hunter2 HTTP/1.1\r\nHost: cam\r\n\
            Cookie: session=s3cret\r\nAuthorization: Basic YWRtaW46aHVudGVyMg==\r\n\r\nbody=secret";
        let r = decode_request(head).unwrap();
        assert_eq!(r.auth.as_deref(), Some("Basic"));
        let all = format!("{r:?}{}", serde_json::to_string(&r).unwrap());
        for secret in ["hunter2", "admin", "s3cret", "YWRtaW4", "login", "secret"] {
            assert!(!all.contains(secret), "{secret} kept: {all}");
        }
        let r = decode_response(
            b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"n\"\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.version, r.auth.as_deref()),
            (401, 0, Some("Digest"))
        );
    }

    #[test]
    fn heads_cut_short() {
        let r =
            decode_request(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: b\r\nAccept: tex").unwrap();
        assert_eq!(
            (r.host.as_deref(), r.user_agent.as_deref()),
            (Some("a"), Some("b"))
        );
        assert!(r.truncated);
        assert_eq!(version_of(b"GET /very-long-path"), Some(Head::Request));
        let r = decode_request(b"GET /very-long-path").unwrap();
        assert_eq!((r.method.as_str(), r.truncated), ("GET", true));
        assert_eq!(version_of(b"OPTIONS rtsp://cam/ RTSP/1.0\r\n"), None);
        assert_eq!(
            version_of(b"OPTIONS /x"),
            None,
            "RTSP and SIP have OPTIONS too"
        );
        assert!(decode_response(b"HTTP/1.1 200").is_err());
        assert!(decode_request(b"GET / HTTP/1.1\r\nbad header line\r\n\r\n").is_err());
    }
}
