//! What the `/api/` endpoints answer, read from the workspace on each
//! request: the pipeline file and lock (with the journal of a run in
//! progress), the run history, the experiments and the model registry
//! databases. Every answer is JSON built here, for the pages in `assets/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path};

use serde_json::{json, Map, Value};

use mlcycle_pipeline::config::{Action, Source};
use mlcycle_pipeline::experiments::store::ExpStore;
use mlcycle_pipeline::history::History;
use mlcycle_pipeline::{Session, SessionOptions, Workspace};

use super::layout::layout;
use super::{ApiError, Ui};

/// The most runs the runs page lists.
const RUNS_SHOWN: usize = 500;
/// The most recorded durations a stage's panel shows.
const HISTORY_SHOWN: usize = 50;
/// The most table rows and log lines a stage's panel shows.
const HEAD_ROWS: usize = 10;
const LOG_LINES: usize = 200;

fn workspace(ui: &Ui) -> Workspace {
    Workspace::new(ui.root.clone())
}

fn open_session(ui: &Ui) -> Result<Session, ApiError> {
    let opts = SessionOptions {
        registry: &ui.registry,
        overrides: &[],
        read_ahead: true,
        strict_sources: false,
        parent: None,
    };
    Session::open(&ui.file, &opts).map_err(|e| {
        // Every problem, with its file:line:column and source lines, as
        // `mlcycle validate` prints them (without colours).
        let mut text = String::new();
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        if handler.render_report(&mut text, &e).is_err() {
            text = e.to_string();
        }
        ApiError::unprocessable(format!("the pipeline does not load:\n{text}"))
    })
}

/// Each stage's state and reasons as the pages show them: `status`'s,
/// with `running` for a stage the run in progress is in (by its journal)
/// and `failed` for a stale stage whose last recorded run failed.
type States = (Vec<(&'static str, Vec<String>)>, Option<i64>);
fn states(session: &Session) -> Result<States, ApiError> {
    let p = session.pipeline();
    let all = vec![true; p.stages.len()];
    let st = session
        .status(&all)
        .map_err(|e| ApiError::internal(format!("cannot assess the stages: {e}")))?;
    let ws = session.workspace();
    // One open of the history for both questions.
    let history = History::open(ws).ok();
    let live = running(ws, history.as_ref());
    let last = history
        .as_ref()
        .and_then(|h| h.last_outcomes().ok())
        .unwrap_or_default();
    let out =
        p.stages
            .iter()
            .zip(st)
            .map(|(s, status)| {
                if let Some(run) = live.get(&s.id) {
                    return ("running", vec![format!("running in run {run}")]);
                }
                let reasons: Vec<String> = status.reasons.iter().map(ToString::to_string).collect();
                let stale = status.state != "fresh" && status.state != "frozen";
                let failed =
                    status.reasons.iter().any(|r| {
                        matches!(r, mlcycle_pipeline::fingerprint::StaleReason::Unfinished)
                    }) || last.get(&s.id).is_some_and(|o| o == "failed");
                if stale && failed {
                    ("failed", reasons)
                } else {
                    (status.state, reasons)
                }
            })
            .collect();
    Ok((out, live.values().next().copied()))
}

/// The declared name of a `matrix:` instance (`train` for `train@0.1`).
fn group(id: &str) -> &str {
    id.split_once('@').map_or(id, |(base, _)| base)
}

/// The id of a run recorded as in progress whose process is alive.
fn running_run(ws: &Workspace) -> Option<i64> {
    live_runs(&History::open(ws).ok()?).first().copied()
}

/// The ids of the runs recorded as in progress (opening the history
/// settles those whose process died).
fn live_runs(h: &History) -> Vec<i64> {
    h.runs(5)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.status == "running")
        .map(|r| r.id)
        .collect()
}

/// Stages the run in progress is in, by the journal: (stage → run id).
fn running(ws: &Workspace, history: Option<&History>) -> HashMap<String, i64> {
    let Ok(lock) = ws.read_lock() else {
        return HashMap::new();
    };
    let live = history.map(live_runs).unwrap_or_default();
    lock.in_flight
        .into_iter()
        .filter_map(|(stage, run)| run.filter(|r| live.contains(r)).map(|r| (stage, r)))
        .collect()
}

/// The DAG with each stage's state and reasons, laid out.
pub fn pipeline(ui: &Ui) -> Result<Value, ApiError> {
    let session = open_session(ui)?;
    let p = session.pipeline();
    let graph = session.graph();
    let (st, run) = states(&session)?;
    let n = p.stages.len();
    let upstream: Vec<Vec<usize>> = (0..n).map(|i| graph.upstream(i).collect()).collect();
    let groups: Vec<&str> = p.stages.iter().map(|s| group(&s.id)).collect();
    let lay = layout(n, graph.order(), &upstream, &groups);
    let mut stages = Vec::with_capacity(n);
    for (i, s) in p.stages.iter().enumerate() {
        let (state, reasons) = &st[i];
        stages.push(json!({
            "id": s.id,
            "kind": s.kind,
            "group": groups[i],
            "state": state,
            "reasons": reasons,
            "col": lay.at[i].0,
            "row": lay.at[i].1,
        }));
    }
    let edges: Vec<Value> = (0..n)
        .flat_map(|i| upstream[i].iter().map(move |&u| json!([u, i])))
        .collect();
    Ok(json!({
        "name": p.name,
        "stages": stages,
        "edges": edges,
        "columns": lay.columns,
        "rows": lay.rows,
        "running": run,
    }))
}

/// One stage: its kind, params, inputs, outputs (with what can be shown
/// of them), its last log and its recorded durations.
pub fn stage(ui: &Ui, id: &str) -> Result<Value, ApiError> {
    let session = open_session(ui)?;
    let p = session.pipeline();
    let Some(i) = p.stages.iter().position(|s| s.id == id) else {
        return Err(ApiError::not_found(format!(
            "no stage `{id}` in the pipeline"
        )));
    };
    let s = &p.stages[i];
    // Judged with the whole pipeline, so that an out-of-date upstream
    // stage counts, as in `mlcycle status` and the DAG.
    let (st, _) = states(&session)?;
    let (state, reasons) = &st[i];
    let ws = session.workspace();
    let inputs: Vec<Value> = s
        .inputs
        .iter()
        .map(|inp| {
            let from = match &inp.source {
                Source::Stage { stage, output } => json!({
                    "stage": p.stages[*stage].id,
                    "port": p.stages[*stage].outputs[*output].name,
                }),
                Source::File(_) => Value::Null,
            };
            json!({"name": inp.name, "path": inp.path, "from": from})
        })
        .collect();
    let outputs: Vec<Value> = s
        .outputs
        .iter()
        .map(|o| output_view(&ws.root, &o.name, &o.path, o.metrics, o.plots))
        .collect();
    let (command, with) = match &s.action {
        Action::Builtin(_) => (Value::Null, s.config.get("with").cloned()),
        _ => (s.config.get("run").cloned().unwrap_or(Value::Null), None),
    };
    let history = History::open(ws).map_err(|e| ApiError::internal(e.to_string()))?;
    let past = history
        .stage_history(&s.id, HISTORY_SHOWN)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // The log of the stage's latest run that ran it (a run that kept no
    // log for it says so, rather than showing an older run's).
    let log = past
        .iter()
        .find(|(_, _, row)| row.outcome == "ran" || row.outcome == "failed")
        .map(|(run, _, _)| {
            let path = ws
                .runs_dir()
                .join(run.to_string())
                .join(format!("{}.log", s.id));
            match beneath(&ws.runs_dir(), &path) {
                Some(p) => json!({"run": run, "text": tail(&p, LOG_LINES)}),
                None => json!({"run": run, "text": null}),
            }
        });
    let durations: Vec<Value> = past
        .iter()
        .map(|(run, at, row)| {
            json!({"run": run, "at": at, "outcome": row.outcome, "duration_ms": row.duration_ms})
        })
        .collect();
    Ok(json!({
        "id": s.id,
        "kind": s.kind,
        "group": group(&s.id),
        "state": state,
        "reasons": reasons,
        "params": s.params,
        "with": with,
        "command": command,
        "inputs": inputs,
        "outputs": outputs,
        "log": log,
        "history": durations,
    }))
}

/// What the panel shows of an output: metrics inline, a table's schema
/// and first rows, a plot folder's images (as links to `/api/file`).
fn output_view(root: &Path, name: &str, rel: &str, metrics: bool, plots: bool) -> Value {
    let joined = root.join(rel.trim_end_matches('/'));
    // Never through a link out of the workspace (what is read is shown).
    let path = beneath(root, &joined);
    if path.is_none() && std::fs::symlink_metadata(&joined).is_ok() {
        return json!({"name": name, "path": rel, "exists": true, "outside": true});
    }
    let path = path.unwrap_or(joined);
    let meta = std::fs::metadata(&path).ok();
    let mut v = json!({
        "name": name,
        "path": rel,
        "exists": meta.is_some(),
        "bytes": meta.as_ref().filter(|m| m.is_file()).map(|m| m.len()),
        "metrics_flag": metrics,
        "plots_flag": plots,
    });
    let Some(meta) = meta else { return v };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if meta.is_file() && (ext == "json" || ext == "yaml" || ext == "yml") && meta.len() < 256 * 1024
    {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let parsed: Option<Value> = if ext == "json" {
            serde_json::from_str(&text).ok()
        } else {
            serde_norway::from_str(&text).ok()
        };
        // A model's JSON is large and not for reading: say what it is.
        if let Some(Value::Object(m)) = &parsed {
            if m.contains_key("format") && m.contains_key("inputs") && m.contains_key("task") {
                v["model"] = json!({
                    "kind": m.get("kind"),
                    "task": m.get("task"),
                    "target": m.get("target"),
                });
                return v;
            }
        }
        v["json"] = parsed.unwrap_or(Value::Null);
    } else if meta.is_file() && ext == "arrow" {
        if let Ok(t) = mlcycle_stages::table::Table::read(&path) {
            v["table"] = table_head(&t);
        }
    } else if meta.is_file() && (ext == "svg" || ext == "png") {
        v["images"] = json!([rel]);
    } else if meta.is_dir() {
        let mut images: Vec<String> = std::fs::read_dir(&path)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|f| f.ends_with(".svg"))
                    .map(|f| format!("{}/{f}", rel.trim_end_matches('/')))
                    .collect()
            })
            .unwrap_or_default();
        images.sort();
        v["images"] = json!(images);
    }
    v
}

fn table_head(t: &mlcycle_stages::table::Table) -> Value {
    use mlcycle_stages::table::ColumnData;
    let columns: Vec<Value> = t
        .columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": match c.data { ColumnData::Numeric(_) => "number", ColumnData::Categorical(_) => "category" },
                "target": t.target.as_deref() == Some(c.name.as_str()),
            })
        })
        .collect();
    let n = t.n_rows().min(HEAD_ROWS);
    let rows: Vec<Value> = (0..n)
        .map(|r| {
            Value::Array(
                t.columns
                    .iter()
                    .map(|c| match &c.data {
                        ColumnData::Numeric(v) => {
                            serde_json::Number::from_f64(v[r]).map_or(Value::Null, Value::Number)
                        }
                        ColumnData::Categorical(v) => {
                            v[r].clone().map_or(Value::Null, Value::String)
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    json!({"columns": columns, "rows": rows, "n_rows": t.n_rows()})
}

/// The last `n` lines of a text file, after a line saying how many were
/// left out and where the whole log is.
fn tail(path: &Path, n: usize) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let skipped = lines.len().saturating_sub(n);
    let shown = lines[skipped..].join("\n");
    if skipped == 0 {
        shown
    } else {
        format!(
            "… {skipped} earlier lines not shown; the whole log is {}\n{shown}",
            path.display()
        )
    }
}

/// `path` resolved, when it exists and lies beneath `root` (resolved):
/// no link leads out.
fn beneath(root: &Path, path: &Path) -> Option<std::path::PathBuf> {
    let root = root.canonicalize().ok()?;
    let full = path.canonicalize().ok()?;
    full.starts_with(&root).then_some(full)
}

/// A file beneath a declared output of the pipeline, with its content
/// type; anything else (a source file, a path with `..`, a link out of
/// the workspace) is refused.
pub fn output_file(ui: &Ui, rel: &str) -> Result<(Vec<u8>, &'static str), ApiError> {
    let refused = || ApiError::not_found(format!("`{rel}` is not a file of a stage's output"));
    let p = Path::new(rel);
    if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(refused());
    }
    let session = open_session(ui)?;
    let declared = session.pipeline().stages.iter().any(|s| {
        s.outputs.iter().any(|o| {
            let out = Path::new(o.path.trim_end_matches('/'));
            p == out || p.starts_with(out)
        })
    });
    if !declared {
        return Err(refused());
    }
    let root = ui.root.canonicalize().map_err(|_| refused())?;
    let full = root.join(p).canonicalize().map_err(|_| refused())?;
    if !full.starts_with(&root) || !full.is_file() {
        return Err(refused());
    }
    let ty = match full.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        "md" | "txt" | "log" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let bytes = std::fs::read(&full).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((bytes, ty))
}

pub fn runs(ui: &Ui) -> Result<Value, ApiError> {
    let h = History::open(&workspace(ui)).map_err(|e| ApiError::internal(e.to_string()))?;
    let runs = h
        .runs(RUNS_SHOWN)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json!({ "runs": runs }))
}

pub fn run(ui: &Ui, id: i64) -> Result<Value, ApiError> {
    let ws = workspace(ui);
    let h = History::open(&ws).map_err(|e| ApiError::internal(e.to_string()))?;
    let Some((run, mut stages)) = h.run(id).map_err(|e| ApiError::internal(e.to_string()))? else {
        return Err(ApiError::not_found(format!("no run {id} in the history")));
    };
    // A run in progress has recorded nothing yet: its journal says what it
    // finished so far and what it is running.
    if run.status == "running" && stages.is_empty() {
        if let Ok(lock) = ws.read_lock() {
            for (stage, done) in lock.finished_in.iter().filter(|(_, d)| d.run == id) {
                stages.push(mlcycle_pipeline::history::StageRow {
                    stage: stage.clone(),
                    outcome: done.outcome.clone(),
                    duration_ms: done.ms as i64,
                    start_ms: None,
                    reasons: vec![],
                    detail: None,
                });
            }
            for (stage, _) in lock.in_flight.iter().filter(|(_, r)| **r == Some(id)) {
                stages.push(mlcycle_pipeline::history::StageRow {
                    stage: stage.clone(),
                    outcome: "running".into(),
                    duration_ms: 0,
                    start_ms: None,
                    reasons: vec![],
                    detail: None,
                });
            }
        }
    }
    let logs: Vec<String> = stages
        .iter()
        .filter(|s| {
            ws.runs_dir()
                .join(id.to_string())
                .join(format!("{}.log", s.stage))
                .exists()
        })
        .map(|s| s.stage.clone())
        .collect();
    Ok(json!({"run": run, "stages": stages, "logs": logs}))
}

pub fn run_log(ui: &Ui, id: i64, stage: &str) -> Result<Value, ApiError> {
    let ws = workspace(ui);
    let none = || ApiError::not_found(format!("run {id} kept no log for stage `{stage}`"));
    // Only the log of a stage the run recorded, and never through a link.
    let h = History::open(&ws).map_err(|e| ApiError::internal(e.to_string()))?;
    let recorded = h
        .run(id)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .is_some_and(|(_, stages)| stages.iter().any(|s| s.stage == stage));
    if !recorded || stage.contains('/') {
        return Err(none());
    }
    let path = ws
        .runs_dir()
        .join(id.to_string())
        .join(format!("{stage}.log"));
    let path = beneath(&ws.runs_dir(), &path)
        .filter(|p| p.is_file())
        .ok_or_else(none)?;
    Ok(json!({"run": id, "stage": stage, "text": tail(&path, LOG_LINES * 5)}))
}

fn exp_store(ui: &Ui) -> Result<Option<ExpStore>, ApiError> {
    let state = ui.root.join(".mlcycle");
    ExpStore::open_existing(&state).map_err(|e| ApiError::internal(e.to_string()))
}

/// Every experiment, by column: names, statuses, then one array per param
/// and per metric (`null` where a row has no value). Columnar, so ten
/// thousand rows × fifty metrics stay a few megabytes and the page builds
/// typed arrays from them to sort.
pub fn experiments(ui: &Ui) -> Result<Value, ApiError> {
    let Some(store) = exp_store(ui)? else {
        return Ok(json!({"count": 0, "params": [], "metrics": [], "rows": {}}));
    };
    let l = store
        .listing()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let n = l.rows.len();
    let column = |names: &[String],
                  cells: &dyn Fn(
        &mlcycle_pipeline::experiments::listing::Row,
    ) -> &[(u32, mlcycle_pipeline::experiments::listing::Cell)]| {
        let mut cols: Vec<Vec<Value>> = vec![vec![Value::Null; n]; names.len()];
        for (r, row) in l.rows.iter().enumerate() {
            for (c, v) in cells(row) {
                cols[*c as usize][r] = v.to_json();
            }
        }
        names
            .iter()
            .zip(cols)
            .map(|(name, values)| json!({"name": name, "values": values}))
            .collect::<Vec<_>>()
    };
    let params = column(&l.params.names, &|r| &r.params);
    let metrics = column(&l.metrics.names, &|r| &r.metrics);
    let rows = json!({
        "name": l.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "status": l.rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        "created_at": l.rows.iter().map(|r| r.created_at.as_str()).collect::<Vec<_>>(),
        "commit": l.rows.iter().map(|r| r.commit.as_deref()).collect::<Vec<_>>(),
        "duration_ms": l.rows.iter().map(|r| r.duration_ms).collect::<Vec<_>>(),
    });
    Ok(json!({"count": n, "params": params, "metrics": metrics, "rows": rows}))
}

/// Several experiments whole: params, metrics and step-wise metrics.
pub fn compare(ui: &Ui, names: &[String]) -> Result<Value, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("name the experiments: ?names=a,b"));
    }
    let Some(store) = exp_store(ui)? else {
        return Err(ApiError::not_found("no experiment was recorded here"));
    };
    let mut out = Vec::new();
    for name in names {
        let rec = mlcycle_pipeline::experiments::find(&store, name)
            .map_err(|e| ApiError::not_found(e.to_string()))?;
        let steps = store
            .steps_of(name)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut v = serde_json::to_value(&rec).map_err(|e| ApiError::internal(e.to_string()))?;
        v["steps"] = Value::Object(steps);
        out.push(v);
    }
    Ok(json!({ "experiments": out }))
}

/// The registry: versions, the champion and its changes, the promotion
/// decisions, and the live numbers of a `mlcycle serve` of this workspace.
pub fn models(ui: &Ui) -> Result<Value, ApiError> {
    use mlcycle_stages::deploy::registry::ModelRegistry;
    let state = ui.root.join(".mlcycle");
    let serving = serve_stats(&state);
    if !state.join("mlcycle.db").exists() {
        return Ok(
            json!({"versions": [], "champion": null, "events": [], "decisions": [], "serve": serving}),
        );
    }
    let reg = ModelRegistry::open(&state).map_err(|e| ApiError::internal(e.to_string()))?;
    let e = |x: mlcycle_stages::deploy::registry::RegistryError| ApiError::internal(x.to_string());
    Ok(json!({
        "versions": reg.list().map_err(e)?,
        "champion": reg.champion_version().map_err(e)?,
        "events": reg.events().map_err(e)?,
        "decisions": reg.decisions().map_err(e)?,
        "serve": serving,
    }))
}

/// What `mlcycle serve` announces in `.mlcycle/serve.json` (its address
/// and process), with the counters of its `/metrics` read now; `null`
/// when no server of this workspace is up.
fn serve_stats(state: &Path) -> Value {
    let Ok(text) = std::fs::read_to_string(state.join("serve.json")) else {
        return Value::Null;
    };
    let Ok(info) = serde_json::from_str::<Value>(&text) else {
        return Value::Null;
    };
    let alive = info["pid"]
        .as_u64()
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
    let Some(addr) = info["addr"].as_str().filter(|_| alive) else {
        return Value::Null;
    };
    let Some(text) = http_get(addr, "/metrics") else {
        return json!({"addr": addr, "up": false});
    };
    let mut requests = 0.0;
    let mut m: BTreeMap<&str, f64> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(x) = value.parse::<f64>() else {
            continue;
        };
        if name.starts_with("mlcycle_requests_total") {
            requests += x;
        } else if !name.contains('{') {
            m.insert(name, x);
        }
    }
    let count = m
        .get("mlcycle_predict_latency_seconds_count")
        .copied()
        .unwrap_or(0.0);
    let sum = m
        .get("mlcycle_predict_latency_seconds_sum")
        .copied()
        .unwrap_or(0.0);
    json!({
        "addr": addr,
        "up": true,
        "requests": requests,
        "predictions": count,
        "mean_latency_ms": if count > 0.0 { Some(sum / count * 1e3) } else { None },
        "feedback": m.get("mlcycle_feedback_total"),
    })
}

/// A plain HTTP/1.1 GET on loopback with a short timeout: the body, when
/// the answer is 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let t = std::time::Duration::from_millis(500);
    let mut c = std::net::TcpStream::connect_timeout(&sock, t).ok()?;
    c.set_read_timeout(Some(t)).ok()?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    c.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Runs an action as the CLI would, in a child `mlcycle` process: `run`
/// starts in the background (the pipeline page follows it live); the
/// others answer with what the command printed.
pub fn action(ui: &Ui, name: &str, body: &Value) -> Result<Value, ApiError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let args: Vec<String> = match name {
        "run" => vec!["run".into()],
        "apply" => {
            let exp = text("name")
                .ok_or_else(|| ApiError::bad_request("give the experiment's `name`"))?;
            vec!["exp".into(), "apply".into(), "--".into(), exp]
        }
        "promote" => {
            let v = body
                .get("version")
                .and_then(Value::as_i64)
                .ok_or_else(|| ApiError::bad_request("give the `version` to promote"))?;
            vec![
                "models".into(),
                "promote".into(),
                v.to_string(),
                "--reason".into(),
                "promoted from mlcycle ui".into(),
            ]
        }
        "rollback" => vec![
            "models".into(),
            "rollback".into(),
            "--reason".into(),
            "rolled back from mlcycle ui".into(),
        ],
        other => {
            return Err(ApiError::not_found(format!(
                "no action `{other}`; the actions are run, apply, promote and rollback"
            )))
        }
    };
    let exe = std::env::current_exe().map_err(|e| ApiError::internal(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("-C")
        .arg(&ui.root)
        .args(&args)
        .arg("--quiet")
        .stdin(std::process::Stdio::null());
    if name == "run" {
        // One at a time: a second would only wait for the first's lock.
        if let Some(run) = running_run(&workspace(ui)) {
            return Err(ApiError::conflict(format!(
                "run {run} is in progress; wait for it to finish"
            )));
        }
        let state = ui.root.join(".mlcycle");
        std::fs::create_dir_all(&state).map_err(|e| ApiError::internal(e.to_string()))?;
        let log = state.join("ui-run.log");
        let out = std::fs::File::create(&log).map_err(|e| ApiError::internal(e.to_string()))?;
        let err = out
            .try_clone()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let child = cmd
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| ApiError::internal(format!("cannot start `mlcycle run`: {e}")))?;
        // Reaped by a thread, so it leaves no zombie.
        let pid = child.id();
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        return Ok(json!({"started": true, "pid": pid}));
    }
    let out = cmd
        .output()
        .map_err(|e| ApiError::internal(format!("cannot start mlcycle: {e}")))?;
    let mut v = Map::new();
    v.insert("ok".into(), json!(out.status.success()));
    v.insert(
        "output".into(),
        json!(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    );
    Ok(Value::Object(v))
}
