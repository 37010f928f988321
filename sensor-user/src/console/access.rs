//! Who may see the console and what a browser may do with its pages. On loopback anyone
//! on the gateway may look (the default); on any other address every request must carry
//! the token from `[console] token_file`, as a bearer token (scripts) or as the password
//! of HTTP Basic authentication (a browser asks for it; the user name is not checked).
//! Every answer carries a Content-Security-Policy that lets a page load nothing but the
//! console's own style sheet: a device that names itself with markup gets text, and even
//! markup that slipped through escaping could run no script.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine;
use subtle::ConstantTimeEq;

/// Shortest token taken: 128 bits as hex.
pub const MIN_TOKEN_LEN: usize = 32;

/// What every answer says to the browser.
const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                      frame-ancestors 'none'; base-uri 'none'";

/// Why a token file cannot be used, or why the console may not listen without one.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Not readable.
    #[error("[console] token_file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Too short to be a secret.
    #[error(
        "[console] token_file {path}: the token is {len} characters; at least {MIN_TOKEN_LEN} \
         are needed (for example `openssl rand -hex 32 > {path}`)"
    )]
    Short {
        /// The file.
        path: PathBuf,
        /// Its length after trimming.
        len: usize,
    },
    /// Anyone on the gateway could read it.
    #[error("[console] token_file {path}: readable by every user (mode {mode:o}); chmod o-rwx it")]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A non-loopback address with no token.
    #[error(
        "[console] listen = \"{0}\" is reachable from other hosts and the console has no \
         login: set [console] token_file (or listen on loopback behind an authenticating proxy)"
    )]
    NeedsToken(SocketAddr),
}

/// Whether `addr` can only be reached from this host.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// The token in `path`: trimmed, long enough, and not readable by every user.
pub fn read_token(path: &Path) -> Result<String, AccessError> {
    use std::os::unix::fs::PermissionsExt;
    let read = |source| AccessError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(read)?.permissions().mode();
    if mode & 0o004 != 0 {
        return Err(AccessError::Exposed {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    let token = std::fs::read_to_string(path)
        .map_err(read)?
        .trim()
        .to_string();
    if token.len() < MIN_TOKEN_LEN {
        return Err(AccessError::Short {
            path: path.to_path_buf(),
            len: token.len(),
        });
    }
    Ok(token)
}

/// Who may use a console listening at `addr`: refused when it is reachable from
/// elsewhere and has no token.
pub fn gate(addr: SocketAddr, token: Option<String>) -> Result<Gate, AccessError> {
    if token.is_none() && !is_loopback(&addr) {
        return Err(AccessError::NeedsToken(addr));
    }
    Ok(Gate { token })
}

/// The token every request must carry, if any.
#[derive(Debug)]
pub struct Gate {
    token: Option<String>,
}

impl Gate {
    /// Whether a request with this `Authorization` header may pass.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let Some(given) = authorization.and_then(presented) else {
            return false;
        };
        given.as_bytes().ct_eq(token.as_bytes()).into()
    }
}

/// The secret in an `Authorization` header: a bearer token, or a Basic password.
fn presented(authorization: &str) -> Option<String> {
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let pair = String::from_utf8(raw).ok()?;
        return pair
            .split_once(':')
            .map(|(_, password)| password.to_string());
    }
    None
}

/// Refuses a request without the token (401, asking the browser for it), and puts the
/// browser policy on every answer.
pub async fn guard(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut response = if gate.admits(authorization) {
        next.run(request).await
    } else {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "this console needs its token: the password of HTTP Basic authentication, or \
             `Authorization: Bearer TOKEN`\n",
        )
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"kettlewatch console\", charset=\"UTF-8\""),
        );
        r
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The forms' same-origin check reads Referer when a browser sends no Origin.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef0123456789abcdef";

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn loopback_needs_no_token_and_anything_else_does() {
        for a in ["127.0.0.1:9561", "[::1]:9561", "[::ffff:127.0.0.1]:9561"] {
            assert!(gate(a.parse().unwrap(), None).is_ok(), "{a}");
        }
        for a in ["0.0.0.0:9561", "[::]:9561", "192.0.2.1:9561"] {
            let e = gate(a.parse().unwrap(), None).unwrap_err().to_string();
            assert!(e.contains("token_file") && e.contains(a), "{e}");
            assert!(gate(a.parse().unwrap(), Some(T.into())).is_ok());
        }
    }

    #[test]
    fn the_token_passes_as_bearer_or_basic_password_and_nothing_else_does() {
        let g = gate("0.0.0.0:1".parse().unwrap(), Some(T.into())).unwrap();
        assert!(g.admits(Some(&format!("Bearer {T}"))));
        assert!(g.admits(Some(&format!("bearer  {T} "))));
        assert!(g.admits(Some(&basic(&format!("alice:{T}")))));
        assert!(g.admits(Some(&basic(&format!(":{T}")))));
        for bad in [
            None,
            Some(String::new()),
            Some(T.to_string()),
            Some(format!("Bearer {}", &T[1..])),
            Some(format!("Bearer {T}x")),
            Some(basic(T)),
            Some(basic(&format!("{T}:x"))),
            Some("Basic !!!".to_string()),
            Some(format!("Digest {T}")),
        ] {
            assert!(!g.admits(bad.as_deref()), "{bad:?}");
        }
        let open = gate("127.0.0.1:1".parse().unwrap(), None).unwrap();
        assert!(open.admits(None));
    }

    #[test]
    fn a_token_file_must_be_private_and_long() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kw-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, format!("{T}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(read_token(&f).unwrap(), T);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(&f).unwrap_err().to_string();
        assert!(
            e.contains("readable by every user") && e.contains("644"),
            "{e}"
        );
        std::fs::write(&f, "short\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = read_token(&f).unwrap_err().to_string();
        assert!(e.contains("5 characters"), "{e}");
        let e = read_token(&dir.join("none")).unwrap_err().to_string();
        assert!(e.contains("none") && e.contains("No such file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
