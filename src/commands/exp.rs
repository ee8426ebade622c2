//! `exp`: sweeps over params (`exp run`), the table of experiments
//! (`exp show`), two of them compared (`exp diff`), one applied to the
//! workspace (`exp apply`), and housekeeping (`exp remove`, `exp rename`).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::*;
use crate::cli::{
    ExpApplyArgs, ExpCmd, ExpDiffArgs, ExpPlotArgs, ExpRemoveArgs, ExpRenameArgs, ExpRunArgs,
    ExpShowArgs, ExpStepsArgs, SortOrder, TableFormat,
};
use mlcycle_pipeline::experiments::listing::Row;
use mlcycle_pipeline::experiments::{
    self, sweep, Cell, ExpRecord, ExpStatus, ExpStore, Listing, ParamFiles, Plan, SweepReporter,
    SweepRequest,
};
use mlcycle_pipeline::summary::StageResult;

pub(super) fn cmd_exp(cli: &Cli, cmd: &ExpCmd, registry: &StageRegistry) -> Result<u8, Fail> {
    match cmd {
        ExpCmd::Run(a) => exp_run(cli, a, registry),
        ExpCmd::Show(a) => exp_show(cli, a),
        ExpCmd::Diff(a) => exp_diff(cli, a),
        ExpCmd::Apply(a) => exp_apply(cli, a, registry),
        ExpCmd::Steps(a) => exp_steps(cli, a),
        ExpCmd::Plot(a) => exp_plot(cli, a),
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
            let job = r
                .job
                .as_ref()
                .map(|j| format!(" as Slurm job {j}"))
                .unwrap_or_default();
            self.say(&format!(
                "{exp}  {}  {} ({}){job}",
                r.stage,
                r.outcome.label(),
                fmt_duration(r.duration)
            ));
        }
    }
    fn same_params(&self, name: &str) {
        self.say(&format!(
            "{name} has these params already: running it again (it resumes, or checks that nothing changed)"
        ));
    }
    fn warn(&self, exp: &str, message: &str) {
        self.say(&format!("warning: {exp}: {message}"));
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
    if a.random == Some(0) {
        return Err(CliError::Usage("--random needs at least 1 configuration".into()).into());
    }
    let axes = a
        .set
        .iter()
        .map(|s| experiments::parse_axis(s))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = match a.random {
        Some(n) if !axes.is_empty() => Plan::Random {
            axes,
            n,
            seed: a.seed,
        },
        _ => Plan::Grid(axes),
    };
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let interrupt = Interrupt::new();
    install_interrupt_handler(interrupt.clone());
    let slurm_wanted = match a.executor {
        Some(e) => matches!(e, Executor::Slurm),
        None => {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            mlcycle_pipeline::config::load::parse(&text)
                .ok()
                .and_then(|d| {
                    d.get("executor")
                        .and_then(|v| v.as_str())
                        .map(|e| e == "slurm")
                })
                .unwrap_or(false)
        }
    };
    let slurm = if slurm_wanted {
        let exe = std::env::current_exe().map_err(|e| CliError::Io(e.to_string()))?;
        Some(SlurmOptions {
            extra: a.slurm_args.clone(),
            ..SlurmOptions::from_env(exe, PathBuf::new())
        })
    } else {
        None
    };
    let req = SweepRequest {
        slurm,
        registry,
        pipeline: &file,
        plan,
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
        if done.experiments.is_empty() {
            outln!("nothing to run: no experiment is queued or interrupted");
            return Ok(0);
        }
        let listing = Listing::from_records(&done.experiments);
        out!("{}", Table::of(&listing).text());
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
        Some(Value::Number(n)) if n.is_f64() => short_float(n.as_f64().unwrap_or(f64::NAN)),
        Some(other) => other.to_string(),
    }
}

/// A table cell, rounded as [`cell`] rounds.
fn short(c: Option<&Cell>) -> String {
    let mut s = String::new();
    write_short(&mut s, c);
    s
}

/// Appends the rounded text of `c` to `buf` (no allocation of its own).
fn write_short(buf: &mut String, c: Option<&Cell>) {
    match c {
        None => buf.push('-'),
        Some(Cell::Float(x)) => write_float(buf, *x),
        Some(c) => {
            let _ = write!(buf, "{c}");
        }
    }
}

/// A table cell for CSV and JSON: every digit kept.
fn full(c: Option<&Cell>) -> String {
    c.map(ToString::to_string).unwrap_or_default()
}

/// `x` to six significant digits: `22057.8`, `0.983628`, `1.5e-7`.
fn short_float(x: f64) -> String {
    let mut s = String::new();
    write_float(&mut s, x);
    s
}

fn write_float(buf: &mut String, x: f64) {
    let start = buf.len();
    if x == 0.0 || !x.is_finite() {
        // Also `-0` as `0`.
        let _ = write!(buf, "{}", if x == 0.0 { 0.0 } else { x });
        return;
    }
    let mag = x.abs().log10().floor() as i32;
    let trim = |buf: &mut String, from: usize| {
        if buf[from..].contains('.') {
            let end = buf[from..]
                .trim_end_matches('0')
                .trim_end_matches('.')
                .len()
                + from;
            buf.truncate(end);
        }
    };
    if !(-4..9).contains(&mag) {
        let _ = write!(buf, "{x:.5e}");
        let e = buf[start..].find('e').map_or(buf.len(), |i| i + start);
        let exp = buf[e..].to_string();
        buf.truncate(e);
        trim(buf, start);
        buf.push_str(&exp);
        return;
    }
    if x.fract() == 0.0 {
        // A float that is whole stays a float: `1.0`, not the integer `1`.
        let _ = write!(buf, "{x:.1}");
        return;
    }
    let decimals = (5 - mag).max(0) as usize;
    let _ = write!(buf, "{x:.decimals$}");
    trim(buf, start);
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A column of the table.
#[derive(Clone, Copy, PartialEq)]
enum Col {
    Param(u32),
    Metric(u32),
}

/// The experiments shown: which rows, in which order, and which columns.
struct Table<'l> {
    listing: &'l Listing,
    rows: Vec<&'l Row>,
    columns: Vec<Col>,
}

impl<'l> Table<'l> {
    /// Every row and column of `listing`: params, then metrics.
    fn of(listing: &'l Listing) -> Self {
        let params = (0..listing.params.names.len() as u32).map(Col::Param);
        let metrics = (0..listing.metrics.names.len() as u32).map(Col::Metric);
        Self {
            listing,
            rows: listing.rows.iter().collect(),
            columns: params.chain(metrics).collect(),
        }
    }

    fn name(&self, c: Col) -> &str {
        match c {
            Col::Param(i) => &self.listing.params.names[i as usize],
            Col::Metric(i) => &self.listing.metrics.names[i as usize],
        }
    }

    fn get(r: &Row, c: Col) -> Option<&Cell> {
        match c {
            Col::Param(i) => r.param(i),
            Col::Metric(i) => r.metric(i),
        }
    }

    /// The column called `name`: a param, else a metric.
    fn column(&self, name: &str) -> Option<Col> {
        let l = self.listing;
        l.params
            .get(name)
            .map(Col::Param)
            .or_else(|| l.metrics.get(name).map(Col::Metric))
    }

    /// Drops the columns whose value is the same in every row.
    fn only_changed(&mut self) {
        let rows = &self.rows;
        self.columns.retain(|&c| {
            rows.windows(2)
                .any(|w| Self::get(w[0], c) != Self::get(w[1], c))
        });
    }

    /// Keeps the named columns (a name ending in `.` keeps that prefix).
    fn keep_columns(&mut self, names: &[String]) {
        let listing = self.listing;
        let name = |c: Col| match c {
            Col::Param(i) => &listing.params.names[i as usize],
            Col::Metric(i) => &listing.metrics.names[i as usize],
        };
        self.columns.retain(|&c| {
            let k = name(c);
            names
                .iter()
                .any(|n| k == n || (n.ends_with('.') && k.starts_with(n.as_str())))
        });
    }

    fn header(&self) -> Vec<&str> {
        let mut h = vec!["Experiment", "Status", "Created"];
        h.extend(self.columns.iter().map(|&c| self.name(c)));
        h
    }

    fn fixed(r: &Row) -> [&str; 3] {
        [
            &r.name,
            r.status.as_str(),
            r.created_at.get(..16).unwrap_or(&r.created_at),
        ]
    }

    /// The text table. Every value is formatted once, into one arena per
    /// block of rows (ten thousand rows of fifty metrics would otherwise be
    /// half a million strings), the blocks in parallel; then each block is
    /// padded to the columns' widths, in parallel too.
    fn text(&self) -> String {
        use rayon::prelude::*;
        let header = self.header();
        let n = header.len();
        let block = self
            .rows
            .len()
            .div_ceil(rayon::current_num_threads() * 4)
            .max(256);
        // Per block: its formatted values, where each ends, and the widths.
        let blocks: Vec<(String, Vec<usize>, Vec<usize>)> = self
            .rows
            .par_chunks(block)
            .map(|rows| {
                let mut widths = vec![0usize; n];
                let mut arena = String::with_capacity(rows.len() * self.columns.len() * 8);
                let mut ends = Vec::with_capacity(rows.len() * self.columns.len());
                for r in rows {
                    for (w, c) in widths.iter_mut().zip(Self::fixed(r)) {
                        *w = (*w).max(c.chars().count());
                    }
                    for (w, &c) in widths[3..].iter_mut().zip(&self.columns) {
                        let start = arena.len();
                        write_short(&mut arena, Self::get(r, c));
                        ends.push(arena.len());
                        *w = (*w).max(arena[start..].chars().count());
                    }
                }
                (arena, ends, widths)
            })
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for (_, _, bw) in &blocks {
            for (w, b) in widths.iter_mut().zip(bw) {
                *w = (*w).max(*b);
            }
        }
        let line_len = widths.iter().sum::<usize>() + 2 * n;
        let widths = &widths;
        let pad = |out: &mut String, text: &str, w: usize, left: bool| {
            let k = w.saturating_sub(text.chars().count());
            if !left {
                out.extend(std::iter::repeat_n(' ', k));
            }
            out.push_str(text);
            if left {
                out.extend(std::iter::repeat_n(' ', k));
            }
        };
        let end_line = |out: &mut String| {
            let end = out.trim_end_matches(' ').len();
            out.truncate(end);
            out.push('\n');
        };
        let mut out = String::with_capacity((self.rows.len() + 1) * line_len);
        for (i, (h, w)) in header.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            pad(&mut out, h, *w, i < 3);
        }
        end_line(&mut out);
        let texts: Vec<String> = self
            .rows
            .par_chunks(block)
            .zip(&blocks)
            .map(|(rows, (arena, ends, _))| {
                let mut out = String::with_capacity(rows.len() * line_len);
                let (mut cell, mut start) = (0, 0);
                for r in rows {
                    // Text left, values (params and metrics) right.
                    for (i, (c, w)) in Self::fixed(r).iter().zip(widths).enumerate() {
                        if i > 0 {
                            out.push_str("  ");
                        }
                        pad(&mut out, &c.replace('T', " "), *w, true);
                    }
                    for w in &widths[3..] {
                        out.push_str("  ");
                        let end = ends[cell];
                        pad(&mut out, &arena[start..end], *w, false);
                        (cell, start) = (cell + 1, end);
                    }
                    end_line(&mut out);
                }
                out
            })
            .collect();
        for t in texts {
            out.push_str(&t);
        }
        out
    }

    fn csv(&self) -> String {
        let quote = csv_field;
        let mut out = String::new();
        let header: Vec<String> = self.header().iter().map(|h| quote(h)).collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for r in &self.rows {
            let fixed = Self::fixed(r).map(|s| quote(&s.replace('T', " ")));
            let values = self.columns.iter().map(|&c| quote(&full(Self::get(r, c))));
            let cells: Vec<String> = fixed.into_iter().chain(values).collect();
            out.push_str(&cells.join(","));
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
            (0..header.len())
                .map(|i| if i < 3 { " --- " } else { " ---: " })
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in &self.rows {
            let fixed = Self::fixed(r).map(|s| esc(&s.replace('T', " ")));
            let values = self.columns.iter().map(|&c| esc(&short(Self::get(r, c))));
            let cells: Vec<String> = fixed.into_iter().chain(values).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    /// A JSON array, one experiment per line (rows are built one at a time).
    fn json(&self) -> String {
        let mut out = String::from("[");
        for (n, r) in self.rows.iter().enumerate() {
            let mut params = Map::new();
            let mut metrics = Map::new();
            for &c in &self.columns {
                if let Some(v) = Self::get(r, c) {
                    let into = if matches!(c, Col::Param(_)) {
                        &mut params
                    } else {
                        &mut metrics
                    };
                    into.insert(self.name(c).to_string(), v.to_json());
                }
            }
            let row = serde_json::json!({
                "name": r.name,
                "status": r.status,
                "created_at": r.created_at,
                "commit": r.commit,
                "duration_ms": r.duration_ms,
                "error": r.error,
                "params": params,
                "metrics": metrics,
            });
            out.push_str(if n == 0 { "\n  " } else { ",\n  " });
            out.push_str(&row.to_string());
        }
        out.push_str(if self.rows.is_empty() { "]\n" } else { "\n]\n" });
        out
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
                let value = v.trim().to_string();
                if !column.is_empty() {
                    if value.starts_with(['=', '<', '>', '!']) || value.is_empty() {
                        break;
                    }
                    if op.starts_with(['<', '>']) && value.parse::<f64>().is_err() {
                        return Err(CliError::Usage(format!(
                            "--filter `{s}`: `{op}` compares numbers, and `{value}` is not one"
                        ))
                        .into());
                    }
                    return Ok(Self { column, op, value });
                }
            }
        }
        Err(CliError::Usage(format!(
            "--filter `{s}`: write COLUMN OP VALUE, e.g. `evaluate.rmse<0.5` (operators = != < <= > >=)"
        ))
        .into())
    }

    fn holds(&self, t: &Table<'_>, r: &Row) -> bool {
        let text;
        let got: Option<Cell> = match self.column.as_str() {
            "name" | "experiment" => {
                text = r.name.clone();
                Some(Cell::Text(text.into()))
            }
            "status" => Some(Cell::Text(r.status.as_str().into())),
            k => t.column(k).and_then(|c| Table::get(r, c)).cloned(),
        };
        let Some(got) = got else {
            return self.op == "!=";
        };
        // A number compares with numbers, text with text; a value of the
        // other kind does not match (but is `!=`).
        let ord = match (got.as_f64(), self.value.parse::<f64>().ok()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            (None, None) => Some(got.to_string().as_str().cmp(self.value.as_str())),
            _ => return self.op == "!=",
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

/// Orders two cells: numbers by value, then text; missing values last.
fn compare(a: Option<&Cell>, b: Option<&Cell>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Greater,
        (_, None) => Ordering::Less,
        (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => x.to_string().cmp(&y.to_string()),
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
    let listing = store.listing()?;
    drop(store);
    let mut table = Table::of(&listing);
    let unknown = |what: &str, name: &str| -> Fail {
        let mut names = listing.params.names.clone();
        names.extend(listing.metrics.names.iter().cloned());
        let hint = mlcycle_pipeline::suggest::did_you_mean(name, &names);
        CliError::Usage(format!(
            "{what} `{name}`: no experiment has that param or metric{}",
            if hint.is_empty() {
                String::new()
            } else {
                format!("; {hint}")
            }
        ))
        .into()
    };
    for f in &filters {
        let builtin = ["name", "experiment", "status"].contains(&f.column.as_str());
        if !builtin && table.column(&f.column).is_none() && !listing.rows.is_empty() {
            return Err(unknown("--filter", &f.column));
        }
    }
    if !filters.is_empty() {
        let kept: Vec<&Row> = table
            .rows
            .iter()
            .copied()
            .filter(|r| filters.iter().all(|f| f.holds(&table, r)))
            .collect();
        table.rows = kept;
    }
    if let Some(name) = &a.sort_by {
        let Some(col) = table.column(name) else {
            return Err(unknown("--sort-by", name));
        };
        table.rows.sort_by(|x, y| {
            let (kx, ky) = (Table::get(x, col), Table::get(y, col));
            let o = compare(kx, ky);
            match a.sort_order {
                SortOrder::Desc if kx.is_some() && ky.is_some() => o.reverse(),
                _ => o,
            }
        });
    }
    if a.only_changed {
        table.only_changed();
    }
    if !a.columns.is_empty() {
        for c in &a.columns {
            let known = listing
                .params
                .names
                .iter()
                .chain(&listing.metrics.names)
                .any(|k| k == c || (c.ends_with('.') && k.starts_with(c.as_str())));
            if !known && !listing.rows.is_empty() {
                return Err(unknown("--columns", c));
            }
        }
        table.keep_columns(&a.columns);
    }
    table.print(&a.format);
    Ok(0)
}

fn exp_diff(cli: &Cli, a: &ExpDiffArgs) -> Result<u8, Fail> {
    let store = experiments::open_for(&state_dir(cli, None)?.state, &a.a)?;
    let x = experiments::find(&store, &a.a)?;
    let y = experiments::find(&store, &a.b)?;
    let mut rows: Vec<DiffRow<'_>> = Vec::new();
    push(&mut rows, a.all, "param", &x.params, &y.params);
    push(&mut rows, a.all, "metric", &x.metrics, &y.metrics);
    print_diff(
        &x.name,
        &y.name,
        &rows,
        &a.format,
        "the same params and metrics",
    );
    Ok(0)
}

/// One line of a comparison: what it is, its key, its two values.
pub(super) type DiffRow<'v> = (&'static str, String, Option<&'v Value>, Option<&'v Value>);

/// Adds the keys of `mx` and `my` to `rows` (those whose values differ,
/// or all of them).
pub(super) fn push<'v>(
    rows: &mut Vec<DiffRow<'v>>,
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

/// Prints a comparison of `a` and `b` with the change from one to the
/// other; `same` says what is equal when no row differs.
pub(super) fn print_diff(a: &str, b: &str, rows: &[DiffRow<'_>], format: &TableFormat, same: &str) {
    let delta = |vx: Option<&Value>, vy: Option<&Value>| -> Option<Value> {
        let (x, y) = (vx?, vy?);
        if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
            return Some(Value::from(y.checked_sub(x)?));
        }
        serde_json::Number::from_f64(y.as_f64()? - x.as_f64()?).map(Value::Number)
    };
    if format.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(kind, k, vx, vy)| {
                serde_json::json!({"kind": kind, "key": k, "a": vx, "b": vy, "delta": delta(*vx, *vy)})
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"a": a, "b": b, "rows": v}))
                .expect("json")
        );
        return;
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
        a.to_string(),
        b.to_string(),
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
    if format.csv || format.md {
        let md = format.md;
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
        return;
    }
    if body.is_empty() {
        outln!("`{a}` and `{b}` have {same}");
        return;
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
    let store = experiments::open_for(&ws.state, &a.name)?;
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

fn exp_steps(cli: &Cli, a: &ExpStepsArgs) -> Result<u8, Fail> {
    let store = experiments::open_for(&state_dir(cli, None)?.state, &a.name)?;
    let rec = experiments::find(&store, &a.name)?;
    let mut steps = store.steps_of(&rec.name)?;
    if let Some(stage) = &a.stage {
        // The declared name of a `matrix:` stage selects its instances.
        let picks = |k: &str| {
            k == stage
                || k.strip_prefix(stage.as_str())
                    .is_some_and(|r| r.starts_with('@'))
        };
        if !steps.keys().any(|k| picks(k)) {
            let names: Vec<&String> = steps.keys().collect();
            return Err(CliError::Usage(format!(
                "experiment `{}` has no steps of stage `{stage}`{}",
                rec.name,
                if names.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (stages with steps: {})",
                        names
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ))
            .into());
        }
        steps.retain(|k, _| picks(k));
    }
    if a.format.json {
        outln!("{}", serde_json::to_string_pretty(&steps).expect("json"));
        return Ok(0);
    }
    if steps.is_empty() {
        if !cli.quiet {
            eprintln!(
                "experiment `{}` logged no steps: none of its stages that log steps ran in it (a stage restored from the cache logs none; `run:` stages append JSON lines to the file named by $MLCYCLE_STEP_METRICS, and `train.mlp`, `train.gradient_boosting` and `train.sgd_regression` log their loss)",
                rec.name
            );
        }
        return Ok(0);
    }
    // Columns: the stage, then every key in first-seen order.
    let mut keys = indexmap::IndexSet::new();
    for lines in steps.values() {
        for l in lines.as_array().into_iter().flatten() {
            for k in l.as_object().into_iter().flat_map(|m| m.keys()) {
                keys.insert(k.clone());
            }
        }
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (stage, lines) in &steps {
        for l in lines.as_array().into_iter().flatten() {
            let mut row = vec![stage.clone()];
            row.extend(keys.iter().map(|k| {
                if a.format.csv {
                    match l.get(k) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    }
                } else {
                    cell(l.get(k))
                }
            }));
            rows.push(row);
        }
    }
    let header: Vec<String> = std::iter::once("Stage".to_string())
        .chain(keys.iter().cloned())
        .collect();
    if a.format.csv || a.format.md {
        let md = a.format.md;
        let line = |cells: &[String]| {
            if md {
                let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
                format!("| {} |", cells.join(" | "))
            } else {
                let cells: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
                cells.join(",")
            }
        };
        outln!("{}", line(&header));
        if md {
            outln!("|{}", " --- |".repeat(header.len()));
        }
        for r in &rows {
            outln!("{}", line(r));
        }
        return Ok(0);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let mut s = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(s, "{c:<w$}  ");
            } else {
                let _ = write!(s, "{c:>w$}  ");
            }
        }
        outln!("{}", s.trim_end());
    }
    Ok(0)
}

fn exp_plot(cli: &Cli, a: &ExpPlotArgs) -> Result<u8, Fail> {
    let store = experiments::open_for(&state_dir(cli, None)?.state, &a.names[0])?;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for name in &a.names {
        let rec = experiments::find(&store, name)?;
        let steps = store.steps_of(&rec.name)?;
        let has = |lines: &Value| {
            lines.as_array().is_some_and(|l| {
                l.iter()
                    .any(|o| o.get(&a.metric).is_some_and(Value::is_number))
            })
        };
        let stages: Vec<&String> = match &a.stage {
            Some(s) => steps.keys().filter(|k| *k == s).collect(),
            None => steps
                .iter()
                .filter(|(_, l)| has(l))
                .map(|(k, _)| k)
                .collect(),
        };
        let stage = match stages.as_slice() {
            [one] => *one,
            [] => {
                return Err(CliError::Usage(format!(
                    "experiment `{}` logged no step-wise `{}`{}; `mlcycle exp steps {}` shows what it logged",
                    rec.name,
                    a.metric,
                    a.stage.as_ref().map(|s| format!(" in stage `{s}`")).unwrap_or_default(),
                    rec.name
                ))
                .into())
            }
            many => {
                return Err(CliError::Usage(format!(
                    "in experiment `{}`, stages {} logged `{}`; choose one with --stage",
                    rec.name,
                    many.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
                    a.metric
                ))
                .into())
            }
        };
        let points: Vec<(f64, f64)> = steps[stage]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, o)| {
                let y = o.get(&a.metric)?.as_f64()?;
                let x = o.get(&a.x).and_then(Value::as_f64).unwrap_or(i as f64);
                Some((x, y))
            })
            .collect();
        series.push((rec.name, points));
    }
    let file = a.metric.replace(['/', '\\'], "_");
    super::plots::write_chart(
        &a.out,
        &file,
        &format!("{} by experiment", a.metric),
        (&a.x, &a.metric),
        &series,
    )?;
    if !cli.quiet {
        eprintln!("wrote {0}/{1}.svg and {0}/{1}.png", a.out.display(), file);
    }
    Ok(0)
}

fn exp_remove(cli: &Cli, a: &ExpRemoveArgs) -> Result<u8, Fail> {
    let ws = state_dir(cli, None)?;
    let store = experiments::open_for(&ws.state, a.names.first().map_or("", String::as_str))?;
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
    if a.old == a.new {
        return Err(
            CliError::Usage(format!("`{}` is already the experiment's name", a.old)).into(),
        );
    }
    let store = experiments::open_for(&ws.state, &a.old)?;
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
