//! `exp`: sweeps over params (`exp run`), the table of experiments
//! (`exp show`), two of them compared (`exp diff`), one applied to the
//! workspace (`exp apply`), and housekeeping (`exp remove`, `exp rename`).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::*;
use crate::cli::{
    ExpApplyArgs, ExpCmd, ExpDiffArgs, ExpRemoveArgs, ExpRenameArgs, ExpRunArgs, ExpShowArgs,
    SortOrder, TableFormat,
};
use mlcycle_pipeline::experiments::{
    self, grid, sweep, ExpRecord, ExpStatus, ExpStore, ParamFiles, SweepReporter, SweepRequest,
};
use mlcycle_pipeline::summary::StageResult;

pub(super) fn cmd_exp(cli: &Cli, cmd: &ExpCmd, registry: &StageRegistry) -> Result<u8, Fail> {
    match cmd {
        ExpCmd::Run(a) => exp_run(cli, a, registry),
        ExpCmd::Show(a) => exp_show(cli, a),
        ExpCmd::Diff(a) => exp_diff(cli, a),
        ExpCmd::Apply(a) => exp_apply(cli, a, registry),
        ExpCmd::Remove(a) => exp_remove(cli, a),
        ExpCmd::Rename(a) => exp_rename(cli, a),
    }
}

/// The workspace's state folder (`.mlcycle`), from `-C` or the current folder.
fn state_dir(cli: &Cli, dir: Option<&Path>) -> Result<Workspace, Fail> {
    let root = locate_root(cli.dir.as_deref(), dir)?;
    Ok(Workspace::new(root.canonicalize().unwrap_or(root)))
}

fn open_store(cli: &Cli, dir: Option<&Path>) -> Result<Option<ExpStore>, Fail> {
    let ws = state_dir(cli, dir)?;
    Ok(ExpStore::open_existing(&ws.state)?)
}

/// Prints the progress of a sweep on stderr: one line per stage that ran
/// or failed, and one per experiment as it ends.
struct SweepLines {
    quiet: bool,
    verbose: bool,
    lock: Mutex<()>,
}

impl SweepLines {
    fn say(&self, line: &str) {
        if self.quiet {
            return;
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!("{line}");
    }
}

impl SweepReporter for SweepLines {
    fn begin(&self, count: usize) {
        self.say(&format!("Running {count} experiment(s)…"));
    }
    fn waiting(&self, holder: &str) {
        self.say(&format!(
            "Waiting for another mlcycle process to finish with this workspace{holder}…"
        ));
    }
    fn stage(&self, exp: &str, r: &StageResult) {
        let show = match r.outcome {
            Outcome::Ran | Outcome::Failed { .. } => true,
            Outcome::Restored => self.verbose,
            _ => false,
        };
        if show {
            self.say(&format!(
                "{exp}  {}  {} ({})",
                r.stage,
                r.outcome.label(),
                fmt_duration(r.duration)
            ));
        }
    }
    fn finished(&self, rec: &ExpRecord) {
        let mut line = format!(
            "{}: {} ({})",
            rec.name,
            rec.status.as_str(),
            sweep::describe(&rec.set.clone().into_iter().collect::<Vec<_>>())
        );
        if let Some(e) = &rec.error {
            let _ = write!(line, "\n  {e}");
        }
        self.say(&line);
    }
}

fn exp_run(cli: &Cli, a: &ExpRunArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let args: Vec<String> = a
        .workspace
        .dir
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    let Located { file, .. } = locate(cli.dir.as_deref(), &args)?;
    if a.set.is_empty() && !a.run_all {
        return Err(CliError::Usage(
            "give the params to try, e.g. `mlcycle exp run -S train.lr=0.01,0.1`, or `--run-all` to run the queue".into(),
        )
        .into());
    }
    if let Some(n) = &a.name {
        experiments::check_name(n)?;
    }
    let axes = a
        .set
        .iter()
        .map(|s| experiments::parse_axis(s))
        .collect::<Result<Vec<_>, _>>()?;
    let configs = match a.random {
        _ if axes.is_empty() => Vec::new(),
        Some(n) => grid::random(&axes, n, a.seed)?,
        None => grid::grid(&axes)?,
    };
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let interrupt = Interrupt::new();
    install_interrupt_handler(interrupt.clone());
    let req = SweepRequest {
        registry,
        pipeline: &file,
        configs,
        name: a.name.clone(),
        jobs,
        queue: a.queue,
        run_queued: a.run_all,
        keep_going: a.keep_going,
        interrupt: interrupt.clone(),
    };
    let lines = SweepLines {
        quiet: cli.quiet || a.json,
        verbose: cli.verbose > 0,
        lock: Mutex::new(()),
    };
    let done = experiments::run_sweep(&req, &lines)?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&done.experiments).expect("records serialize")
        );
    } else if !cli.quiet {
        if a.queue {
            outln!(
                "queued {} experiment(s): {}; run them with `mlcycle exp run --run-all`",
                done.experiments.len(),
                done.experiments
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(0);
        }
        let table = Table::of(&done.experiments, true);
        out!("{}", table.text());
        let count = |s: ExpStatus| done.experiments.iter().filter(|r| r.status == s).count();
        outln!(
            "{} experiment(s): {} done, {} failed, {} interrupted; {} stage run(s) computed in {}",
            done.experiments.len(),
            count(ExpStatus::Done),
            count(ExpStatus::Failed),
            count(ExpStatus::Interrupted),
            done.computed,
            fmt_duration(done.wall)
        );
    }
    Ok(if interrupt.is_set() {
        EXIT_INTERRUPTED
    } else if done.experiments.iter().any(|r| r.status != ExpStatus::Done) && !a.queue {
        EXIT_STAGE_FAILED
    } else {
        0
    })
}

/// A cell's text: strings bare, integers whole, other numbers to six
/// significant digits, nothing as `-`.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            short_float(x)
        }
        Some(other) => other.to_string(),
    }
}

/// `x` to six significant digits: `22057.8`, `0.983628`, `1.5e-7`.
fn short_float(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..9).contains(&mag) {
        let s = format!("{x:.5e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        return format!("{m}e{e}");
    }
    let decimals = (5 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A cell for CSV: every digit kept.
fn raw(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The experiments as rows and columns.
struct Table<'r> {
    rows: Vec<&'r ExpRecord>,
    params: Vec<String>,
    metrics: Vec<String>,
}

impl<'r> Table<'r> {
    /// The columns of `rows`: the params set by any experiment (with
    /// `set_only`) or every param, then every metric, in first-seen order.
    fn of(rows: &'r [ExpRecord], set_only: bool) -> Self {
        let mut params = indexmap::IndexSet::new();
        let mut metrics = indexmap::IndexSet::new();
        for r in rows {
            let keys: Box<dyn Iterator<Item = &String>> = if set_only {
                Box::new(r.set.keys())
            } else {
                Box::new(r.params.keys())
            };
            for k in keys {
                if !params.contains(k) {
                    params.insert(k.clone());
                }
            }
            for k in r.metrics.keys() {
                if !metrics.contains(k) {
                    metrics.insert(k.clone());
                }
            }
        }
        Self {
            rows: rows.iter().collect(),
            params: params.into_iter().collect(),
            metrics: metrics.into_iter().collect(),
        }
    }

    fn param<'a>(r: &'a ExpRecord, k: &str) -> Option<&'a Value> {
        r.set.get(k).or_else(|| r.params.get(k))
    }

    fn header(&self) -> Vec<String> {
        let mut h = vec!["Experiment".to_string(), "Status".into(), "Created".into()];
        h.extend(self.params.iter().cloned());
        h.extend(self.metrics.iter().cloned());
        h
    }

    fn cells(&self, r: &ExpRecord, fmt: fn(Option<&Value>) -> String) -> Vec<String> {
        let mut c = vec![
            r.name.clone(),
            r.status.as_str().to_string(),
            r.created_at
                .get(..16)
                .unwrap_or(&r.created_at)
                .replace('T', " "),
        ];
        c.extend(self.params.iter().map(|k| fmt(Self::param(r, k))));
        c.extend(self.metrics.iter().map(|k| fmt(r.metrics.get(k))));
        c
    }

    /// Drops the param and metric columns whose value is the same in every row.
    fn only_changed(&mut self) {
        let rows = &self.rows;
        let varies = |get: &dyn Fn(&ExpRecord) -> Option<&Value>| {
            rows.windows(2).any(|w| get(w[0]) != get(w[1]))
        };
        self.params.retain(|k| varies(&|r| Self::param(r, k)));
        self.metrics.retain(|k| varies(&|r| r.metrics.get(k)));
    }

    /// Keeps the named columns (a name ending in `.` keeps that prefix).
    fn keep_columns(&mut self, names: &[String]) {
        let keep = |k: &String| {
            names
                .iter()
                .any(|n| k == n || (n.ends_with('.') && k.starts_with(n.as_str())))
        };
        self.params.retain(|k| keep(k));
        self.metrics.retain(|k| keep(k));
    }

    fn text(&self) -> String {
        let header = self.header();
        let body: Vec<Vec<String>> = self.rows.iter().map(|r| self.cells(r, cell)).collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &body {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::with_capacity(body.len() * 80);
        let mut line = |cells: &[String]| {
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                // Text left, values (params and metrics) right.
                if i < 3 {
                    let _ = write!(out, "{c:<w$}");
                } else {
                    let _ = write!(out, "{c:>w$}");
                }
                out.push_str(if i + 1 < cells.len() { "  " } else { "\n" });
            }
        };
        line(&header);
        for row in &body {
            line(row);
        }
        // No trailing spaces on a line.
        out.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    fn csv(&self) -> String {
        let quote = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let join =
            |cells: Vec<String>| cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",");
        out.push_str(&join(self.header()));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&join(self.cells(r, raw)));
            out.push('\n');
        }
        out
    }

    fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let header = self.header();
        let mut out = format!(
            "| {} |\n|{}|\n",
            header
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | "),
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i < 3 { " --- " } else { " ---: " })
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} |",
                self.cells(r, cell)
                    .iter()
                    .map(|c| esc(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        out
    }

    fn json(&self) -> String {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let pick = |keys: &[String], get: &dyn Fn(&str) -> Option<Value>| {
                    keys.iter()
                        .filter_map(|k| get(k).map(|v| (k.clone(), v)))
                        .collect::<Map<String, Value>>()
                };
                serde_json::json!({
                    "name": r.name,
                    "status": r.status,
                    "created_at": r.created_at,
                    "commit": r.commit,
                    "duration_ms": r.duration_ms,
                    "params": pick(&self.params, &|k| Self::param(r, k).cloned()),
                    "metrics": pick(&self.metrics, &|k| r.metrics.get(k).cloned()),
                })
            })
            .collect();
        serde_json::to_string_pretty(&rows).expect("rows serialize") + "\n"
    }

    fn print(&self, f: &TableFormat) {
        let s = if f.json {
            self.json()
        } else if f.csv {
            self.csv()
        } else if f.md {
            self.markdown()
        } else {
            self.text()
        };
        out!("{s}");
    }
}

/// A `--filter` condition.
struct Filter {
    column: String,
    op: &'static str,
    value: String,
}

impl Filter {
    fn parse(s: &str) -> Result<Self, Fail> {
        for op in ["<=", ">=", "!=", "<", ">", "="] {
            if let Some((c, v)) = s.split_once(op) {
                let column = c.trim().to_string();
                if !column.is_empty() {
                    return Ok(Self {
                        column,
                        op,
                        value: v.trim().to_string(),
                    });
                }
            }
        }
        Err(CliError::Usage(format!(
            "--filter `{s}`: write COLUMN OP VALUE, e.g. `evaluate.rmse<0.5` (operators = != < <= > >=)"
        ))
        .into())
    }

    fn holds(&self, r: &ExpRecord) -> bool {
        let got = match self.column.as_str() {
            "name" | "experiment" => Some(Value::String(r.name.clone())),
            "status" => Some(Value::String(r.status.as_str().into())),
            k => Table::param(r, k).or_else(|| r.metrics.get(k)).cloned(),
        };
        let Some(got) = got else {
            return self.op == "!=";
        };
        let ord = match (got.as_f64(), self.value.parse::<f64>().ok()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => Some(cell(Some(&got)).as_str().cmp(self.value.as_str())),
        };
        let Some(ord) = ord else { return false };
        match self.op {
            "=" => ord == Ordering::Equal,
            "!=" => ord != Ordering::Equal,
            "<" => ord == Ordering::Less,
            "<=" => ord != Ordering::Greater,
            ">" => ord == Ordering::Greater,
            _ => ord != Ordering::Less,
        }
    }
}

/// Orders two values: numbers by value, then text; missing values last.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Greater,
        (_, None) => Ordering::Less,
        (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => cell(Some(x)).cmp(&cell(Some(y))),
        },
    }
}

fn exp_show(cli: &Cli, a: &ExpShowArgs) -> Result<u8, Fail> {
    let filters = a
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(store) = open_store(cli, a.workspace.dir.as_deref())? else {
        if a.format.json {
            outln!("[]");
        } else if a.format.csv {
            outln!("Experiment,Status,Created");
        } else {
            outln!("no experiments recorded yet; make some with `mlcycle exp run -S KEY=V1,V2`");
        }
        return Ok(0);
    };
    let mut rows = Vec::new();
    store.for_each(|r| {
        if filters.iter().all(|f| f.holds(&r)) {
            rows.push(r);
        }
    })?;
    if let Some(col) = &a.sort_by {
        let known = rows
            .iter()
            .any(|r| Table::param(r, col).is_some() || r.metrics.contains_key(col));
        if !known && !rows.is_empty() {
            let mut names: Vec<String> = rows[0].params.keys().cloned().collect();
            names.extend(rows[0].metrics.keys().cloned());
            return Err(CliError::Usage(format!(
                "--sort-by `{col}`: no experiment has that param or metric{}",
                mlcycle_pipeline::suggest::did_you_mean(col, &names)
                    .strip_prefix("did you mean")
                    .map(|s| format!("; did you mean{s}"))
                    .unwrap_or_default()
            ))
            .into());
        }
        let key = |r: &ExpRecord| Table::param(r, col).or_else(|| r.metrics.get(col)).cloned();
        rows.sort_by(|x, y| {
            let (kx, ky) = (key(x), key(y));
            let o = compare(kx.as_ref(), ky.as_ref());
            match a.sort_order {
                SortOrder::Desc if kx.is_some() && ky.is_some() => o.reverse(),
                _ => o,
            }
        });
    }
    let mut table = Table::of(&rows, false);
    if a.only_changed {
        table.only_changed();
    }
    if !a.columns.is_empty() {
        table.keep_columns(&a.columns);
    }
    table.print(&a.format);
    Ok(0)
}

fn exp_diff(cli: &Cli, a: &ExpDiffArgs) -> Result<u8, Fail> {
    let Some(store) = open_store(cli, None)? else {
        return Err(experiments::ExpError::NoSuchExperiment {
            name: a.a.clone(),
            help: "no experiment is recorded yet".into(),
        }
        .into());
    };
    let x = experiments::find(&store, &a.a)?;
    let y = experiments::find(&store, &a.b)?;
    type Row<'v> = (&'static str, String, Option<&'v Value>, Option<&'v Value>);
    fn push<'v>(
        rows: &mut Vec<Row<'v>>,
        all: bool,
        kind: &'static str,
        mx: &'v Map<String, Value>,
        my: &'v Map<String, Value>,
    ) {
        let mut keys: Vec<&String> = mx.keys().collect();
        keys.extend(my.keys().filter(|k| !mx.contains_key(*k)));
        for k in keys {
            let (vx, vy) = (mx.get(k), my.get(k));
            if all || vx != vy {
                rows.push((kind, k.clone(), vx, vy));
            }
        }
    }
    let mut rows: Vec<Row<'_>> = Vec::new();
    push(&mut rows, a.all, "param", &x.params, &y.params);
    push(&mut rows, a.all, "metric", &x.metrics, &y.metrics);
    let delta = |vx: Option<&Value>, vy: Option<&Value>| -> Option<Value> {
        let (x, y) = (vx?, vy?);
        if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
            return Some(Value::from(y.checked_sub(x)?));
        }
        serde_json::Number::from_f64(y.as_f64()? - x.as_f64()?).map(Value::Number)
    };
    if a.format.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(kind, k, vx, vy)| {
                serde_json::json!({"kind": kind, "key": k, "a": vx, "b": vy, "delta": delta(*vx, *vy)})
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"a": x.name, "b": y.name, "rows": v}))
                .expect("json")
        );
        return Ok(0);
    }
    let fmt_delta = |d: Option<Value>| match d {
        Some(d) if d.as_f64() == Some(0.0) => "0".to_string(),
        Some(d) => {
            let s = cell(Some(&d));
            if d.as_f64().is_some_and(|x| x > 0.0) {
                format!("+{s}")
            } else {
                s
            }
        }
        None => "-".into(),
    };
    let header = [
        "Kind".to_string(),
        "Key".into(),
        x.name.clone(),
        y.name.clone(),
        "Change".into(),
    ];
    let body: Vec<[String; 5]> = rows
        .iter()
        .map(|(kind, k, vx, vy)| {
            [
                kind.to_string(),
                k.clone(),
                cell(*vx),
                cell(*vy),
                fmt_delta(delta(*vx, *vy)),
            ]
        })
        .collect();
    if a.format.csv || a.format.md {
        let md = a.format.md;
        let sep = if md { " | " } else { "," };
        let wrap = |cells: &[String]| {
            if md {
                format!("| {} |", cells.join(sep))
            } else {
                cells.join(sep)
            }
        };
        outln!("{}", wrap(&header));
        if md {
            outln!("| --- | --- | ---: | ---: | ---: |");
        }
        for row in &body {
            outln!("{}", wrap(row));
        }
        return Ok(0);
    }
    if body.is_empty() {
        outln!(
            "`{}` and `{}` have the same params and metrics",
            x.name,
            y.name
        );
        return Ok(0);
    }
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &body {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 5]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i < 2 {
                let _ = write!(s, "{c:<w$}  ");
            } else {
                let _ = write!(s, "{c:>w$}  ");
            }
        }
        s.trim_end().to_string()
    };
    outln!("{}", line(&header));
    for row in &body {
        outln!("{}", line(row));
    }
    Ok(0)
}

fn exp_apply(cli: &Cli, a: &ExpApplyArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let Located { file, .. } = locate(cli.dir.as_deref(), &[])?;
    let ws = Workspace::new(
        Located {
            file: file.clone(),
            rest: vec![],
        }
        .root(),
    );
    let Some(store) = ExpStore::open_existing(&ws.state)? else {
        return Err(experiments::ExpError::NoSuchExperiment {
            name: a.name.clone(),
            help: "no experiment is recorded yet".into(),
        }
        .into());
    };
    let rec = experiments::find(&store, &a.name)?;
    if rec.status != ExpStatus::Done {
        return Err(experiments::ExpError::NotDone {
            name: rec.name,
            status: rec.status.as_str(),
        }
        .into());
    }
    drop(store);
    let set: Vec<(String, Value)> = rec.set.clone().into_iter().collect();
    let changed = ParamFiles::of(&file)?.write(&set)?;
    if !cli.quiet {
        let files: Vec<String> = changed
            .iter()
            .map(|p| {
                p.strip_prefix(ws.root.as_path())
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect();
        if files.is_empty() {
            eprintln!(
                "{}: the workspace has its params already ({})",
                rec.name,
                sweep::describe(&set)
            );
        } else {
            eprintln!(
                "{}: wrote {} into {}",
                rec.name,
                sweep::describe(&set),
                files.join(", ")
            );
        }
    }
    if a.no_run {
        return Ok(0);
    }
    let session = Session::open(
        &file,
        &SessionOptions {
            strict_sources: false,
            ..SessionOptions::new(registry)
        },
    )?;
    let interrupt = Interrupt::new();
    install_interrupt_handler(interrupt.clone());
    let req = RunRequest {
        command: format!("exp apply {}", rec.name),
        interrupt: interrupt.clone(),
        ..RunRequest::default()
    };
    let reporter = TermReporter::new(cli.quiet, cli.verbose > 0);
    let done = session.run(&req, &reporter)?;
    let s = done.summary;
    print_failures(&s);
    if !cli.quiet {
        out!("{}", s.table(cli.verbose > 0));
    }
    exit_code(&s, done.not_recorded)
}

fn exp_remove(cli: &Cli, a: &ExpRemoveArgs) -> Result<u8, Fail> {
    let ws = state_dir(cli, None)?;
    let Some(store) = ExpStore::open_existing(&ws.state)? else {
        return Err(experiments::ExpError::NoSuchExperiment {
            name: a.names.first().cloned().unwrap_or_default(),
            help: "no experiment is recorded yet".into(),
        }
        .into());
    };
    let mut names = Vec::new();
    for n in &a.names {
        names.push(experiments::find(&store, n)?);
    }
    for r in store.all()? {
        let pick = (a.failed && r.status == ExpStatus::Failed)
            || (a.queued && r.status == ExpStatus::Queued);
        if pick && !names.iter().any(|x| x.name == r.name) {
            names.push(r);
        }
    }
    for r in &names {
        if r.alive() {
            return Err(CliError::Usage(format!(
                "experiment `{}` is running (process {}); stop it first",
                r.name,
                r.pid.unwrap_or(0)
            ))
            .into());
        }
    }
    for r in &names {
        store.remove(&r.name)?;
        let scratch = ws.state.join("exps").join(&r.name);
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)
                .map_err(|e| CliError::Io(format!("cannot delete {}: {e}", scratch.display())))?;
        }
    }
    if !cli.quiet {
        eprintln!("removed {} experiment(s)", names.len());
    }
    Ok(0)
}

fn exp_rename(cli: &Cli, a: &ExpRenameArgs) -> Result<u8, Fail> {
    let ws = state_dir(cli, None)?;
    experiments::check_name(&a.new)?;
    let Some(store) = ExpStore::open_existing(&ws.state)? else {
        return Err(experiments::ExpError::NoSuchExperiment {
            name: a.old.clone(),
            help: "no experiment is recorded yet".into(),
        }
        .into());
    };
    let r = experiments::find(&store, &a.old)?;
    if r.alive() {
        return Err(CliError::Usage(format!(
            "experiment `{}` is running; rename it when it has ended",
            r.name
        ))
        .into());
    }
    store.rename(&a.old, &a.new)?;
    let dir = ws.state.join("exps");
    if dir.join(&a.old).exists() {
        std::fs::rename(dir.join(&a.old), dir.join(&a.new))
            .map_err(|e| CliError::Io(format!("cannot rename the scratch folder: {e}")))?;
    }
    if !cli.quiet {
        eprintln!("renamed `{}` to `{}`", a.old, a.new);
    }
    Ok(0)
}
