//! The operator's console (`[console] listen`, or `kettlewatch console`): web pages over
//! the state directory, read fresh from SQLite at each request, so what the running sensor
//! wrote a moment ago is what the page shows, and a console started on its own (over a
//! copy of a state directory, or while `run` writes it) shows the same. Server-rendered
//! HTML (axum, maud), no JavaScript: devices (`pages/devices.rs`), one device's story
//! (`pages/device.rs`), the alert timeline (`pages/alerts.rs`), on one shell
//! (`pages/shell.rs`); the device page's forms correct the sensor (`actions.rs`) as the
//! command line does.

mod access;
mod actions;
mod pages;

pub use access::{AccessError, read_token};

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};

use crate::store::state::{StateError, Store};

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Who may use it.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The address is taken or not ours.
    #[error("[console] listen = \"{addr}\": {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What every page handler shares.
pub(crate) struct Site {
    /// The state directory the sensor writes.
    pub state_dir: PathBuf,
    /// The sensor's name (`[sensor] name`), in every page's title.
    pub host: String,
    /// What every form of this console's pages carries: a page of another site cannot
    /// read it, so cannot post a form that has it.
    pub token: String,
    /// A fleet view: no forms, no actions (they belong on each gateway).
    pub read_only: bool,
}

/// A token no one can guess from outside this process (the standard library's hasher
/// keys come from the OS's random source).
fn form_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..2)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// A running console.
#[derive(Debug)]
pub struct Console {
    /// Where it listens (the port the kernel chose when asked for 0).
    pub addr: SocketAddr,
}

impl Console {
    /// Binds `addr` and serves the pages over `state_dir` on the current tokio runtime
    /// until it ends; with `token`, to requests that carry it (required off loopback);
    /// `read_only`, without the forms that act.
    pub fn start(
        addr: SocketAddr,
        state_dir: PathBuf,
        host: &str,
        token: Option<String>,
        read_only: bool,
    ) -> Result<Self, ConsoleError> {
        let gate = Arc::new(access::gate(addr, token)?);
        let bind = |source| ConsoleError::Bind { addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let local = std_listener.local_addr().map_err(bind)?;
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind)?;
        let site = Arc::new(Site {
            state_dir,
            host: host.to_string(),
            token: form_token(),
            read_only,
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router(site, gate)).await {
                tracing::error!(error = %e, "console stopped");
            }
        });
        tracing::info!(listen = %local, "console at http://{local}/");
        Ok(Self { addr: local })
    }
}

fn router(site: Arc<Site>, gate: Arc<access::Gate>) -> Router {
    Router::new()
        .route("/", get(devices))
        .route("/device/{mac}", get(device))
        .route("/device/{mac}/{action}", post(act))
        .route("/alerts", get(alerts))
        .route("/style.css", get(style))
        .with_state(site)
        .layer(axum::middleware::from_fn_with_state(gate, access::guard))
}

/// The pages' one style sheet: a file of the console's own, so the policy can forbid
/// inline styles along with everything else.
async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::shell::STYLE,
    )
        .into_response()
}

async fn devices(
    State(site): State<Arc<Site>>,
    Query(q): Query<pages::devices::Params>,
) -> Response {
    page(site, move |site, store| {
        pages::devices::render(site, store, &q)
    })
    .await
}

async fn device(State(site): State<Arc<Site>>, Path(mac): Path<String>) -> Response {
    page(site, move |site, store| {
        pages::device::render(site, store, &mac)
    })
    .await
}

async fn alerts(State(site): State<Arc<Site>>, Query(q): Query<pages::alerts::Params>) -> Response {
    page(site, move |site, store| {
        pages::alerts::render(site, store, &q)
    })
    .await
}

/// A form from a device's page: carried out, then back to the page (303), or refused with
/// a page that says why.
async fn act(
    State(site): State<Arc<Site>>,
    Path((mac, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<actions::Form>,
) -> Response {
    if site.read_only {
        return refused(
            StatusCode::FORBIDDEN,
            "this is a read-only fleet view: act on the gateway's own console or command line",
        );
    }
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if !actions::same_origin(get(header::ORIGIN), get(header::REFERER), get(header::HOST))
        || form.token != site.token
    {
        return refused(StatusCode::FORBIDDEN, &actions::Refused::Forged.to_string());
    }
    let back = format!("/device/{mac}");
    let done = tokio::task::spawn_blocking(move || {
        let mut store = Store::open(&site.state_dir)?;
        actions::act(&mut store, &mac, &action, &form, pages::now_ns())
    })
    .await;
    match done {
        Ok(Ok(())) => Redirect::to(&back).into_response(),
        Ok(Err(e @ actions::Refused::Store(_))) => {
            refused(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Ok(Err(e)) => refused(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "console action failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, Html(pages::shell::refused(why).into_string())).into_response()
}

/// A page rendered off the runtime's threads (SQLite reads block), from a read-only
/// connection of its own: a page never waits for the sensor's writes, nor they for it.
async fn page(
    site: Arc<Site>,
    render: impl FnOnce(&Site, &Store) -> Result<pages::Page, StateError> + Send + 'static,
) -> Response {
    let done = tokio::task::spawn_blocking(move || {
        let store = Store::open_readonly(&site.state_dir)?;
        render(&site, &store)
    })
    .await;
    match done {
        Ok(Ok(pages::Page::Found(html))) => Html(html.into_string()).into_response(),
        Ok(Ok(pages::Page::NotFound(html))) => {
            (StatusCode::NOT_FOUND, Html(html.into_string())).into_response()
        }
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(pages::shell::error(&e.to_string()).into_string()),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
