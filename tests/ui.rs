//! `mlcycle ui`: its HTTP endpoints and their guards here, and the pages
//! themselves in real Chromium (tests/ui/ui.test.mjs, driven by
//! playwright-core from npm).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{bin, Ws};

struct Ui {
    child: Child,
    port: u16,
    /// The `?token=…` the server printed, if any.
    token: Option<String>,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ui(ws: &Path, extra: &[&str]) -> Ui {
    let mut child = Command::new(bin())
        .arg("ui")
        .arg(ws)
        .args(["--port", "0"])
        .args(extra)
        .env_remove("MLCYCLE_UI_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let (port, token) = loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "mlcycle ui ended");
        if let Some(rest) = line.trim().strip_prefix("listening on http://") {
            let (addr, token) = match rest.split_once("/?token=") {
                Some((a, t)) => (a, Some(t.to_string())),
                None => (rest, None),
            };
            break (addr.rsplit(':').next().unwrap().parse().unwrap(), token);
        }
    };
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    Ui { child, port, token }
}

/// One request; returns (status, head, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    c.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head[9..12].parse().unwrap();
    (status, head.to_string(), body.to_string())
}

fn get(port: u16, path: &str) -> (u16, String) {
    let (s, _, b) = http(port, "GET", path, &[], "");
    (s, b)
}

const TWO_SLEEPS: &str = r#"name: two
stages:
  a:
    run: sleep 1 && echo a > a.txt
    outs: [a.txt]
  b:
    run: sleep 1 && echo b > b.txt
    outs: [b.txt]
  c:
    deps: [a.a, b.b]
    run: cat a.txt b.txt > c.txt
    outs: [c.txt]
"#;

/// The run history keeps when each stage started, so a run can be drawn
/// as a timeline: two independent one-second stages overlap.
#[test]
fn the_history_records_when_each_stage_started() {
    let ws = Ws::new(TWO_SLEEPS);
    assert_eq!(ws.run(&["run"]).code, 0);
    let s = ui(ws.path(), &[]);
    let (code, body) = get(s.port, "/api/runs/1");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stage = |id: &str| {
        v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stage"] == id)
            .unwrap()
            .clone()
    };
    let (a, b, c) = (stage("a"), stage("b"), stage("c"));
    let span = |x: &serde_json::Value| {
        let s = x["start_ms"].as_i64().expect("a start time");
        (s, s + x["duration_ms"].as_i64().unwrap())
    };
    let ((a0, a1), (b0, b1), (c0, _)) = (span(&a), span(&b), span(&c));
    assert!(
        a0 < b1 && b0 < a1,
        "a {a0}..{a1} and b {b0}..{b1} ran side by side"
    );
    assert!(
        c0 + 50 >= a1.max(b1),
        "c started after both ({c0} vs {a1}, {b1})"
    );
}

/// The pipeline endpoint lays out every stage with its state and why.
#[test]
fn the_pipeline_endpoint_gives_states_reasons_and_a_layout() {
    let ws = Ws::new(TWO_SLEEPS);
    let s = ui(ws.path(), &[]);
    let (code, body) = get(s.port, "/api/pipeline");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    assert!(stages
        .iter()
        .all(|s| s["state"] == "stale" && s["reasons"][0] == "first run"));
    let c = stages.iter().find(|s| s["id"] == "c").unwrap();
    assert_eq!(c["col"], 1, "c is a column after a and b");
    assert_eq!(v["edges"].as_array().unwrap().len(), 2);
    // A stage that is not there is a 404 with a message.
    let (code, body) = get(s.port, "/api/stage/nope");
    assert_eq!(code, 404);
    assert!(body.contains("no stage `nope`"), "{body}");
}

/// Only files of declared outputs are served: not the pipeline, not a
/// path that climbs out, not a source file.
#[test]
fn the_file_endpoint_serves_stage_outputs_only() {
    let ws = Ws::new(TWO_SLEEPS);
    ws.write("secret.txt", "not for the browser");
    assert_eq!(ws.run(&["run"]).code, 0);
    let s = ui(ws.path(), &[]);
    assert_eq!(get(s.port, "/api/file?path=c.txt"), (200, "a\nb\n".into()));
    for bad in [
        "mlcycle.yaml",
        "secret.txt",
        "../etc/passwd",
        "/etc/passwd",
        "a.txt/../secret.txt",
        ".mlcycle/mlcycle.db",
    ] {
        let (code, body) = get(s.port, &format!("/api/file?path={bad}"));
        assert_eq!(code, 404, "{bad}: {body}");
    }
}

/// Read-only by default; with `--allow-actions`, an action still needs the
/// page's CSRF token and must not come from another origin.
#[test]
fn actions_need_allow_actions_the_csrf_token_and_the_same_origin() {
    let ws = Ws::new(TWO_SLEEPS);
    let ro = ui(ws.path(), &[]);
    let json = [("Content-Type", "application/json")];
    let (code, _, body) = http(ro.port, "POST", "/api/actions/run", &json, "{}");
    assert_eq!(code, 403);
    assert!(body.contains("--allow-actions"), "{body}");
    drop(ro);

    let s = ui(ws.path(), &["--allow-actions"]);
    let (_, page) = get(s.port, "/pipeline");
    let csrf = page
        .split("name=\"mlcycle-csrf\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(csrf.len(), 32);
    let (code, _, _) = http(s.port, "POST", "/api/actions/run", &json, "{}");
    assert_eq!(code, 403, "no CSRF token");
    let with = [
        ("Content-Type", "application/json"),
        ("X-Mlcycle-Csrf", csrf.as_str()),
    ];
    let evil = [
        ("Content-Type", "application/json"),
        ("X-Mlcycle-Csrf", csrf.as_str()),
        ("Origin", "http://evil.example"),
    ];
    let (code, _, _) = http(s.port, "POST", "/api/actions/run", &evil, "{}");
    assert_eq!(code, 403, "another origin");
    assert!(!ws.exists("c.txt"), "nothing ran");
    let (code, _, body) = http(s.port, "POST", "/api/actions/nope", &with, "{}");
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = http(s.port, "POST", "/api/actions/run", &with, "{}");
    assert_eq!(code, 200, "{body}");
    for _ in 0..200 {
        if ws.exists("c.txt") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        ws.read("c.txt"),
        "a\nb\n",
        "the run the page started finished"
    );
}

/// Another host than loopback is never served without a token: one is
/// generated and printed; requests without it get 401.
#[test]
fn serving_beyond_loopback_requires_a_token() {
    let ws = Ws::new(TWO_SLEEPS);
    let s = ui(ws.path(), &["--host", "0.0.0.0"]);
    let token = s.token.clone().expect("a generated token is printed");
    assert_eq!(token.len(), 32);
    let (code, body) = get(s.port, "/api/pipeline");
    assert_eq!(code, 401);
    assert!(body.contains("token"), "{body}");
    let bearer = format!("Bearer {token}");
    let (code, _, _) = http(
        s.port,
        "GET",
        "/api/pipeline",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(code, 200);
    let (code, head, _) = http(s.port, "GET", &format!("/?token={token}"), &[], "");
    assert_eq!(code, 303, "{head}");
    assert!(
        head.to_lowercase().contains("set-cookie: mlcycle_token="),
        "{head}"
    );
    let cookie = format!("mlcycle_token={token}");
    let (code, _, _) = http(s.port, "GET", "/api/runs", &[("Cookie", &cookie)], "");
    assert_eq!(code, 200);
    let (code, _, _) = http(
        s.port,
        "GET",
        "/api/runs",
        &[("Authorization", "Bearer wrong")],
        "",
    );
    assert_eq!(code, 401);
    // A token too short to be one is refused before anything listens.
    let out = Command::new(bin())
        .args(["ui"])
        .arg(ws.path())
        .args(["--token", "short"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16"));
}

/// The pages in Chromium: the DAG and a stage's panel, a run's timeline,
/// the experiments table and a comparison, the models page, a run started
/// from the page, actions refused, keyboard use. They need Node.js,
/// Chromium and `npm ci --prefix tests/ui`; `.ci/run` installs them and
/// sets MLCYCLE_REQUIRE_BROWSER=1, so in CI a missing piece fails.
#[test]
fn the_pages_work_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let have_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let have_pw = root.join("tests/ui/node_modules/playwright-core").is_dir();
    let have_chromium = Path::new(&chromium).exists();
    if !(have_node && have_pw && have_chromium) {
        let missing = format!(
            "node: {have_node}, tests/ui/node_modules/playwright-core: {have_pw}, {chromium}: {have_chromium}"
        );
        if std::env::var("MLCYCLE_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("the browser tests cannot run ({missing}): apt-get install chromium nodejs npm; npm ci --prefix tests/ui");
        }
        eprintln!("skipped: the browser tests need Node.js, Chromium and `npm ci --prefix tests/ui` ({missing})");
        return;
    }
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .arg(root.join("tests/ui/ui.test.mjs"))
        .env("MLCYCLE_BIN", bin())
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("# fail 0") && !text.contains("# pass 0"),
        "{text}"
    );
}

/// Without a token the server answers only under a loopback name: a page
/// of another site whose name resolves to 127.0.0.1 (DNS rebinding) can
/// neither read the workspace nor act on it.
#[test]
fn regression_a_foreign_host_name_is_refused_without_a_token() {
    let ws = Ws::new(TWO_SLEEPS);
    let s = ui(ws.path(), &["--allow-actions"]);
    let evil = format!("evil.example:{}", s.port);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    write!(
        c,
        "GET /api/pipeline HTTP/1.1\r\nHost: {evil}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(out.contains("not this machine's loopback address"), "{out}");
    for host in ["localhost", "127.0.0.1"] {
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        write!(
            c,
            "GET /api/pipeline HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\n\r\n",
            s.port
        )
        .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{host}: {out}");
    }
}

/// A stage's panel never reads through a link out of the workspace (the
/// file endpoint already refused it), and a run's log is served only for
/// a stage the run recorded.
#[test]
fn regression_the_stage_panel_and_logs_do_not_follow_links_out() {
    let ws = Ws::new(
        r#"name: links
stages:
  mk:
    run: "mkdir -p out && echo '{}' > out/m.json"
    outs: [{m: {path: out/m.json, metrics: true}}]
"#,
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("creds.json"),
        r#"{"secret": "hunter2"}"#,
    )
    .unwrap();
    std::fs::remove_file(ws.path().join("out/m.json")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("creds.json"),
        ws.path().join("out/m.json"),
    )
    .unwrap();
    let s = ui(ws.path(), &[]);
    let (code, body) = get(s.port, "/api/stage/mk");
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains("hunter2"), "{body}");
    assert!(body.contains("\"outside\":true"), "{body}");
    let logs = ws.path().join(".mlcycle/runs/1");
    std::fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(outside.path().join("creds.json"), logs.join("other.log")).unwrap();
    let (code, body) = get(s.port, "/api/runs/1/log/other");
    assert_eq!(code, 404, "{body}");
    std::fs::remove_file(logs.join("mk.log")).ok();
    std::os::unix::fs::symlink(outside.path().join("creds.json"), logs.join("mk.log")).unwrap();
    let (code, body) = get(s.port, "/api/runs/1/log/mk");
    assert_eq!(code, 404, "{body}");
    assert!(!body.contains("hunter2"));
    // An unknown endpoint is a JSON 404, not the page.
    let (code, body) = get(s.port, "/api/nope");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no such endpoint"), "{body}");
}

/// An invalid pipeline file is answered with every problem where it is,
/// as `mlcycle validate` reports them.
#[test]
fn an_invalid_pipeline_is_reported_with_its_problems() {
    let ws = Ws::new(TWO_SLEEPS);
    let s = ui(ws.path(), &[]);
    ws.write(
        "mlcycle.yaml",
        &TWO_SLEEPS.replace("deps: [a.a, b.b]", "deps: [a.a, b.bb]"),
    );
    let (code, body) = get(s.port, "/api/pipeline");
    assert_eq!(code, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("mlcycle.yaml:10:17"), "{e}");
    assert!(e.contains("b.bb"), "{e}");
}

/// The token given in the URL becomes a cookie and leaves the address, so
/// a link copied from the page does not carry it; the scheme of an
/// Authorization header is case-insensitive.
#[test]
fn a_token_in_the_url_moves_to_a_cookie() {
    let ws = Ws::new(TWO_SLEEPS);
    let s = ui(ws.path(), &["--token", "0123456789abcdef0123"]);
    let (code, head, _) = http(
        s.port,
        "GET",
        "/pipeline?token=0123456789abcdef0123&stage=a",
        &[],
        "",
    );
    assert_eq!(code, 303, "{head}");
    assert!(
        head.contains("location: /pipeline?stage=a")
            || head.contains("Location: /pipeline?stage=a"),
        "{head}"
    );
    assert!(
        head.to_lowercase()
            .contains("set-cookie: mlcycle_token=0123456789abcdef0123"),
        "{head}"
    );
    let (code, _, _) = http(
        s.port,
        "GET",
        "/api/runs",
        &[("Authorization", "bearer 0123456789abcdef0123")],
        "",
    );
    assert_eq!(code, 200);
}
