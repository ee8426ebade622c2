//! Helpers shared by the integration tests: a temp workspace and the real
//! `mlcycle` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Ws {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// The second column of `stage`'s row: its outcome in a run summary,
    /// its state in `status -v`.
    pub fn outcome(&self, stage: &str) -> Option<String> {
        self.stdout.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(stage)).then(|| it.next().unwrap_or("").to_string())
        })
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mlcycle"))
}

impl Ws {
    pub fn new(yaml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("mlcycle.yaml"), yaml).expect("write pipeline");
        Ws { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        c
    }

    /// Runs mlcycle from another folder.
    pub fn run_in(dir: &Path, args: &[&str]) -> Run {
        let o = Command::new(bin())
            .current_dir(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .expect("run mlcycle");
        Run::from(o)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run mlcycle"))
    }
}

/// A small pipeline that trains, bundles and promotes a house-price model
/// (the model registry and serving tests share it); `noise` changes how
/// good the model is.
pub const PROMOTE_PIPELINE: &str = r#"
params:
  noise: 20000
stages:
  houses:
    uses: dataset.synthetic
    with: {kind: house_prices, rows: 200, noise: "${params.noise}"}
  split:
    uses: preprocess.split
    inputs: {data: houses.data}
  ols:
    uses: train.linear_regression
    inputs: {train: split.train}
  bundle:
    uses: deploy.bundle
    inputs: {model: ols.model}
  promote:
    uses: deploy.promote
    inputs: {bundle: bundle.bundle, test: split.test}
    with: {gate: {metric: r2, must_beat_champion_by: 0.0}}
"#;

/// Copies an example's sources (not its outputs) into a temp workspace.
pub fn example(name: &str) -> Ws {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let ws = Ws::new("");
    copy_sources(&src, ws.path());
    ws
}

pub fn copy_sources(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if ["artifacts", ".mlcycle", "mlcycle.lock", "out"].contains(&name.as_str()) {
            continue;
        }
        let dst = to.join(&name);
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_sources(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Waits for a server child (`mlcycle serve`, spawned with piped stderr)
/// to print its `listening on http://HOST:PORT` line and returns the port;
/// the rest of its stderr is drained on a thread so it never blocks.
pub fn listening_port(child: &mut std::process::Child) -> u16 {
    use std::io::{BufRead, BufReader, Read};
    let mut err = BufReader::new(child.stderr.take().expect("stderr piped"));
    let mut line = String::new();
    let port = loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "the server exited");
        if let Some(rest) = line.trim().strip_prefix("listening on http://") {
            break rest.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    port
}
