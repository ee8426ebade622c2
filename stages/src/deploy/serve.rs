//! `mlcycle serve`: the champion model over HTTP, with durable prediction
//! and feedback logs.
//!
//! - Connections are served by hyper with a header read timeout (axum alone
//!   never closes a client that sends its headers slowly), behind an accept
//!   loop that drains in-flight requests on SIGTERM or Ctrl-C.
//! - The model is swapped atomically when the registry's champion changes:
//!   a request holds the `Arc` of the model it started with.
//! - Every acknowledged prediction is committed to `.mlcycle/serve.db`
//!   (SQLite, WAL, synchronous=FULL) before the response is sent; one writer
//!   thread commits in batches, so a burst costs one fsync per batch. Every
//!   acknowledged feedback record is appended to `feedback/labels.jsonl` and
//!   fsynced first: that file is what `dataset.feedback` reads, so the
//!   pipeline reruns from there exactly when labelled feedback arrived.
//! - Every committed prediction's input row is also appended to
//!   `feedback/served.jsonl` (after the commit, written out about once a
//!   second, not fsynced: the database is the durable record), which
//!   `dataset.served` reads for
//!   `monitor.drift`; and the last `--drift-window` rows are kept in memory
//!   so `/metrics` gives each input column's drift against the bundle's
//!   training-row profile.

// Handlers return `Result<_, Response>`: the error is the HTTP response,
// built once per failed request; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::registry::ModelRegistry;
use super::{store, Bundle};
use crate::model::Predictions;
use crate::table::{Column, ColumnData, Table};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub workers: usize,
    pub max_body: usize,
    pub header_timeout: Duration,
    /// Close a request whose body has not arrived whole within this time.
    pub body_timeout: Duration,
    /// The most connections open at once; more get 503 and are closed.
    pub max_connections: usize,
    pub feedback_quota: u64,
    /// Refuse (422) rows with columns the model does not take, instead of
    /// ignoring them (MLflow's behaviour, the default).
    pub strict_columns: bool,
    /// Serve this bundle instead of the registry's champion.
    pub bundle: Option<PathBuf>,
    /// The workspace state folder (`.mlcycle`).
    pub state: PathBuf,
    /// The labelled-feedback log that `dataset.feedback` reads.
    pub feedback_log: PathBuf,
    /// The log of served rows that `dataset.served` reads.
    pub served_log: PathBuf,
    /// Served rows kept for `/metrics` drift (0: none).
    pub drift_window: usize,
    pub poll: Duration,
}

/// Why the server cannot start. Each variant keeps its source.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServeError {
    #[error("there is no champion model to serve")]
    #[diagnostic(
        code(mlcycle::serve::no_champion),
        help("run a pipeline with a `deploy.promote` stage, `mlcycle models promote N`, or serve a bundle with `--bundle DIR`")
    )]
    NoChampion,
    #[error("cannot load {what}")]
    #[diagnostic(
        code(mlcycle::serve::bundle),
        help("`mlcycle models` shows the registry; `--bundle DIR` serves a bundle folder")
    )]
    Bundle {
        what: String,
        #[source]
        source: super::BundleError,
    },
    #[error("cannot read the model registry")]
    #[diagnostic(code(mlcycle::serve::registry))]
    Registry(#[from] super::registry::RegistryError),
    #[error("cannot open the prediction log {path}")]
    #[diagnostic(
        code(mlcycle::serve::log),
        help("the log is SQLite in the workspace's .mlcycle/ folder; check its permissions and free space")
    )]
    Log {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot {what}")]
    #[diagnostic(code(mlcycle::serve::io))]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// The model being served.
struct Loaded {
    bundle: Bundle,
    /// Registry version, or None for `--bundle`.
    version: Option<i64>,
    label: String,
}

struct Metrics {
    requests: HashMap<&'static str, u64>,
    errors: HashMap<u16, u64>,
    /// Latency histogram buckets (seconds) of /predict and /invocations.
    buckets: Vec<(f64, u64)>,
    latency_sum: f64,
    latency_count: u64,
    feedback: u64,
    /// Rows scored with a category their model's one-hot encoder never saw.
    unknown_categories: u64,
}

impl Metrics {
    fn new() -> Self {
        Metrics {
            requests: HashMap::new(),
            errors: HashMap::new(),
            buckets: [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
            ]
            .iter()
            .map(|b| (*b, 0))
            .collect(),
            latency_sum: 0.0,
            latency_count: 0,
            feedback: 0,
            unknown_categories: 0,
        }
    }
}

struct AppState {
    model: RwLock<Arc<Loaded>>,
    log: LogWriter,
    feedback_log: Mutex<std::fs::File>,
    metrics: Mutex<Metrics>,
    seq: AtomicU64,
    epoch: u64,
    quota: u64,
    /// Feedback records in the log, and places taken by posts being written.
    feedback_count: AtomicU64,
    strict_columns: bool,
    /// The last served rows, for drift on `/metrics`.
    window: Mutex<std::collections::VecDeque<Value>>,
    window_cap: usize,
}

/// A record for the durable log.
enum Record {
    Prediction {
        id: String,
        version: String,
        inputs: String,
        output: String,
    },
}

/// Records to commit, and where to say they are on disk.
type Job = (Vec<Record>, oneshot::Sender<Result<(), String>>);

struct LogWriter {
    /// `None` once dropped: the writer thread then drains, flushes the
    /// served-rows log and ends, and the drop waits for it.
    tx: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl LogWriter {
    fn open(path: &Path, served: &Path) -> Result<LogWriter, ServeError> {
        let conn = open_log(path).map_err(|source| ServeError::Log {
            path: path.to_path_buf(),
            source,
        })?;
        let mut served_log = open_served(served)?;
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("mlcycle-log".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                let mut conn = conn;
                // The served-rows log is written out at most once a second
                // (and when the buffer fills), so a pipeline hashing it
                // while the server runs sees it still between writes.
                let mut flushed = Instant::now();
                let mut pending = false;
                loop {
                    let first = match rx.recv_timeout(Duration::from_millis(250)) {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout) => {
                            if pending && flushed.elapsed() >= SERVED_FLUSH {
                                flush_served(&mut served_log);
                                (pending, flushed) = (false, Instant::now());
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    let mut batch = vec![first];
                    while batch.len() < 512 {
                        match rx.try_recv() {
                            Ok(x) => batch.push(x),
                            Err(_) => break,
                        }
                    }
                    let result = commit(&mut conn, &batch).map_err(|e| e.to_string());
                    if result.is_ok() {
                        append_served(&mut served_log, &batch);
                        pending = true;
                    }
                    for (_, ack) in batch {
                        let _ = ack.send(result.clone());
                    }
                    if pending && flushed.elapsed() >= SERVED_FLUSH {
                        flush_served(&mut served_log);
                        (pending, flushed) = (false, Instant::now());
                    }
                }
                flush_served(&mut served_log);
            })
            .map_err(io_err("start the prediction log's writer thread"))?;
        Ok(LogWriter {
            tx: Some(tx),
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    /// Commits `records`; returns once they are on disk.
    async fn write(&self, records: Vec<Record>) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| "the log writer stopped".to_string())?
            .send((records, ack))
            .map_err(|_| "the log writer stopped".to_string())?;
        done.await
            .map_err(|_| "the log writer stopped".to_string())?
    }
}

/// The log of served rows, opened for appending; a torn last line (a
/// crash mid-write) is ended first so it cannot swallow the next record.
fn open_served(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, ServeError> {
    use std::io::Write;
    let shown = path.display().to_string();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(format!("create the folder of {shown}")))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(format!("open {shown}")))?;
    let torn = std::fs::read(path)
        .map(|b| b.last().is_some_and(|&c| c != b'\n'))
        .unwrap_or(false);
    if torn {
        f.write_all(b"\n")
            .map_err(io_err(format!("end the torn last line of {shown}")))?;
    }
    Ok(std::io::BufWriter::with_capacity(4 << 20, f))
}

/// How often the served-rows log is written out.
const SERVED_FLUSH: Duration = Duration::from_secs(1);

fn flush_served(out: &mut std::io::BufWriter<std::fs::File>) {
    use std::io::Write;
    if let Err(e) = out.flush() {
        tracing::warn!(error = %e, "Cannot write the served-rows log; drift reports will miss these rows");
    }
}

/// Adds the batch's predictions to the served-rows log's buffer. A
/// failure is logged, not returned: the prediction itself is committed.
fn append_served(out: &mut std::io::BufWriter<std::fs::File>, batch: &[Job]) {
    use std::io::Write;
    let mut write = || -> std::io::Result<()> {
        for (records, _) in batch {
            for r in records {
                let Record::Prediction {
                    id,
                    version,
                    inputs,
                    ..
                } = r;
                writeln!(
                    out,
                    "{{\"id\":{},\"model_version\":{},\"inputs\":{inputs}}}",
                    Value::from(id.as_str()),
                    Value::from(version.as_str())
                )?;
            }
        }
        Ok(())
    };
    if let Err(e) = write() {
        tracing::warn!(error = %e, "Cannot append to the served-rows log; drift reports will miss these rows");
    }
}

fn open_log(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = store::open(path)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS predictions (
            id TEXT PRIMARY KEY, model_version TEXT NOT NULL, inputs TEXT NOT NULL,
            output TEXT NOT NULL, at TEXT NOT NULL);
",
    )?;
    Ok(conn)
}

fn commit(conn: &mut rusqlite::Connection, batch: &[Job]) -> rusqlite::Result<()> {
    let at = store::now_rfc3339();
    let tx = conn.transaction()?;
    {
        let mut p = tx.prepare_cached(
            "INSERT INTO predictions (id, model_version, inputs, output, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (records, _) in batch {
            for r in records {
                match r {
                    Record::Prediction {
                        id,
                        version,
                        inputs,
                        output,
                    } => {
                        p.execute(rusqlite::params![id, version, inputs, output, at])?;
                    }
                }
            }
        }
    }
    tx.commit()
}

/// An error response: `{"error": ..., "detail": ...}`, with MLflow's keys
/// (`error_code`, `message`) beside them so MLflow clients print the reason.
fn problem(status: StatusCode, error: &str, detail: impl Into<String>) -> Response {
    let detail = detail.into();
    (
        status,
        Json(json!({
            "error": error,
            "detail": detail,
            "error_code": mlflow_error_code(status),
            "message": detail,
        })),
    )
        .into_response()
}

/// The MLflow error code (its `databricks.ErrorCode` names) for a status.
fn mlflow_error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 415 => "BAD_REQUEST",
        404 => "RESOURCE_DOES_NOT_EXIST",
        413 | 429 => "RESOURCE_EXHAUSTED",
        422 => "INVALID_PARAMETER_VALUE",
        503 => "TEMPORARILY_UNAVAILABLE",
        _ => "INTERNAL_ERROR",
    }
}

fn load_champion(opts: &ServeOptions) -> Result<Loaded, ServeError> {
    if let Some(dir) = &opts.bundle {
        let bundle = Bundle::load(dir).map_err(|source| ServeError::Bundle {
            what: format!("the bundle {}", dir.display()),
            source,
        })?;
        let label = bundle.manifest.version.clone();
        return Ok(Loaded {
            bundle,
            version: None,
            label,
        });
    }
    let reg = ModelRegistry::open(&opts.state)?;
    let champion = reg.champion()?.ok_or(ServeError::NoChampion)?;
    let bundle = Bundle::load(&champion.path).map_err(|source| ServeError::Bundle {
        what: format!("champion version {}", champion.version),
        source,
    })?;
    Ok(Loaded {
        bundle,
        version: Some(champion.version),
        label: champion.version.to_string(),
    })
}

/// Runs the server until SIGTERM or Ctrl-C; in-flight requests finish.
///
/// # Errors
/// No champion (or a bundle that does not load), a prediction log or
/// feedback log that cannot be opened, or an address that cannot be bound.
pub fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let loaded = load_champion(&opts)?;
    let log = LogWriter::open(&opts.state.join("serve.db"), &opts.served_log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.workers.max(1))
        .enable_all()
        .build()
        .map_err(io_err("start the server's runtime"))?;
    runtime.block_on(run(opts, loaded, log))
}

async fn run(opts: ServeOptions, loaded: Loaded, log: LogWriter) -> Result<(), ServeError> {
    tracing::info!(
        model = %loaded.bundle.manifest.name,
        version = %loaded.label,
        log = %log.path.display(),
        "Serving model"
    );
    let state = app_state(&opts, loaded, log)?;
    if opts.bundle.is_none() {
        follow_champion(state.clone(), opts.clone());
    }
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let app = Router::new()
        .route("/predict", post(predict))
        .route("/invocations", post(invocations))
        .route("/feedback", post(feedback))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        // MLflow's scoring-server routes: its client polls `/ping` first.
        .route("/ping", get(|| async { "\n" }))
        .route("/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .route("/ready", get(ready))
        .route("/metadata", get(metadata))
        .route("/metrics", get(metrics))
        .fallback(|uri: axum::http::Uri| async move {
            problem(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no route {}; see /metadata, /predict, /invocations, /feedback",
                    uri.path()
                ),
            )
        })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on this route"),
            )
        })
        .layer(DefaultBodyLimit::max(opts.max_body))
        .layer(axum::middleware::from_fn_with_state(
            BodyLimits {
                max: opts.max_body,
                timeout: opts.body_timeout,
                stopping: stopping.clone(),
            },
            guard_body,
        ))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(io_err(format!("listen on {}", opts.addr)))?;
    let local = listener
        .local_addr()
        .map_err(io_err("read the address listened on"))?;
    // A line scripts can wait for.
    eprintln!("listening on http://{local}");
    // Where `mlcycle ui` finds this server to show its live numbers.
    let announce = opts.state.join("serve.json");
    let _ = std::fs::write(
        &announce,
        serde_json::json!({"addr": local.to_string(), "pid": std::process::id()}).to_string(),
    );
    accept_until_shutdown(listener, app, &opts, &stop).await;
    let _ = std::fs::remove_file(&announce);
    Ok(())
}

/// How much body a request may send, and how long it may take.
#[derive(Clone)]
struct BodyLimits {
    max: usize,
    timeout: Duration,
    /// Set when the server stops: a body still arriving is not waited for.
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// Reads every request body before its handler runs: a declared length
/// over the limit is refused at once (413, before hyper sends any
/// `100 Continue`), and a body that has not arrived whole within the
/// timeout gets 408. Either way the connection is closed, so a client
/// cannot hold it open by sending slowly.
async fn guard_body(
    State(limits): State<BodyLimits>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let close = |mut r: Response| {
        r.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        r
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max as u64) {
        return close(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body declares {} bytes; the limit is {} (--max-body)",
                declared.unwrap_or_default(),
                limits.max
            ),
        ));
    }
    let (parts, body) = req.into_parts();
    let mut stopping = limits.stopping.clone();
    let read = tokio::time::timeout(limits.timeout, axum::body::to_bytes(body, limits.max));
    let read = tokio::select! {
        r = read => r,
        _ = stopping.wait_for(|s| *s) => {
            return close(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is stopping; the body had not arrived; retry",
            ));
        }
    };
    match read {
        Err(_) => close(problem(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {:.1} s (--body-timeout)",
                limits.timeout.as_secs_f64()
            ),
        )),
        Ok(Err(_)) => close(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body is over the limit of {} bytes (--max-body)",
                limits.max
            ),
        )),
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
    }
}

/// The shared state: the model, the logs (the feedback log opened for
/// appending, its records counted for the quota) and the metrics.
fn app_state(
    opts: &ServeOptions,
    loaded: Loaded,
    log: LogWriter,
) -> Result<Arc<AppState>, ServeError> {
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let shown = opts.feedback_log.display().to_string();
    if let Some(parent) = opts.feedback_log.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(format!("create the folder of {shown}")))?;
    }
    let feedback_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&opts.feedback_log)
        .map_err(io_err(format!("open {shown}")))?;
    let existing = std::fs::read(&opts.feedback_log).unwrap_or_default();
    // A last line cut short (a crash mid-write, a hand edit) must not take
    // the next record with it: end it before appending.
    if existing.last().is_some_and(|&c| c != b'\n') {
        use std::io::Write;
        (&feedback_file)
            .write_all(b"\n")
            .and_then(|()| feedback_file.sync_data())
            .map_err(io_err(format!("end the torn last line of {shown}")))?;
    }
    let stored_feedback = existing.iter().filter(|&&c| c == b'\n').count() as u64;
    let mut m = Metrics::new();
    m.feedback = stored_feedback;
    Ok(Arc::new(AppState {
        model: RwLock::new(Arc::new(loaded)),
        log,
        feedback_log: Mutex::new(feedback_file),
        metrics: Mutex::new(m),
        seq: AtomicU64::new(0),
        epoch,
        quota: opts.feedback_quota,
        feedback_count: AtomicU64::new(stored_feedback),
        strict_columns: opts.strict_columns,
        window: Mutex::new(std::collections::VecDeque::with_capacity(
            opts.drift_window.min(1 << 16),
        )),
        window_cap: opts.drift_window,
    }))
}

/// Polls the registry and swaps in a new champion when there is one.
fn follow_champion(st: Arc<AppState>, o: ServeOptions) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(o.poll).await;
            let current = st.model.read().expect("model lock").version;
            let o2 = o.clone();
            let next = tokio::task::spawn_blocking(move || {
                let reg = ModelRegistry::open(&o2.state).ok()?;
                let v = reg.champion_version().ok()??;
                (Some(v) != current).then(|| load_champion(&o2))
            })
            .await
            .ok()
            .flatten();
            match next {
                Some(Ok(l)) => {
                    tracing::info!(version = %l.label, "Switched to the new champion");
                    *st.model.write().expect("model lock") = Arc::new(l);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Cannot load the new champion; still serving the old one")
                }
                None => {}
            }
        }
    });
}

/// Serves connections through hyper (with the header read timeout) until
/// SIGTERM or Ctrl-C, then lets in-flight requests finish (30 s at most).
async fn accept_until_shutdown(
    listener: tokio::net::TcpListener,
    app: Router,
    opts: &ServeOptions,
    stop: &tokio::sync::watch::Sender<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.max_connections.max(1)));
    let mut failing = AcceptFailures::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors (or any failure): back off
                        // instead of spinning, and say so once a while.
                        failing.failed(&e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                failing.recovered();
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tokio::spawn(refuse_busy(stream, opts.max_connections));
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(slot);
                });
            }
            _ = &mut shutdown => {
                eprintln!("shutting down: finishing in-flight requests");
                // Requests whose body is still arriving are not in flight:
                // answer them now rather than wait for a stalled client.
                let _ = stop.send(true);
                break;
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            eprintln!("gave up waiting for open connections after 30 s");
        }
    }
}

/// Accept failures, logged at most once per interval with a count.
#[derive(Default)]
struct AcceptFailures {
    last_log: Option<Instant>,
    since: u64,
}

impl AcceptFailures {
    const EVERY: Duration = Duration::from_secs(10);

    fn failed(&mut self, e: &std::io::Error) {
        self.since += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= Self::EVERY) {
            tracing::warn!(
                error = %e,
                failures = self.since,
                "Cannot accept connections; retrying every 100 ms (raise `ulimit -n` or lower --max-connections)"
            );
            self.last_log = Some(Instant::now());
            self.since = 0;
        }
    }

    fn recovered(&mut self) {
        if self.last_log.take().is_some() {
            tracing::info!("Accepting connections again.");
        }
        self.since = 0;
    }
}

/// Answers a connection over `--max-connections` with 503 and closes it.
///
/// The close lingers, as nginx's `lingering_close` does: the write side is
/// shut down and whatever the client already sent is read and dropped (for
/// at most [`LINGER`]) before the socket goes. Closing a socket with unread
/// request bytes makes the kernel send a reset, and a reset makes the
/// client drop the 503 it has not read yet, so it would see "connection
/// reset by peer" instead of the reason.
async fn refuse_busy(mut stream: tokio::net::TcpStream, max: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let msg = format!(
        "the server has its maximum of {max} connections open (--max-connections); retry later"
    );
    let body = json!({
        "error": "too_many_connections",
        "detail": msg,
        "error_code": mlflow_error_code(StatusCode::SERVICE_UNAVAILABLE),
        "message": msg,
    })
    .to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = async {
        stream.write_all(resp.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0usize;
        // Until the client closes its side, or it has sent more than a
        // request head's worth: a flood is not read forever.
        while drained < LINGER_BYTES {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(LINGER, answer).await;
}

/// How long a refused connection is kept to deliver its 503 (write and
/// lingering close together).
const LINGER: Duration = Duration::from_secs(2);
/// How much a refused client may send before its socket is closed anyway.
const LINGER_BYTES: usize = 1 << 20;

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn count(state: &AppState, route: &'static str, status: StatusCode, started: Option<Instant>) {
    let mut m = state.metrics.lock().expect("metrics lock");
    *m.requests.entry(route).or_default() += 1;
    if !status.is_success() {
        *m.errors.entry(status.as_u16()).or_default() += 1;
    }
    if let Some(t) = started {
        let s = t.elapsed().as_secs_f64();
        m.latency_sum += s;
        m.latency_count += 1;
        for (b, n) in m.buckets.iter_mut() {
            if s <= *b {
                *n += 1;
            }
        }
    }
}

/// Checks the request is JSON and parses it.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send `Content-Type: application/json` (got `{ct}`)"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        // `1e999` is valid JSON syntax but no finite number.
        if e.to_string().contains("number out of range") {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_instances",
                format!("a number is not finite: {e}"),
            );
        }
        problem(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// Rows checked against the model: the table to score, each row as the
/// model sees it (its known columns, for the log that retraining reads),
/// and the columns ignored because the model does not take them.
struct Scorable {
    table: Table,
    rows: Vec<Value>,
    ignored: std::collections::BTreeSet<String>,
}

/// One row as an object by feature name. Besides an object, MLflow takes a
/// bare value (a one-feature model) and a list of values (by position).
fn row_object<'r>(
    loaded: &Loaded,
    i: usize,
    row: &'r Value,
) -> Result<std::borrow::Cow<'r, Map<String, Value>>, String> {
    let inputs = &loaded.bundle.model.inputs;
    match row {
        Value::Object(o) => Ok(std::borrow::Cow::Borrowed(o)),
        Value::Array(values) if values.len() == inputs.len() => Ok(std::borrow::Cow::Owned(
            inputs.iter().map(|c| c.name.clone()).zip(values.iter().cloned()).collect(),
        )),
        Value::Array(values) => Err(format!(
            "row {} has {} values by position; the model takes {}",
            i + 1,
            values.len(),
            inputs.len()
        )),
        scalar if inputs.len() == 1 => Ok(std::borrow::Cow::Owned(
            std::iter::once((inputs[0].name.clone(), scalar.clone())).collect(),
        )),
        _ => Err(format!(
            "row {} is a bare value, which only a one-feature model takes; give an object of feature values",
            i + 1
        )),
    }
}

/// Rows (objects by feature name, or MLflow's bare values and lists) → a
/// table typed by the model's schema. Columns the model does not take are
/// ignored, or refused with `strict`.
fn rows_to_table(loaded: &Loaded, rows: &[Value], strict: bool) -> Result<Scorable, Response> {
    let unprocessable = |detail: String| {
        problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_instances",
            detail,
        )
    };
    if rows.is_empty() {
        return Err(unprocessable("no rows to score".into()));
    }
    let model = &loaded.bundle.model;
    let missing_ok = model.takes_missing();
    // Each missing feature and the first row that lacks it.
    let mut missing = std::collections::BTreeMap::new();
    let mut extra = std::collections::BTreeSet::new();
    let mut kept = Vec::with_capacity(rows.len());
    let mut columns: Vec<Column> = model
        .inputs
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            data: if c.ty == "numeric" {
                ColumnData::Numeric(Vec::with_capacity(rows.len()))
            } else {
                ColumnData::Categorical(Vec::with_capacity(rows.len()))
            },
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let obj = row_object(loaded, i, row).map_err(unprocessable)?;
        let mut known_cols = Map::new();
        for (k, v) in obj.iter() {
            let known = model.inputs.iter().any(|c| &c.name == k)
                || model.ignored.iter().any(|c| c == k)
                || model.target.as_deref() == Some(k.as_str());
            if known {
                known_cols.insert(k.clone(), v.clone());
            } else {
                extra.insert(k.clone());
            }
        }
        kept.push(Value::Object(known_cols));
        for col in &mut columns {
            match (obj.get(&col.name), &mut col.data) {
                (None, _) => {
                    missing.entry(col.name.clone()).or_insert(i + 1);
                }
                (Some(Value::Number(n)), ColumnData::Numeric(v)) => {
                    v.push(n.as_f64().unwrap_or(f64::NAN));
                }
                // A boosting model or an ONNX graph decides what a missing
                // value means (as `mlcycle predict` gives it an empty CSV
                // cell).
                (Some(Value::Null), ColumnData::Numeric(v)) if missing_ok => v.push(f64::NAN),
                (Some(other), ColumnData::Numeric(_)) => {
                    return Err(unprocessable(format!(
                        "row {}: `{}` must be a finite number, got {other}",
                        i + 1,
                        col.name
                    )));
                }
                // An empty string is missing, as an empty CSV cell is: the
                // same row scores the same from CSV and from JSON.
                (Some(Value::String(s)), ColumnData::Categorical(v)) if s.is_empty() => {
                    v.push(None)
                }
                (Some(Value::String(s)), ColumnData::Categorical(v)) => v.push(Some(s.clone())),
                (
                    Some(other @ (Value::Array(_) | Value::Object(_))),
                    ColumnData::Categorical(_),
                ) => {
                    return Err(unprocessable(format!(
                        "row {}: `{}` must be a category (a string or a number), got {other}",
                        i + 1,
                        col.name
                    )));
                }
                (Some(Value::Null), ColumnData::Categorical(v)) => v.push(None),
                (Some(other), ColumnData::Categorical(v)) => v.push(Some(other.to_string())),
            }
        }
    }
    if !missing.is_empty() || (strict && !extra.is_empty()) {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "missing feature(s): {}",
                missing
                    .into_iter()
                    .map(|(name, row)| format!("{name} (first in row {row})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !extra.is_empty() {
            parts.push(format!(
                "unknown feature(s): {}",
                extra.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let need: Vec<String> = model
            .inputs
            .iter()
            .map(|c| format!("{} ({})", c.name, c.ty))
            .collect();
        return Err(unprocessable(format!(
            "{}; the model takes: {}",
            parts.join("; "),
            need.join(", ")
        )));
    }
    Ok(Scorable {
        table: Table {
            columns,
            target: None,
            transforms: vec![],
        },
        rows: kept,
        ignored: extra,
    })
}

/// The header naming the columns a request sent that the model ignored.
const IGNORED_HEADER: &str = "x-mlcycle-ignored-columns";

/// Adds [`IGNORED_HEADER`] to `r` when columns were ignored.
/// Names are percent-encoded (`,`, `%`, controls and non-ASCII bytes),
/// so a list always parses back; past 50 names it ends with `...+N`.
fn with_ignored(r: Response, ignored: &std::collections::BTreeSet<String>) -> Response {
    with_list(r, IGNORED_HEADER, ignored.iter().map(|n| header_escape(n)))
}

/// Adds header `name` listing `items` (already escaped), comma-separated;
/// past 50 items the list ends with `...+N`. No header for no items.
fn with_list(
    mut r: Response,
    name: &'static str,
    items: impl ExactSizeIterator<Item = String>,
) -> Response {
    const MAX_ITEMS: usize = 50;
    let total = items.len();
    if total == 0 {
        return r;
    }
    let mut list: Vec<String> = items.take(MAX_ITEMS).collect();
    if total > MAX_ITEMS {
        list.push(format!("...+{}", total - MAX_ITEMS));
    }
    if let Ok(v) = header::HeaderValue::from_str(&list.join(",")) {
        r.headers_mut().insert(name, v);
    }
    r
}

/// The header naming the categories a request sent that the model's
/// one-hot encoders never saw: `column=value:rows`, comma-separated.
const UNKNOWN_HEADER: &str = "x-mlcycle-unknown-categories";

/// Adds [`UNKNOWN_HEADER`] to `r` when categories were unseen (escaped and
/// capped as [`with_ignored`]'s list).
fn with_unknown(r: Response, unknown: &[crate::transform::UnseenCategory]) -> Response {
    with_list(
        r,
        UNKNOWN_HEADER,
        unknown.iter().map(|u| {
            // `=` and `:` separate the parts: escaped inside them.
            let part = |x: &str| header_escape(x).replace('=', "%3D").replace(':', "%3A");
            format!("{}={}:{}", part(&u.column), part(&u.value), u.rows)
        }),
    )
}

/// A column name for a header list: bytes outside printable ASCII, and
/// `,` `%` `"`, as `%XX`; the empty name as `""`.
fn header_escape(name: &str) -> String {
    if name.is_empty() {
        return "\"\"".into();
    }
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if (0x21..0x7f).contains(&b) && !matches!(b, b',' | b'%' | b'"') || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Scores rows and logs each prediction durably; returns the predictions
/// as JSON values with their ids.
async fn score(state: &AppState, rows: &[Value]) -> Result<Scored, Response> {
    let loaded = state.model.read().expect("model lock").clone();
    let Scorable {
        table: t,
        rows: kept,
        ignored,
    } = rows_to_table(&loaded, rows, state.strict_columns)?;
    let unknown = crate::transform::unseen_categories(&loaded.bundle.model.transforms, &t);
    let pred = loaded.bundle.predict(&t).map_err(|e| match e {
        // The model failed, not the request.
        crate::model::ModelError::Runtime(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "model_failed",
            e.to_string(),
        ),
        e => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_instances",
            e.to_string(),
        ),
    })?;
    let values: Vec<Value> = match pred {
        Predictions::Values(v) => {
            // An input far outside what the model saw (`1e308`) can give
            // no finite number: an error, never a logged `null`.
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_instances",
                    format!(
                        "row {}: the model gives no finite prediction for these values",
                        i + 1
                    ),
                ));
            }
            v.into_iter().map(|x| json!(x)).collect()
        }
        Predictions::Classes { ids, .. } => ids
            .into_iter()
            .map(|i| {
                json!(loaded
                    .bundle
                    .model
                    .classes
                    .get(i)
                    .cloned()
                    .unwrap_or_default())
            })
            .collect(),
    };
    if state.window_cap > 0 && loaded.bundle.reference.is_some() {
        let mut w = state.window.lock().expect("window lock");
        for row in kept.iter().rev().take(state.window_cap).rev() {
            if w.len() == state.window_cap {
                w.pop_front();
            }
            w.push_back(row.clone());
        }
    }
    let mut out = Vec::with_capacity(values.len());
    let mut records = Vec::with_capacity(values.len());
    for (row, v) in kept.iter().zip(values) {
        let n = state.seq.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:x}-{n:x}", state.epoch);
        records.push(Record::Prediction {
            id: id.clone(),
            version: loaded.label.clone(),
            inputs: row.to_string(),
            output: v.to_string(),
        });
        out.push((id, v));
    }
    state.log.write(records).await.map_err(|e| {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "log_unavailable",
            format!("the prediction could not be recorded: {e}"),
        )
    })?;
    if !unknown.is_empty() {
        let rows: usize = unknown.iter().map(|u| u.rows).sum();
        state
            .metrics
            .lock()
            .expect("metrics lock")
            .unknown_categories += rows as u64;
    }
    Ok(Scored {
        loaded,
        predictions: out,
        ignored,
        unknown,
    })
}

/// Scored rows: the model that scored them, each prediction with its id,
/// and the columns ignored.
struct Scored {
    loaded: Arc<Loaded>,
    predictions: Vec<(String, Value)>,
    ignored: std::collections::BTreeSet<String>,
    /// Categories the model's one-hot encoders never saw (scored as all
    /// zeros).
    unknown: Vec<crate::transform::UnseenCategory>,
}

async fn predict(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let t0 = Instant::now();
    let r = async {
        let v = json_body(&headers, &body)?;
        let rows = v
            .get("instances")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_instances",
                    "expected {\"instances\": [{\"feature\": value, …}, …]}",
                )
            })?;
        let Scored {
            loaded,
            predictions,
            ignored,
            unknown,
        } = score(&state, rows).await?;
        let r = Json(json!({
            "model_version": loaded.label,
            "model": loaded.bundle.manifest.name,
            "predictions": predictions
                .into_iter()
                .map(|(id, p)| json!({"prediction_id": id, "prediction": p}))
                .collect::<Vec<_>>(),
        }))
        .into_response();
        Ok::<_, Response>(with_unknown(with_ignored(r, &ignored), &unknown))
    }
    .await
    .unwrap_or_else(|e| e);
    count(&state, "predict", r.status(), Some(t0));
    r
}

/// The rows of an `/invocations` body: JSON in one of MLflow's shapes, or
/// CSV with a header row (`text/csv`, as MLflow's CLI sends).
fn invocation_rows(headers: &HeaderMap, body: &Bytes) -> Result<Vec<Value>, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("text/csv") {
        return csv_rows(body).map_err(|e| problem(StatusCode::BAD_REQUEST, "invalid_csv", e));
    }
    let v = json_body(headers, body)?;
    mlflow_rows(&v).map_err(|(status, e)| problem(status, "invalid_request", e))
}

/// CSV with a header row → rows by column name; a cell that parses as a
/// finite number is a number, a missing one (empty, `NA`, `NaN`, `null`,
/// as `dataset.csv` and `mlcycle predict` read them) is null, anything
/// else text.
fn csv_rows(body: &[u8]) -> Result<Vec<Value>, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let names: Vec<String> = r
        .headers()
        .map_err(|e| format!("the CSV header row cannot be read: {e}"))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if names.iter().all(String::is_empty) {
        return Err("the CSV body needs a header row naming the features".into());
    }
    if let Some(dup) = first_duplicate(names.iter().map(String::as_str)) {
        return Err(format!("the CSV header names column `{dup}` twice"));
    }
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| {
            format!(
                "CSV row {} (line {}): {}",
                i + 1,
                i + 2,
                crate::table::csv_message(&e, names.len())
            )
        })?;
        let m: Map<String, Value> = names
            .iter()
            .zip(rec.iter())
            .map(|(n, cell)| {
                let cell = cell.trim();
                let v = match cell.parse::<f64>() {
                    Ok(x) if x.is_finite() => json!(x),
                    _ if crate::table::is_missing(cell) => Value::Null,
                    _ => Value::String(cell.to_string()),
                };
                (n.clone(), v)
            })
            .collect();
        rows.push(Value::Object(m));
    }
    Ok(rows)
}

/// The first name that comes twice (a column would silently take the
/// last of its values).
fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

/// The body keys that name MLflow's request formats.
const MLFLOW_FORMATS: [&str; 4] = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
];

/// MLflow scoring-server request shapes → rows (objects by feature name,
/// or bare values and lists that [`row_object`] maps). Exactly one format
/// key, as MLflow requires (400 otherwise).
fn mlflow_rows(v: &Value) -> Result<Vec<Value>, (StatusCode, String)> {
    let bad = |e: &str| (StatusCode::BAD_REQUEST, e.to_string());
    let obj = v.as_object().ok_or_else(|| bad("expected a JSON object"))?;
    let given: Vec<&str> = MLFLOW_FORMATS
        .iter()
        .copied()
        .filter(|k| obj.contains_key(*k))
        .collect();
    if given.is_empty() {
        return Err(bad(&format!(
            "the body names no request format; give exactly one of: {}",
            MLFLOW_FORMATS.join(", ")
        )));
    }
    if given.len() > 1 {
        return Err(bad(&format!(
            "the body has {} format keys ({}); give exactly one of: {}",
            given.len(),
            given.join(", "),
            MLFLOW_FORMATS.join(", ")
        )));
    }
    mlflow_shape(obj).map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e))
}

fn mlflow_shape(obj: &Map<String, Value>) -> Result<Vec<Value>, String> {
    if let Some(split) = obj.get("dataframe_split") {
        let cols = split
            .get("columns")
            .and_then(Value::as_array)
            .ok_or("`dataframe_split` needs `columns`, a list of column names")?;
        if let Some(bad) = cols.iter().find(|c| !c.is_string()) {
            return Err(format!(
                "`dataframe_split` `columns` must be names (strings), got {bad}"
            ));
        }
        let data = split
            .get("data")
            .and_then(Value::as_array)
            .ok_or("`dataframe_split` needs `data`, a list of rows (each a list of values)")?;
        if let Some(dup) = first_duplicate(cols.iter().filter_map(Value::as_str)) {
            return Err(format!("`dataframe_split` names column `{dup}` twice"));
        }
        return data
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let r = r
                    .as_array()
                    .ok_or_else(|| format!("`data` row {} must be a list", i + 1))?;
                if r.len() != cols.len() {
                    return Err(format!(
                        "`data` row {} has {} values, and `columns` names {}",
                        i + 1,
                        r.len(),
                        cols.len()
                    ));
                }
                let m: Map<String, Value> = cols
                    .iter()
                    .zip(r)
                    .map(|(c, v)| (c.as_str().unwrap_or_default().to_string(), v.clone()))
                    .collect();
                Ok(Value::Object(m))
            })
            .collect::<Result<_, _>>();
    }
    if let Some(records) = obj.get("dataframe_records") {
        return records
            .as_array()
            .cloned()
            .ok_or_else(|| "`dataframe_records` must be a list of objects".into());
    }
    for key in ["instances", "inputs"] {
        match obj.get(key) {
            Some(Value::Array(a)) => return Ok(a.clone()),
            Some(Value::Object(row)) if row.values().all(|v| !v.is_array()) => {
                // {"col": v, …}: one row
                return Ok(vec![Value::Object(row.clone())]);
            }
            Some(Value::Object(cols)) => {
                // {"col": [v, …], …}: columns of equal length. A short
                // column was padded with nulls, which a model that takes
                // missing values scored as missing.
                let mut lengths = Vec::with_capacity(cols.len());
                for (c, v) in cols {
                    let Some(a) = v.as_array() else {
                        return Err(format!(
                            "`{key}` gives `{c}` one value and other columns lists of values; give every column as a list"
                        ));
                    };
                    lengths.push((c, a.len()));
                }
                let n = lengths.first().map_or(0, |l| l.1);
                if let Some((c, len)) = lengths.iter().find(|l| l.1 != n) {
                    return Err(format!(
                        "the columns of `{key}` differ in length: `{}` has {n} values, `{c}` has {len}",
                        lengths[0].0
                    ));
                }
                return Ok((0..n)
                    .map(|i| {
                        Value::Object(
                            cols.iter()
                                .map(|(c, v)| (c.clone(), v[i].clone()))
                                .collect(),
                        )
                    })
                    .collect());
            }
            Some(_) => {
                return Err(format!(
                    "`{key}` must be a list of rows or an object of columns"
                ))
            }
            None => {}
        }
    }
    Err("expected one of `dataframe_split`, `dataframe_records`, `instances`, `inputs`".into())
}

async fn invocations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t0 = Instant::now();
    let r = async {
        let rows = invocation_rows(&headers, &body)?;
        let Scored {
            predictions,
            ignored,
            unknown,
            ..
        } = score(&state, &rows).await?;
        let r = Json(json!({
            "predictions": predictions.into_iter().map(|(_, p)| p).collect::<Vec<_>>()
        }))
        .into_response();
        Ok::<_, Response>(with_unknown(with_ignored(r, &ignored), &unknown))
    }
    .await
    .unwrap_or_else(|e| e);
    count(&state, "invocations", r.status(), Some(t0));
    r
}

async fn feedback(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        let v = json_body(&headers, &body)?;
        let label = v
            .get("label")
            .cloned()
            .filter(|l| !l.is_null())
            .ok_or_else(|| {
                problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_feedback",
                    "expected {\"prediction_id\": …, \"label\": …} or {\"row\": {…}, \"label\": …}",
                )
            })?;
        if let Value::Number(n) = &label {
            if n.as_f64().is_none_or(|x| !x.is_finite()) {
                return Err(problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_feedback",
                    "`label` must be finite",
                ));
            }
        }
        let loaded = state.model.read().expect("model lock").clone();
        check_label(&loaded.bundle.model, &label)
            .map_err(|e| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_feedback", e))?;
        let (prediction_id, row, version) = match (
            v.get("prediction_id").and_then(Value::as_str),
            v.get("row"),
        ) {
            (Some(id), _) => {
                let (row, version) = logged_prediction(&state, id).await?;
                (Some(id.to_string()), row, Some(version))
            }
            (None, Some(row)) if row.is_object() => {
                let checked =
                    rows_to_table(&loaded, std::slice::from_ref(row), state.strict_columns)?;
                // A row the model gives no finite prediction for
                // (`1e308`) would poison the retrain, as at /predict.
                let finite = match loaded.bundle.predict(&checked.table) {
                    Ok(Predictions::Values(v)) => v.iter().all(|x| x.is_finite()),
                    Ok(Predictions::Classes { .. }) => true,
                    Err(_) => false,
                };
                if !finite {
                    return Err(problem(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "invalid_feedback",
                            "the model gives no finite prediction for `row`; its values are out of any usable range",
                        ));
                }
                (None, checked.rows[0].clone(), None)
            }
            _ => {
                return Err(problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_feedback",
                    "give `prediction_id` (from /predict) or `row` (the features) with `label`",
                ))
            }
        };
        let line = json!({
            "row": row,
            "label": label,
            "prediction_id": prediction_id,
            "model_version": version,
            "at": store::now_rfc3339(),
        })
        .to_string();
        // Take a place under the quota before writing: concurrent posts
        // cannot all pass a check made before any of them is counted.
        if state
            .feedback_count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < state.quota).then_some(n + 1)
            })
            .is_err()
        {
            return Err(problem(
                StatusCode::TOO_MANY_REQUESTS,
                "feedback_quota",
                format!(
                    "the feedback log holds its quota of {} records; raise --feedback-quota",
                    state.quota
                ),
            ));
        }
        if let Err(e) = append_feedback(&state, line).await {
            state.feedback_count.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        state.metrics.lock().expect("metrics lock").feedback += 1;
        Ok::<_, Response>(Json(json!({"status": "recorded"})).into_response())
    };
    let r = r.await.unwrap_or_else(|e| e);
    count(&state, "feedback", r.status(), None);
    r
}

/// The largest magnitude a numeric feedback label may have.
const MAX_LABEL: f64 = 1e150;

/// Checks a feedback label against what the model predicts, before it is
/// acknowledged: a bad label would otherwise sit in the log that the next
/// retrain reads.
fn check_label(model: &crate::model::Model, label: &Value) -> Result<(), String> {
    use crate::model::Task;
    match model.task {
        // Squared errors of labels past 1e150 overflow the metrics of the
        // retrain (MSE, R²): such a label is refused like a non-number.
        Task::Regression => match label.as_f64() {
            Some(x) if x.is_finite() && x.abs() <= MAX_LABEL => Ok(()),
            _ => Err(format!(
                "`label` must be a finite number (at most 1e150 in magnitude): this model predicts `{}` as a number (got {label})",
                model.target.as_deref().unwrap_or("its target")
            )),
        },
        Task::Classification | Task::Clustering => {
            let name = match label {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(format!("`label` must be a class name (got {label})")),
            };
            if name.is_empty() {
                return Err("`label` is empty; give the true class".into());
            }
            if !model.classes.is_empty() && !model.classes.contains(&name) {
                return Err(format!(
                    "`label` {label} is not one of the model's classes: {}",
                    model.classes.join(", ")
                ));
            }
            Ok(())
        }
    }
}

/// The inputs and model version of prediction `id`, from the log.
async fn logged_prediction(state: &AppState, id: &str) -> Result<(Value, String), Response> {
    let log = state.log.path.clone();
    let lookup = id.to_string();
    let found = tokio::task::spawn_blocking(move || -> Option<(String, String)> {
        let conn = rusqlite::Connection::open(log).ok()?;
        conn.query_row(
            "SELECT inputs, model_version FROM predictions WHERE id = ?1",
            [lookup],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| {
        problem(
            StatusCode::NOT_FOUND,
            "unknown_prediction",
            format!("no prediction `{id}` was made by this server"),
        )
    })?;
    let row: Value = serde_json::from_str(&found.0).unwrap_or(Value::Null);
    Ok((row, found.1))
}

/// Appends one line to the feedback log and fsyncs it before returning.
async fn append_feedback(state: &Arc<AppState>, line: String) -> Result<(), Response> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = st.feedback_log.lock().expect("feedback log lock");
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()))
    .map_err(|e| problem(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", e))
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let loaded = state.model.read().expect("model lock").clone();
    Json(json!({"status": "ready", "model_version": loaded.label})).into_response()
}

async fn metadata(State(state): State<Arc<AppState>>) -> Response {
    let l = state.model.read().expect("model lock").clone();
    let m = &l.bundle.model;
    Json(json!({
        "model": l.bundle.manifest.name,
        "model_version": l.label,
        "registry_version": l.version,
        "bundle_version": l.bundle.manifest.version,
        "kind": m.kind,
        "task": m.task.as_str(),
        "inputs": m.inputs,
        "target": m.target,
        "classes": m.classes,
        "metrics": l.bundle.metrics,
    }))
    .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = state.metrics.lock().expect("metrics lock");
    let mut s = String::new();
    s.push_str(
        "# HELP mlcycle_requests_total Requests by route.\n# TYPE mlcycle_requests_total counter\n",
    );
    let mut routes: Vec<_> = m.requests.iter().collect();
    routes.sort();
    for (r, n) in routes {
        s.push_str(&format!("mlcycle_requests_total{{route=\"{r}\"}} {n}\n"));
    }
    s.push_str("# HELP mlcycle_errors_total Error responses by status.\n# TYPE mlcycle_errors_total counter\n");
    let mut errors: Vec<_> = m.errors.iter().collect();
    errors.sort();
    for (c, n) in errors {
        s.push_str(&format!("mlcycle_errors_total{{status=\"{c}\"}} {n}\n"));
    }
    s.push_str("# HELP mlcycle_predict_latency_seconds Latency of scoring requests.\n# TYPE mlcycle_predict_latency_seconds histogram\n");
    for (b, n) in &m.buckets {
        s.push_str(&format!(
            "mlcycle_predict_latency_seconds_bucket{{le=\"{b}\"}} {n}\n"
        ));
    }
    s.push_str(&format!(
        "mlcycle_predict_latency_seconds_bucket{{le=\"+Inf\"}} {0}\nmlcycle_predict_latency_seconds_sum {1}\nmlcycle_predict_latency_seconds_count {0}\n",
        m.latency_count, m.latency_sum
    ));
    s.push_str(&format!(
        "# HELP mlcycle_feedback_total Feedback records stored.\n# TYPE mlcycle_feedback_total counter\nmlcycle_feedback_total {}\n",
        m.feedback
    ));
    s.push_str(&format!(
        "# HELP mlcycle_unknown_categories_total Rows scored with a category the model never saw (encoded as all zeros).\n# TYPE mlcycle_unknown_categories_total counter\nmlcycle_unknown_categories_total {}\n",
        m.unknown_categories
    ));
    drop(m);
    drift_metrics(&state, &mut s);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s).into_response()
}

/// Each input column's drift over the window of served rows against the
/// bundle's training-row profile: the same PSI and KS as `monitor.drift`.
fn drift_metrics(state: &AppState, s: &mut String) {
    let loaded = state.model.read().expect("model lock").clone();
    let Some(profile) = &loaded.bundle.reference else {
        return;
    };
    let rows: Vec<Value> = state
        .window
        .lock()
        .expect("window lock")
        .iter()
        .cloned()
        .collect();
    s.push_str(&format!(
        "# HELP mlcycle_drift_window_rows Served rows the drift gauges are measured on.\n# TYPE mlcycle_drift_window_rows gauge\nmlcycle_drift_window_rows {}\n",
        rows.len()
    ));
    if rows.is_empty() {
        return;
    }
    let mut psi = String::new();
    let mut ks = String::new();
    let mut pvalue = String::new();
    for (name, p) in &profile.columns {
        // A column no served row sends (the model does not take it) has no
        // drift to report.
        if rows.iter().all(|r| r.get(name).is_none()) {
            continue;
        }
        let data = match p {
            crate::monitor::ColumnProfile::Numeric { .. } => ColumnData::Numeric(
                rows.iter()
                    .map(|r| r.get(name).and_then(Value::as_f64).unwrap_or(f64::NAN))
                    .collect(),
            ),
            crate::monitor::ColumnProfile::Categorical { .. } => ColumnData::Categorical(
                rows.iter()
                    .map(|r| match r.get(name) {
                        None | Some(Value::Null) => None,
                        Some(Value::String(v)) => Some(v.clone()),
                        // As a table writes it (`1.0` is `1`), so the live
                        // figures are `monitor.drift`'s.
                        Some(Value::Number(n)) => {
                            Some(crate::table::format_number(n.as_f64().unwrap_or(f64::NAN)))
                        }
                        Some(other) => Some(other.to_string()),
                    })
                    .collect(),
            ),
        };
        let Some(d) = profile.drift(name, &data) else {
            continue;
        };
        let label = name
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        psi.push_str(&format!(
            "mlcycle_feature_psi{{feature=\"{label}\"}} {}\n",
            d.psi
        ));
        if let (Some(k), Some(pv)) = (d.ks_statistic, d.ks_pvalue) {
            ks.push_str(&format!(
                "mlcycle_feature_ks_statistic{{feature=\"{label}\"}} {k}\n"
            ));
            pvalue.push_str(&format!(
                "mlcycle_feature_ks_pvalue{{feature=\"{label}\"}} {pv}\n"
            ));
        }
    }
    s.push_str("# HELP mlcycle_feature_psi Population stability index of each input column, served window against the training rows.\n# TYPE mlcycle_feature_psi gauge\n");
    s.push_str(&psi);
    s.push_str("# HELP mlcycle_feature_ks_statistic Two-sample Kolmogorov-Smirnov statistic of each numeric input column, served window against the training rows.\n# TYPE mlcycle_feature_ks_statistic gauge\n");
    s.push_str(&ks);
    s.push_str("# HELP mlcycle_feature_ks_pvalue Asymptotic p-value of that test.\n# TYPE mlcycle_feature_ks_pvalue gauge\n");
    s.push_str(&pvalue);
}
