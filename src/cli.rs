//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Incremental, parallel ML pipelines declared in YAML.
///
/// Exit codes: 0 success (for `status`: everything fresh); 1 a stage failed
/// (for `status`: something would rerun); 2 bad usage or an invalid pipeline;
/// 74 stdout could not be written; 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "mlcycle", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Workspace folder (holding mlcycle.yaml). Every command also takes it
    /// as its first argument; default: the nearest folder, from the current
    /// one upward, that holds an mlcycle.yaml.
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// More output: every stage's reasons, debug logs (-vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Start a workspace: write a commented mlcycle.yaml to fill in.
    Init(InitArgs),
    /// Run the pipeline: every stale stage, in parallel where the DAG allows.
    Run(RunArgs),
    /// Show what a run would do, and why, without running anything.
    ///
    /// Exits 0 when every selected stage is fresh, 1 when something would rerun.
    Status(StatusArgs),
    /// Print the DAG (mermaid, dot or text).
    Dag(DagArgs),
    /// Check the pipeline file and report every problem at once.
    Validate(TargetArgs),
    /// Delete cache objects that nothing references.
    Gc(GcArgs),
    /// List recorded runs, or show one.
    Runs(RunsArgs),
    /// Experiments: run sweeps over params, compare them, apply one.
    #[command(subcommand)]
    Exp(ExpCmd),
    /// The workspace's metrics, or how they changed since a commit or against an experiment.
    #[command(subcommand)]
    Metrics(MetricsCmd),
    /// Charts of the `plots: true` outputs, overlaid across commits and experiments.
    #[command(subcommand)]
    Plots(PlotsCmd),
    /// List stage kinds, or describe one.
    Stages(StagesArgs),
    /// Show an artifact: a table's schema and first rows, or a JSON file.
    Show(ShowArgs),
    /// Score rows from a CSV file with a model bundle, offline.
    Predict(PredictArgs),
    /// The model registry: versions, the champion, promotions, rollbacks.
    Models(ModelsArgs),
    /// Promotion decisions run by run: candidate and champion scores, rows, verdict.
    History(HistoryArgs),
    /// Serve the champion model over HTTP (predict, MLflow invocations, feedback).
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// Open the pipeline, runs, experiments and models in the browser.
    #[cfg(feature = "serve")]
    Ui(UiArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run one stage of a run as a Slurm job does (used by `--executor slurm`).
    #[command(hide = true)]
    Exec(ExecArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to make a workspace (created if missing); default: the
    /// current folder.
    #[arg(id = "init_dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Overwrite an existing mlcycle.yaml.
    #[arg(long)]
    pub force: bool,
}

/// A workspace folder given as the first argument of a command that takes
/// no stage names.
#[derive(Debug, Args)]
pub struct WorkspaceArg {
    /// A workspace folder (default: found from the current folder upward).
    // Its own id: the global `-C` is `dir`, and clap would merge the two.
    #[arg(id = "workspace", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// Address to listen on; anything but loopback needs a token.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the log line says which).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Require this token on every request (generated and printed when
    /// `--host` is not loopback and none is given).
    #[arg(long, env = "MLCYCLE_UI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Allow actions from the page: start a run, apply an experiment,
    /// promote or roll back a model. Off, the UI is read-only.
    #[arg(long)]
    pub allow_actions: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the log line says which).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Serve this bundle folder instead of the registry's champion (a
    /// folder holding one bundle, such as `artifacts/bundle`, will do).
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Close a connection whose request headers take longer (seconds).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Answer 408 and close a connection whose request body has not
    /// arrived whole within this time (seconds).
    #[arg(long, default_value_t = 30.0)]
    pub body_timeout: f64,
    /// The most connections open at once; more are answered 503 and closed.
    #[arg(long, default_value_t = 1000)]
    pub max_connections: usize,
    /// The most feedback records the log accepts; then 429.
    #[arg(long, default_value_t = 10_000_000)]
    pub feedback_quota: u64,
    /// Refuse rows with columns the model does not take (422), instead of
    /// ignoring them and naming them in the `X-Mlcycle-Ignored-Columns`
    /// response header (MLflow's behaviour, the default).
    #[arg(long)]
    pub strict_columns: bool,
    /// Measure drift (PSI, KS) on `/metrics` over this many last served
    /// rows, against the bundle's training-row profile (0: off).
    #[arg(long, default_value_t = 1000)]
    pub drift_window: usize,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    #[command(subcommand)]
    pub cmd: Option<ModelsCmd>,
    /// Print as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// Make version N the champion.
    Promote {
        /// The version (from `mlcycle models`).
        version: i64,
        /// Why, for the record.
        #[arg(long, default_value = "promoted by hand")]
        reason: String,
    },
    /// Make the champion that the current one replaced the champion again.
    Rollback {
        /// Why, for the record.
        #[arg(long, default_value = "rolled back by hand")]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the deciding metric over the decisions, as
    /// DIR/history.svg and DIR/history.png.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The bundle folder a `deploy.bundle` stage wrote
    /// (e.g. `artifacts/bundle/bundle`; its parent folder will do).
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Rows to score: a CSV file with a header row holding the model's
    /// input columns (`-` reads standard input).
    #[arg(long, value_name = "CSV")]
    pub input: PathBuf,
    /// Write the scored rows (CSV) here instead of standard output.
    #[arg(short, long, value_name = "CSV")]
    pub output: Option<PathBuf>,
    /// Print one JSON object per row instead of CSV.
    #[arg(long)]
    pub json: bool,
    /// Add every class's probability (`proba_<class>` columns) for a
    /// classifier that gives probabilities.
    #[arg(long)]
    pub proba: bool,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// A workspace folder (or pipeline file), then stage names to select.
    /// Selecting a stage selects what it needs too.
    #[arg(value_name = "DIR|STAGE")]
    pub args: Vec<String>,
    /// Override a param for this invocation (`-p train.lr=0.1`; typed as YAML).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Also run what depends on the selected stages.
    #[arg(long)]
    pub downstream: bool,
    /// Rerun the named stages (every stage when none is named) even when
    /// fresh; what they need runs only if it is stale.
    #[arg(short, long)]
    pub force: bool,
    /// Rerun the named stages and every stage after them, even when fresh.
    #[arg(long)]
    pub force_downstream: bool,
    /// Stages run at the same time (default: number of CPUs).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// After a failure, let independent branches finish.
    #[arg(short, long)]
    pub keep_going: bool,
    /// Fail at once if another mlcycle process is writing the workspace.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Where stages run: here, or as Slurm jobs (the workspace must be on
    /// a filesystem every node shares). Default: `executor:` in
    /// mlcycle.yaml, else local.
    #[arg(long, value_enum)]
    pub executor: Option<Executor>,
    /// With Slurm: submit every stage up front, each job depending on its
    /// upstream jobs (`afterok`), and return; `mlcycle runs show ID` follows
    /// the run and records its result when it is over.
    #[arg(long)]
    pub detach: bool,
    /// An extra `sbatch` argument for every job (repeatable), e.g.
    /// `--slurm-arg=--partition=debug`.
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub slurm_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    Local,
    Slurm,
}

/// `mlcycle exec`: what a Slurm job runs.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The stage to run.
    pub stage: String,
    /// The driver's run id (its job spec is in that run's folder).
    #[arg(long)]
    pub run: i64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Also consider what depends on the selected stages.
    #[arg(long)]
    pub downstream: bool,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DagFormat {
    Mermaid,
    Dot,
    Text,
}

#[derive(Debug, Args)]
pub struct DagArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: DagFormat,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// Also drop run-cache entries (and their objects) that mlcycle.lock
    /// does not use: reverting a param then reruns instead of restoring.
    #[arg(long)]
    pub workspace_only: bool,
    /// Only say what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail at once if another mlcycle process is writing the workspace.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    #[command(subcommand)]
    pub show: Option<RunsCmd>,
    /// How many runs to list.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
    /// Print as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// Show one run: every stage's outcome, duration and reasons.
    Show {
        /// Run id (from `mlcycle runs`).
        id: i64,
        /// Print this stage's logs instead: its output, and under Slurm the
        /// job's own log.
        #[arg(long, value_name = "STAGE")]
        logs: Option<String>,
        /// For a detached Slurm run: wait until every job is over.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A workspace folder, then the artifact as `STAGE.PORT` (e.g.
    /// `data.data`); with no artifact, every stage's outputs are listed.
    #[arg(value_name = "DIR|STAGE.PORT", num_args = 0..=2)]
    pub args: Vec<String>,
    /// How many rows of a table to print.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub rows: usize,
}

#[derive(Debug, Args)]
pub struct StagesArgs {
    /// A stage kind to describe.
    pub kind: Option<String>,
    /// Print the whole catalogue as Markdown (docs/stages.md).
    #[arg(long, conflicts_with = "kind")]
    pub markdown: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExpCmd {
    /// Run a sweep: one experiment per combination of `-S` values, all as one
    /// DAG (a stage shared by several runs once), none touching the
    /// workspace until applied.
    Run(ExpRunArgs),
    /// A table of experiments: one row each, with params and metrics.
    Show(ExpShowArgs),
    /// Params and metrics of two experiments side by side, with deltas.
    Diff(ExpDiffArgs),
    /// Write an experiment's params into the workspace's files and restore
    /// its outputs from the cache.
    Apply(ExpApplyArgs),
    /// The step-wise metrics an experiment's stages logged (loss curves).
    Steps(ExpStepsArgs),
    /// One step-wise metric of several experiments, overlaid in one chart
    /// (SVG and PNG).
    Plot(ExpPlotArgs),
    /// Delete experiments (their records and scratch folders).
    Remove(ExpRemoveArgs),
    /// Rename an experiment.
    Rename(ExpRenameArgs),
}

#[derive(Debug, Args)]
pub struct ExpRunArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// A param and its values: `-S train.lr=0.01,0.1`, `-S 'opt=[sgd, "a,b"]'`,
    /// or with `--random` a range `-S train.lr=0.001..0.1`. Repeat for a grid.
    #[arg(short = 'S', long = "set-param", value_name = "KEY=VALUES")]
    pub set: Vec<String>,
    /// Draw N configurations at random instead of the full grid.
    #[arg(long, value_name = "N")]
    pub random: Option<usize>,
    /// Seed of `--random`.
    #[arg(long, default_value_t = 0, requires = "random")]
    pub seed: u64,
    /// Name of the experiment (`NAME-1`, `NAME-2`, … for a sweep).
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Record the experiments as queued; run them later with `--run-all`.
    #[arg(long)]
    pub queue: bool,
    /// Run every queued (or interrupted) experiment.
    #[arg(long, conflicts_with = "queue")]
    pub run_all: bool,
    /// Stages running at once, over all experiments (default: one per core).
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Go on with independent stages after a failure.
    #[arg(short, long)]
    pub keep_going: bool,
    /// Print the experiments as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where stages run: here, or as Slurm jobs (the workspace must be on
    /// a filesystem every node shares). Default: `executor:` in
    /// mlcycle.yaml, else local.
    #[arg(long, value_enum)]
    pub executor: Option<Executor>,
    /// An extra `sbatch` argument for every job (repeatable).
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub slurm_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExpShowArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    /// Only the params and metrics that differ between the experiments shown.
    #[arg(long)]
    pub only_changed: bool,
    /// Sort by this param or metric (its column name).
    #[arg(long, value_name = "COLUMN")]
    pub sort_by: Option<String>,
    /// With `--sort-by`: ascending or descending.
    #[arg(long, value_enum, default_value = "asc", requires = "sort_by")]
    pub sort_order: SortOrder,
    /// Keep rows where a condition holds: `'evaluate.rmse<0.5'`,
    /// `'train.lr=0.1'`, `status=done` (operators = != < <= > >=). Repeat: all must hold.
    #[arg(long, value_name = "COND")]
    pub filter: Vec<String>,
    /// Only these columns (params or metrics; a name, or a prefix ending in `.`).
    #[arg(long, value_name = "COLUMN", value_delimiter = ',')]
    pub columns: Vec<String>,
    #[command(flatten)]
    pub format: TableFormat,
}

/// How a table is printed.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct TableFormat {
    /// As JSON.
    #[arg(long)]
    pub json: bool,
    /// As CSV.
    #[arg(long)]
    pub csv: bool,
    /// As a Markdown table.
    #[arg(long)]
    pub md: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Args)]
pub struct ExpDiffArgs {
    /// The first experiment.
    pub a: String,
    /// The second experiment.
    pub b: String,
    /// Also the params and metrics that are equal.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub format: TableFormat,
}

#[derive(Debug, Args)]
pub struct ExpStepsArgs {
    /// The experiment.
    pub name: String,
    /// Only this stage's steps.
    #[arg(long)]
    pub stage: Option<String>,
    #[command(flatten)]
    pub format: TableFormat,
}

#[derive(Debug, Args)]
pub struct ExpPlotArgs {
    /// The experiments (at least one).
    #[arg(required = true)]
    pub names: Vec<String>,
    /// The metric to plot (a key of the logged lines).
    #[arg(long)]
    pub metric: String,
    /// The key of the x axis (default `step`; without it, the line number).
    #[arg(long, default_value = "step")]
    pub x: String,
    /// The stage whose lines to plot, when several logged the metric.
    #[arg(long)]
    pub stage: Option<String>,
    /// The folder to write `<metric>.svg` and `<metric>.png` into.
    #[arg(short, long, default_value = "plots")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExpApplyArgs {
    /// The experiment.
    pub name: String,
    /// Only write the params; restore nothing (a later `mlcycle run` does).
    #[arg(long)]
    pub no_run: bool,
}

#[derive(Debug, Args)]
pub struct ExpRemoveArgs {
    /// The experiments (or `--failed`, `--queued`).
    #[arg(required_unless_present_any = ["failed", "queued"])]
    pub names: Vec<String>,
    /// Every failed experiment.
    #[arg(long)]
    pub failed: bool,
    /// Every queued experiment.
    #[arg(long)]
    pub queued: bool,
}

#[derive(Debug, Args)]
pub struct ExpRenameArgs {
    pub old: String,
    pub new: String,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCmd {
    /// Every metric the workspace's outputs hold now, as `STAGE.KEY`.
    Show(MetricsShowArgs),
    /// The workspace's metrics against those of a git commit's
    /// `mlcycle.lock` (default: HEAD) or of an experiment.
    Diff(MetricsDiffArgs),
}

#[derive(Debug, Args)]
pub struct MetricsShowArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    #[command(flatten)]
    pub format: TableFormat,
}

#[derive(Debug, Args)]
pub struct MetricsDiffArgs {
    /// The git revision whose `mlcycle.lock` to compare with.
    #[arg(default_value = "HEAD", conflicts_with = "exp")]
    pub rev: String,
    /// Compare with this experiment instead.
    #[arg(long, value_name = "NAME")]
    pub exp: Option<String>,
    /// Also the metrics that are equal.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub format: TableFormat,
}

#[derive(Debug, Subcommand)]
pub enum PlotsCmd {
    /// One chart per plots output and column, overlaying the workspace's
    /// series with those of experiments and git revisions, in one HTML page.
    Diff(PlotsDiffArgs),
}

#[derive(Debug, Args)]
pub struct PlotsDiffArgs {
    /// Experiments or git revisions to draw beside the workspace (default:
    /// HEAD).
    pub targets: Vec<String>,
    /// The column of the x axis (default: `step`, else `epoch`, else the
    /// row number).
    #[arg(long)]
    pub x: Option<String>,
    /// The folder to write `index.html` and the charts into.
    #[arg(short, long, default_value = "plots")]
    pub out: PathBuf,
}
