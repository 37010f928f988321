//! The operator's console (`[console] listen`, or `kettlewatch console`): web pages over
//! the state directory, read fresh from SQLite at each request, so what the running sensor
//! wrote a moment ago is what the page shows, and a console started on its own (over a
//! copy of a state directory, or while `run` writes it) shows the same. Server-rendered
//! HTML (axum, maud), no JavaScript: devices (`pages/devices.rs`), one device's story
//! (`pages/device.rs`), the alert timeline (`pages/alerts.rs`), on one shell
//! (`pages/shell.rs`).

mod pages;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};

use crate::store::state::{StateError, Store};

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
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
}

/// A running console.
#[derive(Debug)]
pub struct Console {
    /// Where it listens (the port the kernel chose when asked for 0).
    pub addr: SocketAddr,
}

impl Console {
    /// Binds `addr` and serves the pages over `state_dir` on the current tokio runtime
    /// until it ends.
    pub fn start(addr: SocketAddr, state_dir: PathBuf, host: &str) -> Result<Self, ConsoleError> {
        let bind = |source| ConsoleError::Bind { addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let local = std_listener.local_addr().map_err(bind)?;
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind)?;
        let site = Arc::new(Site {
            state_dir,
            host: host.to_string(),
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router(site)).await {
                tracing::error!(error = %e, "console stopped");
            }
        });
        tracing::info!(listen = %local, "console at http://{local}/");
        Ok(Self { addr: local })
    }
}

fn router(site: Arc<Site>) -> Router {
    Router::new()
        .route("/", get(devices))
        .route("/device/{mac}", get(device))
        .route("/alerts", get(alerts))
        .with_state(site)
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
