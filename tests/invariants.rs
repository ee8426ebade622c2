//! A property test of the engine's promises, on random small pipelines of
//! `run:` stages over a shared set of source files and folders.
//!
//! Each case builds a workspace (`data/a.txt`, `data/b.txt`,
//! `data/sub/c.txt`, optionally a symlink `link -> data`), a pipeline of one
//! to six stages, and a sequence of up to six edits (a source file's bytes,
//! a param given with `-p`, a stage's command, an output deleted by hand),
//! each followed by `mlcycle run`, sometimes after a first `mlcycle run`
//! killed with SIGKILL 0 to 300 ms in. Stages write a file or a folder (with
//! a nested file, maybe an empty sub-folder and a copy of a dep) and read
//! source files, source folders (`data/`), paths through the symlink
//! (`link/a.txt`), other stages' outputs (by path, as `stage.port`, or a
//! file inside an output folder) and the folder `out/` that holds other
//! outputs; some paths are spelled `./…`. After every successful run:
//!
//! 1. `mlcycle status` exits 0 (everything is fresh);
//! 2. every declared output is byte for byte (names and empty folders
//!    included) what a from-scratch `mlcycle run` writes in a fresh copy of
//!    the sources;
//! 3. no file outside the declared outputs was removed or changed, and
//!    nothing appeared there but the folders that hold outputs (`.mlcycle/`
//!    and `mlcycle.lock` excepted);
//! 4. nothing outside the workspace was touched.
//!
//! The pipelines are valid by construction: a stage's command reads exactly
//! its deps and writes exactly its outputs, deterministically. Stages come in
//! two groups so that the DAG stays acyclic: *primary* stages write under
//! `out/` and read sources and earlier primary stages; *collector* stages
//! write under `res/` and may also read earlier collectors and the whole
//! `out/` folder (which then holds every primary stage's outputs).
//!
//! Cases: `MLCYCLE_PROPTEST_CASES` (default [`DEFAULT_CASES`]).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Ws;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// A case takes about 0.2 s (two cores, workspaces in /dev/shm): 128 take
/// about 30 s.
const DEFAULT_CASES: u32 = 128;

/// The source files, all under `data/`.
const SOURCES: [&str; 3] = ["data/a.txt", "data/b.txt", "data/sub/c.txt"];

/// What a source file may hold: few values, so that edits often go back to
/// earlier contents (the run-cache then restores instead of running).
/// Two of them have one size, so that only the bytes tell them apart.
const CONTENTS: [&str; 4] = ["", "1\n", "2\n", "hello world\n"];

/// The deps spelled through the symlink `link -> data`, and what a pipeline
/// without the symlink reads instead.
const VIA_LINK: [(&str, &str); 3] = [
    ("link/a.txt", "data/a.txt"),
    ("link/sub/c.txt", "data/sub/c.txt"),
    ("link/sub/", "data/sub/"),
];

/// The params every pipeline declares (each is 1); stages may read one.
const PARAMS: [&str; 2] = ["x", "y"];

// ---------------------------------------------------------------------------
// What the strategies generate.

#[derive(Clone, Debug)]
enum Dep {
    /// `SOURCES[i]`.
    Source(usize),
    /// `data/sub/` when true, else `data/`.
    DataDir(bool),
    /// `VIA_LINK[i]`.
    Link(usize),
    /// An earlier stage's output (one the stage may read; see the module
    /// doc), picked as `pick` modulo their number: spelled as its path, as
    /// `stage.port`, or, for a folder output and `inner`, as a file inside it.
    Stage {
        pick: usize,
        inner: bool,
        by_port: bool,
    },
    /// The folder `out/`, which holds every primary stage's outputs
    /// (collectors only; others leave it out).
    AllOut,
}

#[derive(Clone, Debug)]
struct StageGen {
    collector: bool,
    /// Writes a folder (`out/sN/`, holding `all.txt`, `g/h.txt`, maybe an
    /// empty `e/` and a copy of a file dep) rather than a file.
    folder: bool,
    empty_dir: bool,
    copy_first_file: bool,
    /// Each dep, and whether its path is spelled with a leading `./`.
    deps: Vec<(Dep, bool)>,
    /// The output spelled with a leading `./` in `outs:`.
    dot_out: bool,
    /// The command: `tag` is echoed into the output, `noop` only changes the
    /// command's text (`: N;`), not what it writes (early cutoff).
    cmd: Cmd,
    /// The param (index into `PARAMS`) it echoes, if any.
    param: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
struct Cmd {
    tag: u8,
    noop: u8,
}

#[derive(Clone, Debug)]
enum Edit {
    Source {
        file: usize,
        content: usize,
    },
    /// `-p KEY=VALUE` for this and later runs; `None` drops the override.
    Param {
        key: usize,
        value: Option<u8>,
    },
    /// Stage `pick` modulo the number of stages gets a new command.
    Command {
        pick: usize,
        cmd: Cmd,
    },
    /// Delete stage `pick`'s output, as a user might (the run restores it).
    RemoveOutput {
        pick: usize,
    },
}

#[derive(Clone, Debug)]
struct Step {
    edit: Option<Edit>,
    /// Start a run and SIGKILL it after this many ms, before the real run.
    kill_after_ms: Option<u64>,
}

#[derive(Clone, Debug)]
struct Case {
    link: bool,
    sources: Vec<usize>,
    stages: Vec<StageGen>,
    /// The first run comes before these (and may be killed too).
    first_kill_ms: Option<u64>,
    steps: Vec<Step>,
}

fn dep() -> impl Strategy<Value = Dep> {
    prop_oneof![
        2 => (0..SOURCES.len()).prop_map(Dep::Source),
        1 => any::<bool>().prop_map(Dep::DataDir),
        1 => (0..VIA_LINK.len()).prop_map(Dep::Link),
        4 => (0..12usize, any::<bool>(), any::<bool>())
            .prop_map(|(pick, inner, by_port)| Dep::Stage { pick, inner, by_port }),
        1 => Just(Dep::AllOut),
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    (0..2u8, 0..2u8).prop_map(|(tag, noop)| Cmd { tag, noop })
}

fn stage() -> impl Strategy<Value = StageGen> {
    (
        (prop::bool::weighted(0.3), any::<bool>(), any::<bool>()),
        any::<bool>(),
        prop::collection::vec((dep(), prop::bool::weighted(0.2)), 0..4),
        prop::bool::weighted(0.2),
        cmd(),
        prop::option::of(0..PARAMS.len()),
    )
        .prop_map(
            |((collector, folder, empty_dir), copy_first_file, deps, dot_out, cmd, param)| {
                StageGen {
                    collector,
                    folder,
                    empty_dir,
                    copy_first_file,
                    deps,
                    dot_out,
                    cmd,
                    param,
                }
            },
        )
}

/// Mostly early kills (a run takes a few tens of ms), some up to 300 ms.
fn kill_delay() -> impl Strategy<Value = Option<u64>> {
    prop::option::weighted(0.3, prop_oneof![3 => 0..40u64, 1 => 40..300u64])
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..SOURCES.len(), 0..CONTENTS.len())
            .prop_map(|(file, content)| Edit::Source { file, content }),
        (0..PARAMS.len(), prop::option::of(0..3u8))
            .prop_map(|(key, value)| Edit::Param { key, value }),
        (0..6usize, cmd()).prop_map(|(pick, cmd)| Edit::Command { pick, cmd }),
        (0..6usize).prop_map(|pick| Edit::RemoveOutput { pick }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop::collection::vec(0..CONTENTS.len(), SOURCES.len()),
        prop::collection::vec(stage(), 1..=6),
        kill_delay(),
        prop::collection::vec(
            (prop::option::of(edit()), kill_delay()).prop_map(|(edit, kill_after_ms)| Step {
                edit,
                kill_after_ms,
            }),
            0..=6,
        ),
    )
        .prop_map(|(link, sources, stages, first_kill_ms, steps)| Case {
            link,
            sources,
            stages,
            first_kill_ms,
            steps,
        })
}

// ---------------------------------------------------------------------------
// From a case to an `mlcycle.yaml`.

struct Built {
    yaml: String,
    /// Every declared output: `out/s0.txt`, `out/s1/`, `res/s2.txt`…
    outs: Vec<String>,
}

fn out_path(i: usize, s: &StageGen) -> String {
    let area = if s.collector { "res" } else { "out" };
    if s.folder {
        format!("{area}/s{i}/")
    } else {
        format!("{area}/s{i}.txt")
    }
}

/// A shell snippet that prints a dep's content deterministically: a file's
/// bytes, or a folder's sorted listing (empty folders included) and then its
/// files' bytes.
fn reader(path: &str) -> String {
    if path.ends_with('/') {
        format!("find {path} | LC_ALL=C sort; find {path} -type f | LC_ALL=C sort | xargs -r cat")
    } else {
        format!("cat {path}")
    }
}

/// The stage's deps as (spelling in `deps:`, path the command reads); folder
/// paths end with `/`.
fn resolve_deps(case: &Case, i: usize) -> Vec<(String, String)> {
    let me = &case.stages[i];
    let mut deps: Vec<(String, String)> = Vec::new();
    for (d, dot) in &me.deps {
        let (spelling, path) = match d {
            Dep::Source(k) => (SOURCES[*k].to_string(), SOURCES[*k].to_string()),
            Dep::DataDir(sub) => {
                let p = if *sub { "data/sub/" } else { "data/" };
                (p.to_string(), p.to_string())
            }
            Dep::Link(k) => {
                let p = if case.link {
                    VIA_LINK[*k].0
                } else {
                    VIA_LINK[*k].1
                };
                (p.to_string(), p.to_string())
            }
            Dep::Stage {
                pick,
                inner,
                by_port,
            } => {
                let readable: Vec<usize> = (0..i)
                    .filter(|&j| me.collector || !case.stages[j].collector)
                    .collect();
                if readable.is_empty() {
                    continue;
                }
                let j = readable[pick % readable.len()];
                let out = out_path(j, &case.stages[j]);
                if case.stages[j].folder && *inner {
                    let file = if (pick / readable.len()).is_multiple_of(2) {
                        "all.txt"
                    } else {
                        "g/h.txt"
                    };
                    let p = format!("{out}{file}");
                    (p.clone(), p)
                } else if *by_port {
                    (format!("s{j}.s{j}"), out)
                } else {
                    (out.clone(), out)
                }
            }
            Dep::AllOut => {
                if !me.collector || case.stages.iter().all(|s| s.collector) {
                    continue;
                }
                ("out/".to_string(), "out/".to_string())
            }
        };
        // One path twice is refused (`duplicate_dep`), however spelled.
        if !deps
            .iter()
            .any(|(s, _)| s.strip_prefix("./").unwrap_or(s) == spelling)
        {
            let by_port = !spelling.contains('/');
            let spelling = if *dot && !by_port {
                format!("./{spelling}")
            } else {
                spelling
            };
            deps.push((spelling, path));
        }
    }
    deps
}

fn build(case: &Case, cmds: &[Cmd]) -> Built {
    let mut yaml = String::from("name: prop\nparams: {x: 1, y: 1}\nstages:\n");
    let mut outs = Vec::new();
    for (i, s) in case.stages.iter().enumerate() {
        let out = out_path(i, s);
        let deps = resolve_deps(case, i);
        let Cmd { tag, noop } = cmds[i];
        let mut head = format!("echo s{i} t{tag}");
        if let Some(p) = s.param {
            head += &format!(" ${{params.{}}}", PARAMS[p]);
        }
        let body = std::iter::once(head)
            .chain(deps.iter().map(|(_, p)| reader(p)))
            .collect::<Vec<_>>()
            .join("; ");
        let group = format!("{{ {body}; }}");
        let cmd = if s.folder {
            let mut c = format!("mkdir -p {out}g");
            if s.empty_dir {
                c += &format!(" {out}e");
            }
            if s.copy_first_file {
                if let Some((_, f)) = deps.iter().find(|(_, p)| !p.ends_with('/')) {
                    c += &format!(" && cp {f} {out}");
                }
            }
            c + &format!(" && {group} > {out}all.txt && echo t{tag} > {out}g/h.txt")
        } else {
            format!("{group} > {out}")
        };
        yaml += &format!("  s{i}:\n    run: ': {noop}; {cmd}'\n");
        if !deps.is_empty() {
            let list: Vec<String> = deps.iter().map(|(s, _)| format!("'{s}'")).collect();
            yaml += &format!("    deps: [{}]\n", list.join(", "));
        }
        let dot = if s.dot_out { "./" } else { "" };
        yaml += &format!("    outs: ['{dot}{out}']\n");
        outs.push(out);
    }
    Built { yaml, outs }
}

// ---------------------------------------------------------------------------
// Trees on disk.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Dir,
    Link(PathBuf),
}

/// Relative path (`/`-separated) → entry; symlinks are not followed.
type Tree = BTreeMap<String, Entry>;

fn walk(root: &Path, rel: &str, skip: &dyn Fn(&str) -> bool, into: &mut Tree) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if skip(&r) {
            continue;
        }
        let t = e.file_type().unwrap();
        if t.is_symlink() {
            into.insert(r, Entry::Link(fs::read_link(e.path()).unwrap()));
        } else if t.is_dir() {
            into.insert(r.clone(), Entry::Dir);
            walk(root, &r, skip, into);
        } else {
            into.insert(r, Entry::File(fs::read(e.path()).unwrap()));
        }
    }
}

fn tree(root: &Path, skip: &dyn Fn(&str) -> bool) -> Tree {
    let mut t = Tree::new();
    walk(root, "", skip, &mut t);
    t
}

/// Whether `rel` is a declared output or lies inside one.
fn in_outputs(rel: &str, outs: &[String]) -> bool {
    outs.iter().any(|o| {
        let o = o.trim_end_matches('/');
        rel == o || rel.strip_prefix(o).is_some_and(|r| r.starts_with('/'))
    })
}

/// Everything but the outputs and mlcycle's own files.
fn non_outputs(ws: &Path, outs: &[String]) -> Tree {
    tree(ws, &|r| {
        r == ".mlcycle" || r == "mlcycle.lock" || in_outputs(r, outs)
    })
}

/// The declared outputs only (a missing one is absent).
fn outputs(ws: &Path, outs: &[String]) -> Tree {
    let all = tree(ws, &|r| r == ".mlcycle");
    all.into_iter()
        .filter(|(r, _)| in_outputs(r, outs))
        .collect()
}

/// What differs between two trees, for a failure message.
fn diff(a: &Tree, b: &Tree) -> String {
    let mut d = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => d.push(format!("  {k}: only in the first")),
            Some(w) if w != v => d.push(format!("  {k}: {} vs {}", show(v), show(w))),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        d.push(format!("  {k}: only in the second"));
    }
    d.join("\n")
}

fn show(e: &Entry) -> String {
    match e {
        Entry::File(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Entry::Dir => "a folder".into(),
        Entry::Link(t) => format!("-> {}", t.display()),
    }
}

/// Waits until no process has its working directory in `ws`: the commands
/// of a run killed with SIGKILL keep running (concepts.md, "What is not
/// stopped"), and the next run must not race them.
fn wait_for_orphans(ws: &Path) {
    let ws = ws.canonicalize().unwrap();
    let t = Instant::now();
    loop {
        let busy = fs::read_dir("/proc").unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
                && fs::read_link(e.path().join("cwd")).is_ok_and(|c| c == ws)
        });
        if !busy {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "commands of a killed run still running after 20 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------
// Running a case.

/// A temp folder, in memory when `/dev/shm` is there: mlcycle fsyncs what it
/// stores, which on a disk costs more than everything else here.
fn temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let in_shm = shm
        .is_dir()
        .then(|| tempfile::tempdir_in(shm).ok())
        .flatten();
    in_shm.unwrap_or_else(|| tempfile::tempdir().unwrap())
}

struct Ctx<'a> {
    case: &'a Case,
    root: tempfile::TempDir,
    ws: Ws,
    cmds: Vec<Cmd>,
    overrides: [Option<u8>; 2],
    outside: Tree,
    /// From-scratch outputs by everything they depend on.
    scratch: HashMap<String, Tree>,
    /// What happened so far, for failure messages.
    log: Vec<String>,
}

impl Ctx<'_> {
    fn p_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for (k, v) in PARAMS.iter().zip(self.overrides) {
            if let Some(v) = v {
                a.push("-p".to_string());
                a.push(format!("{k}={v}"));
            }
        }
        a
    }

    fn mlcycle(&self, cmd: &str) -> common::Run {
        let mut args = vec![cmd.to_string()];
        args.extend(self.p_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ws.run(&args)
    }

    fn context(&self, built: &Built) -> String {
        format!(
            "\n--- steps so far:\n{}\n--- mlcycle.yaml:\n{}",
            self.log.join("\n"),
            built.yaml
        )
    }

    fn apply(&mut self, edit: &Edit) {
        match *edit {
            Edit::Source { file, content } => {
                self.ws.write(SOURCES[file], CONTENTS[content]);
                self.log.push(format!(
                    "write {:?} to {}",
                    CONTENTS[content], SOURCES[file]
                ));
            }
            Edit::Param { key, value } => {
                self.overrides[key] = value;
                self.log
                    .push(format!("override {}: {value:?}", PARAMS[key]));
            }
            Edit::Command { pick, cmd } => {
                let i = pick % self.cmds.len();
                self.cmds[i] = cmd;
                self.log.push(format!("stage s{i}'s command: {cmd:?}"));
            }
            Edit::RemoveOutput { pick } => {
                let i = pick % self.cmds.len();
                let out = out_path(i, &self.case.stages[i]);
                let p = self.ws.path().join(&out);
                // Absent when its last run was killed before it wrote it.
                let _ = if out.ends_with('/') {
                    fs::remove_dir_all(p)
                } else {
                    fs::remove_file(p)
                };
                self.log.push(format!("rm -r {out}"));
                return;
            }
        }
        let built = build(self.case, &self.cmds);
        self.ws.write("mlcycle.yaml", &built.yaml);
    }

    /// One `mlcycle run` (after a killed one when `kill_after_ms`), then
    /// every check.
    fn run_and_check(&mut self, kill_after_ms: Option<u64>) -> Result<(), TestCaseError> {
        let built = build(self.case, &self.cmds);
        let before = non_outputs(self.ws.path(), &built.outs);
        if let Some(ms) = kill_after_ms {
            let mut args = vec!["run".to_string()];
            args.extend(self.p_args());
            let mut child = self
                .ws
                .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(ms));
            child.kill().unwrap();
            child.wait().unwrap();
            wait_for_orphans(self.ws.path());
            self.log
                .push(format!("run {:?}, SIGKILL after {ms} ms", self.p_args()));
        }
        let r = self.mlcycle("run");
        self.log.push(format!("run {:?}", self.p_args()));
        prop_assert_eq!(
            r.code,
            0,
            "run failed:\n{}{}{}",
            r.stdout,
            r.stderr,
            self.context(&built)
        );

        // 1. Everything is fresh.
        let st = self.mlcycle("status");
        prop_assert_eq!(
            st.code,
            0,
            "status after a successful run:\n{}{}\n--- the run said:\n{}{}",
            st.stdout,
            st.stderr,
            r.stdout,
            self.context(&built)
        );

        // 2. The outputs are what a run from scratch writes.
        let got = outputs(self.ws.path(), &built.outs);
        let want = self.scratch(&built)?;
        prop_assert!(
            got == want,
            "outputs differ from a from-scratch run (first: here, second: scratch):\n{}\n--- the run said:\n{}{}",
            diff(&got, &want),
            r.stdout,
            self.context(&built)
        );

        // 3. Nothing else in the workspace was removed or changed, and only
        // the folders that hold outputs appeared.
        let after = non_outputs(self.ws.path(), &built.outs);
        let holds_outputs = |r: &str| {
            built
                .outs
                .iter()
                .any(|o| o.strip_prefix(r).is_some_and(|x| x.starts_with('/')))
        };
        let unexpected: Tree = after
            .iter()
            .filter(|(k, v)| match before.get(*k) {
                Some(b) => b != *v,
                None => !(**v == Entry::Dir && holds_outputs(k)),
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
        prop_assert!(
            unexpected.is_empty() && removed.is_empty(),
            "files outside the outputs changed: removed {removed:?}; new or changed:\n{}{}",
            diff(&unexpected, &Tree::new()),
            self.context(&built)
        );

        // 4. Nothing outside the workspace was touched.
        let ws_name = self
            .ws
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let outside = tree(self.root.path(), &|r| r == ws_name);
        prop_assert!(
            outside == self.outside,
            "outside the workspace:\n{}{}",
            diff(&self.outside, &outside),
            self.context(&built)
        );
        Ok(())
    }

    /// The outputs of `mlcycle run` in a fresh copy of the sources.
    fn scratch(&mut self, built: &Built) -> Result<Tree, TestCaseError> {
        let data = tree(&self.ws.path().join("data"), &|_| false);
        let key = format!(
            "{}{:?}{:?}{}",
            built.yaml, data, self.overrides, self.case.link
        );
        if let Some(t) = self.scratch.get(&key) {
            return Ok(t.clone());
        }
        let fresh = Ws { dir: temp_dir() };
        fresh.write("mlcycle.yaml", &built.yaml);
        for (rel, e) in &data {
            let p = fresh.path().join("data").join(rel);
            match e {
                Entry::Dir => fs::create_dir_all(p).unwrap(),
                Entry::File(b) => {
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    fs::write(p, b).unwrap()
                }
                Entry::Link(_) => unreachable!("data/ holds no symlinks"),
            }
        }
        if self.case.link {
            std::os::unix::fs::symlink("data", fresh.path().join("link")).unwrap();
        }
        let mut args = vec!["run".to_string()];
        args.extend(self.p_args());
        let r = fresh.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(
            r.code,
            0,
            "the from-scratch run failed (the generator made an invalid pipeline?):\n{}{}{}",
            r.stdout,
            r.stderr,
            self.context(built)
        );
        let t = outputs(fresh.path(), &built.outs);
        self.scratch.insert(key, t.clone());
        Ok(t)
    }
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let root = temp_dir();
    fs::create_dir(root.path().join("outside")).unwrap();
    fs::write(root.path().join("outside/keep.txt"), "not mlcycle's\n").unwrap();
    let ws = Ws {
        dir: tempfile::tempdir_in(root.path()).unwrap(),
    };
    for (file, content) in SOURCES.iter().zip(&case.sources) {
        ws.write(file, CONTENTS[*content]);
    }
    if case.link {
        std::os::unix::fs::symlink("data", ws.path().join("link")).unwrap();
    }
    let ws_name = ws
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let outside = tree(root.path(), &|r| r == ws_name);
    let cmds = case.stages.iter().map(|s| s.cmd).collect();
    let mut ctx = Ctx {
        case,
        root,
        ws,
        cmds,
        overrides: [None, None],
        outside,
        scratch: HashMap::new(),
        log: Vec::new(),
    };
    ctx.ws.write("mlcycle.yaml", &build(case, &ctx.cmds).yaml);
    ctx.run_and_check(case.first_kill_ms)?;
    for step in &case.steps {
        if let Some(e) = &step.edit {
            ctx.apply(e);
        }
        ctx.run_and_check(step.kill_after_ms)?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("MLCYCLE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn runs_leave_fresh_outputs_equal_to_a_run_from_scratch(case in case()) {
        check(&case)?;
    }
}
