//! `mlcycle ui`: a local web app over the workspace's state: the pipeline
//! (live), the run history, the experiments and the model registry.
//!
//! The pages are plain HTML, CSS and JavaScript embedded in the binary
//! (no build step, no node); they call the JSON endpoints under `/api/`,
//! which read the workspace's files and databases on each request, so what
//! a `mlcycle run` in another terminal changes shows on the next poll.
//!
//! Security: the server binds 127.0.0.1 unless told otherwise; another
//! host needs a token (given, or generated and printed), which a request
//! carries as `Authorization: Bearer`, a `?token=` query (that sets a
//! cookie) or the cookie. It is read-only unless started with
//! `--allow-actions`; then each action is a POST that must carry the
//! page's per-process `X-Mlcycle-Csrf` header and come from the same
//! origin, so another site open in the browser cannot trigger it.

mod api;
mod layout;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use mlcycle_pipeline::StageRegistry;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// How `mlcycle ui` was started.
pub struct UiOptions {
    /// The workspace root.
    pub root: PathBuf,
    /// The pipeline file.
    pub file: PathBuf,
    pub addr: SocketAddr,
    /// Required on every request when set.
    pub token: Option<String>,
    /// Whether POST actions (run, apply, promote, rollback) are allowed.
    pub allow_actions: bool,
}

/// Shared by the handlers.
pub(crate) struct Ui {
    pub root: PathBuf,
    pub file: PathBuf,
    pub registry: StageRegistry,
    token: Option<String>,
    allow_actions: bool,
    /// Random per process: the pages send it back with each action.
    csrf: String,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what}: {source}")]
pub struct UiError {
    what: String,
    source: std::io::Error,
}

/// A random token of 32 hex digits, from the OS.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        // No /dev/urandom: std's randomly seeded hasher, twice.
        use std::hash::{BuildHasher, Hasher};
        for half in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves until Ctrl-C. Prints `listening on http://ADDR` (with the token
/// when there is one) on standard error once it accepts connections.
pub fn serve(opts: UiOptions, registry: StageRegistry) -> Result<(), UiError> {
    let ui = Arc::new(Ui {
        root: opts.root,
        file: opts.file,
        registry,
        token: opts.token,
        allow_actions: opts.allow_actions,
        csrf: random_token(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| UiError {
            what: "start the server's runtime".into(),
            source,
        })?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|source| UiError {
                what: format!(
                    "listen on {} (choose another with `--port`; `--port 0` picks a free one)",
                    opts.addr
                ),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| UiError {
            what: "read the address listened on".into(),
            source,
        })?;
        match &ui.token {
            Some(t) => eprintln!("listening on http://{local}/?token={t}"),
            None => eprintln!("listening on http://{local}"),
        }
        let app = router(ui);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|source| UiError {
                what: "serve".into(),
                source,
            })
    })
}

fn router(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/api/pipeline", get(pipeline))
        .route("/api/stage/{id}", get(stage))
        .route("/api/file", get(file))
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}", get(run))
        .route("/api/runs/{id}/log/{stage}", get(run_log))
        .route("/api/experiments", get(experiments))
        .route("/api/experiments/compare", get(compare))
        .route("/api/models", get(models))
        .route("/api/actions/{action}", post(action))
        .route(
            "/api/{*rest}",
            get(|| async { ApiError::not_found("no such endpoint").into_response() }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset(APP_JS, "text/javascript") }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset(APP_CSS, "text/css") }),
        )
        .fallback(get(index))
        .layer(axum::middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui)
}

fn asset(body: &'static str, ty: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// The page shell; every path that is not an asset or under `/api/` gets
/// it, so URLs like `/runs/7` are shareable.
async fn index(State(ui): State<Arc<Ui>>) -> Response {
    let page = INDEX
        .replace("{{csrf}}", &ui.csrf)
        .replace("{{actions}}", if ui.allow_actions { "on" } else { "off" });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'",
                ),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        page,
    )
        .into_response()
}

/// Checks the token (when one is set) on every request; a `?token=` that
/// matches sets a cookie, so links within the app need not carry it.
async fn guard(State(ui): State<Arc<Ui>>, req: Request, next: Next) -> Response {
    let Some(want) = &ui.token else {
        // No token: loopback only, and only under a loopback name, so that
        // a site whose name an attacker points at 127.0.0.1 (DNS
        // rebinding) is not the page's origin.
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !loopback_host(host) {
            return (
                StatusCode::FORBIDDEN,
                Json(json!({"error": format!("refused: the Host `{host}` is not this machine's loopback address; open http://127.0.0.1:PORT or http://localhost:PORT, or start `mlcycle ui` with `--token` to serve under another name")})),
            )
                .into_response();
        }
        return next.run(req).await;
    };
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == "mlcycle_token")
                .map(|(_, v)| v.to_string())
        });
    let query = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_string())
    });
    let ok = |t: &str| constant_time_eq(t.as_bytes(), want.as_bytes());
    if bearer.is_some_and(ok) || cookie.as_deref().is_some_and(ok) {
        return next.run(req).await;
    }
    if query.as_deref().is_some_and(ok) {
        let cookie = HeaderValue::from_str(&format!(
            "mlcycle_token={want}; Path=/; HttpOnly; SameSite=Strict"
        ));
        // A page: set the cookie and drop the token from the address, so
        // that links copied from the page do not carry it.
        if req.method() == axum::http::Method::GET && !req.uri().path().starts_with("/api/") {
            let rest: Vec<&str> = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|kv| !kv.starts_with("token=") && !kv.is_empty())
                .collect();
            let location = if rest.is_empty() {
                req.uri().path().to_string()
            } else {
                format!("{}?{}", req.uri().path(), rest.join("&"))
            };
            let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            if let Ok(v) = cookie {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            return resp;
        }
        let mut resp = next.run(req).await;
        if let Ok(v) = cookie {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        return resp;
    }
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "this server needs its token: open the URL `mlcycle ui` printed (it ends in ?token=…), or send `Authorization: Bearer TOKEN`"})),
    )
        .into_response()
}

/// Whether a `Host` header names this machine's loopback interface
/// (`127.0.0.1:8765`, `localhost:8765`, `[::1]:8765`).
fn loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs blocking work (file and database reads) off the async threads and
/// turns its error into a JSON error response.
async fn blocking<F>(f: F) -> Response
where
    F: FnOnce() -> Result<Value, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(format!("the request's task failed: {e}")).into_response(),
    }
}

/// An error answered as `{"error": …}` with a status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
        }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }
    fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

async fn pipeline(State(ui): State<Arc<Ui>>) -> Response {
    blocking(move || api::pipeline(&ui)).await
}

async fn stage(State(ui): State<Arc<Ui>>, UrlPath(id): UrlPath<String>) -> Response {
    blocking(move || api::stage(&ui, &id)).await
}

async fn runs(State(ui): State<Arc<Ui>>) -> Response {
    blocking(move || api::runs(&ui)).await
}

async fn run(State(ui): State<Arc<Ui>>, UrlPath(id): UrlPath<i64>) -> Response {
    blocking(move || api::run(&ui, id)).await
}

async fn run_log(
    State(ui): State<Arc<Ui>>,
    UrlPath((id, stage)): UrlPath<(i64, String)>,
) -> Response {
    blocking(move || api::run_log(&ui, id, &stage)).await
}

async fn experiments(State(ui): State<Arc<Ui>>) -> Response {
    blocking(move || api::experiments(&ui)).await
}

#[derive(serde::Deserialize)]
struct CompareQuery {
    names: String,
}

async fn compare(State(ui): State<Arc<Ui>>, Query(q): Query<CompareQuery>) -> Response {
    blocking(move || {
        let names: Vec<String> = q
            .names
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        api::compare(&ui, &names)
    })
    .await
}

async fn models(State(ui): State<Arc<Ui>>) -> Response {
    blocking(move || api::models(&ui)).await
}

#[derive(serde::Deserialize)]
struct FileQuery {
    path: String,
}

/// A file of a declared output (a plot's SVG or PNG, a CSV), never
/// anything else of the workspace.
async fn file(State(ui): State<Arc<Ui>>, Query(q): Query<FileQuery>) -> Response {
    let ui2 = ui.clone();
    match tokio::task::spawn_blocking(move || api::output_file(&ui2, &q.path)).await {
        Ok(Ok((bytes, ty))) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

/// A POST action: refused unless the server allows actions, the request
/// carries the page's CSRF token, and it does not come from another site.
async fn action(
    State(ui): State<Arc<Ui>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !ui.allow_actions {
        return ApiError::forbidden(
            "actions are off: this server is read-only; start it with `mlcycle ui --allow-actions`",
        )
        .into_response();
    }
    let csrf_ok = headers
        .get("x-mlcycle-csrf")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| constant_time_eq(v.as_bytes(), ui.csrf.as_bytes()));
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(o) => host.is_some_and(|h| o == format!("http://{h}")),
    };
    if !csrf_ok || cross_site || !origin_ok {
        return ApiError::forbidden(
            "refused: an action must come from the mlcycle ui page itself (missing or wrong CSRF token, or another origin)",
        )
        .into_response();
    }
    blocking(move || api::action(&ui, &name, &body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        for ok in [
            "127.0.0.1:8765",
            "localhost:1",
            "LOCALHOST",
            "[::1]:80",
            "127.1.2.3:9",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:8765",
            "",
            "localhost.evil.example",
            "10.0.0.1:80",
            "[::2]:1",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
