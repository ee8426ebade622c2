//! `mlcycle serve`: endpoints, hardening, hot swap, durability.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Ws;

const PIPELINE: &str = common::PROMOTE_PIPELINE;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(ws: &Ws, extra: &[&str]) -> Server {
    let mut args = vec!["serve", "--port", "0"];
    args.extend_from_slice(extra);
    let mut child = ws
        .cmd(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = common::listening_port(&mut child);
    Server { child, port }
}

/// One HTTP/1.1 request; returns (status, body).
fn http(port: u16, method: &str, path: &str, ctype: &str, body: &str) -> (u16, String) {
    let (status, _, body) = http_full(port, method, path, ctype, body);
    (status, body)
}

/// The body of a 200 response, or `None` once the server is gone (or
/// answers anything else).
fn acknowledged(port: u16, path: &str, body: &str) -> Option<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
        .then(|| out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

fn post(port: u16, path: &str, body: &str) -> (u16, String) {
    http(port, "POST", path, "application/json", body)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn trained() -> Ws {
    let ws = Ws::new(PIPELINE);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    ws
}

#[test]
fn predicts_in_our_shape_and_mlflow_shapes() {
    let ws = trained();
    let s = start(&ws, &[]);
    let (code, body) = post(
        s.port,
        "/predict",
        r#"{"instances": [{"area": 100}, {"area": 200}]}"#,
    );
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["model_version"], "1");
    let p = v["predictions"].as_array().unwrap();
    assert_eq!(p.len(), 2);
    let a = p[0]["prediction"].as_f64().unwrap();
    assert!((a - 350_000.0).abs() < 30_000.0, "{body}");
    assert_ne!(p[0]["prediction_id"], p[1]["prediction_id"]);
    for req in [
        r#"{"dataframe_split": {"columns": ["area"], "data": [[100], [200]]}}"#,
        r#"{"dataframe_records": [{"area": 100}, {"area": 200}]}"#,
        r#"{"instances": [{"area": 100}, {"area": 200}]}"#,
        r#"{"inputs": {"area": [100, 200]}}"#,
    ] {
        let (code, body) = post(s.port, "/invocations", req);
        assert_eq!(code, 200, "{req}: {body}");
        let preds = json(&body)["predictions"].clone();
        assert_eq!(preds[0].as_f64().unwrap(), a, "{req}");
        assert_eq!(preds.as_array().unwrap().len(), 2, "{req}");
    }
    let (code, body) = http(s.port, "GET", "/metadata", "", "");
    assert_eq!(code, 200);
    assert_eq!(json(&body)["inputs"][0]["name"], "area");
    assert_eq!(http(s.port, "GET", "/health", "", "").0, 200);
    assert_eq!(http(s.port, "GET", "/ready", "", "").0, 200);
    let (_, metrics) = http(s.port, "GET", "/metrics", "", "");
    assert!(
        metrics.contains("mlcycle_requests_total{route=\"invocations\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mlcycle_predict_latency_seconds_count 5"),
        "{metrics}"
    );
}

#[test]
fn bad_requests_get_the_right_status_and_say_why() {
    let ws = trained();
    let s = start(&ws, &["--max-body", "1000", "--feedback-quota", "1"]);
    let big = format!(
        r#"{{"instances": [{{"area": 1}}], "pad": "{}"}}"#,
        "x".repeat(5000)
    );
    assert_eq!(post(s.port, "/predict", &big).0, 413);
    let (code, body) = http(s.port, "POST", "/predict", "text/plain", "{}");
    assert_eq!(code, 415, "{body}");
    let (code, body) = post(s.port, "/predict", "{not json");
    assert_eq!(code, 400, "{body}");
    let (code, body) = post(s.port, "/predict", r#"{"instances": [{"size": 3}]}"#);
    assert_eq!(code, 422);
    assert!(body.contains("missing feature(s): area"), "{body}");
    assert!(body.contains("unknown feature(s): size"), "{body}");
    let (code, body) = post(s.port, "/predict", r#"{"instances": [{"area": "NaN"}]}"#);
    assert_eq!(code, 422);
    assert!(body.contains("must be a finite number"), "{body}");
    // Each is refused with 422 and says this. Rows count from 1, as the
    // model's own errors count them. Columns of unequal length were padded
    // with nulls (scored as missing by a model that takes them), and a
    // single value beside lists was lost; column names that are not
    // strings were read as the empty name.
    for (path, bad, says) in [
        (
            "/predict",
            r#"{"instances": [{"area": 1}, {"area": null}]}"#,
            "row 2: `area` must be a finite number",
        ),
        (
            "/predict",
            r#"{"instances": [[1], [1, 2]]}"#,
            "row 2 has 2 values by position",
        ),
        (
            "/invocations",
            r#"{"inputs": {"area": [1, 2], "id": [7]}}"#,
            "differ in length: `area` has 2 values, `id` has 1",
        ),
        (
            "/invocations",
            r#"{"inputs": {"area": 3, "id": [7, 8]}}"#,
            "give every column as a list",
        ),
        (
            "/invocations",
            r#"{"dataframe_split": {"columns": ["area"], "data": [[1], [2, 3]]}}"#,
            "`data` row 2 has 2 values",
        ),
        (
            "/invocations",
            r#"{"dataframe_split": {"columns": [1], "data": [[1]]}}"#,
            "must be names (strings), got 1",
        ),
        (
            "/invocations",
            r#"{"dataframe_records": [{"area": 1}, {"size": 2}]}"#,
            "missing feature(s): area (first in row 2)",
        ),
        // Each missing feature names its own first row.
        (
            "/invocations",
            r#"{"dataframe_records": [{"area": 1}, {"area": 2}, {"size": 2}]}"#,
            "area (first in row 3)",
        ),
    ] {
        let (code, body) = post(s.port, path, bad);
        assert_eq!(code, 422, "{bad}: {body}");
        assert!(body.contains(says), "{bad}: {body}");
    }
    // A CSV body: `NaN` is missing (as `mlcycle predict` reads it), and a
    // ragged row is named once, by its row.
    let (code, body) = http(s.port, "POST", "/invocations", "text/csv", "area\nNaN\n");
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("row 1: `area` must be a finite number, got null"),
        "{body}"
    );
    let (code, body) = http(s.port, "POST", "/invocations", "text/csv", "area\n1\n2,3\n");
    assert!(code == 400 || code == 422, "{code} {body}");
    assert!(
        body.contains("CSV row 2 (line 3): 2 fields, the header has 1"),
        "{body}"
    );
    assert!(!body.contains("record"), "{body}");
    let (code, body) = post(s.port, "/predict", r#"{"instances": [{"area": 1e999}]}"#);
    assert_eq!(code, 422, "infinity: {body}");
    let (code, body) = post(
        s.port,
        "/feedback",
        r#"{"prediction_id": "nope", "label": 1}"#,
    );
    assert_eq!(code, 404, "{body}");
    let (_, body) = post(s.port, "/predict", r#"{"instances": [{"area": 100}]}"#);
    let id = json(&body)["predictions"][0]["prediction_id"].clone();
    let fb = format!(r#"{{"prediction_id": {id}, "label": 330000}}"#);
    assert_eq!(post(s.port, "/feedback", &fb).0, 200);
    let (code, body) = post(s.port, "/feedback", &fb);
    assert_eq!(code, 429, "the quota of 1 is reached: {body}");
    let log = ws.read("feedback/labels.jsonl");
    assert_eq!(log.lines().count(), 1);
    assert!(log.contains(r#""row":{"area":100}"#), "{log}");
}

#[test]
fn a_client_that_sends_headers_slowly_is_disconnected() {
    let ws = trained();
    let s = start(&ws, &["--header-timeout", "1"]);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap_or(0);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        t.elapsed()
    );
    let _ = n;
}

#[test]
fn a_new_champion_is_served_without_a_restart() {
    let ws = trained();
    let s = start(&ws, &[]);
    let r = ws.run(&["run", "-p", "noise=2000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("promoted version 2"), "{}", r.stderr);
    let t = Instant::now();
    loop {
        let (_, body) = http(s.port, "GET", "/ready", "", "");
        if json(&body)["model_version"] == "2" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "still {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_acknowledged_prediction_and_label_survives_sigkill() {
    let ws = trained();
    let mut s = start(&ws, &[]);
    let port = s.port;
    let acked = std::thread::spawn(move || {
        let mut ids = Vec::new();
        let mut labelled = Vec::new();
        for i in 0..400 {
            let body = format!(r#"{{"instances": [{{"area": {}}}]}}"#, 50 + i % 150);
            let Some(out) = acknowledged(port, "/predict", &body) else {
                break;
            };
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let id = v["predictions"][0]["prediction_id"]
                .as_str()
                .unwrap()
                .to_string();
            ids.push(id.clone());
            // every other prediction gets its label
            if i % 2 == 0 {
                let body = format!(r#"{{"prediction_id": "{id}", "label": {}}}"#, 1000 + i);
                if acknowledged(port, "/feedback", &body).is_none() {
                    break;
                }
                labelled.push(id);
            }
        }
        (ids, labelled)
    });
    std::thread::sleep(Duration::from_millis(300));
    s.child.kill().unwrap(); // SIGKILL
    let _ = s.child.wait();
    let (ids, labelled) = acked.join().unwrap();
    assert!(
        !ids.is_empty(),
        "no prediction was acknowledged before the kill"
    );
    assert!(
        !labelled.is_empty(),
        "no feedback was acknowledged before the kill"
    );
    let log = ws.read("feedback/labels.jsonl");
    for id in &labelled {
        assert!(
            log.contains(&format!(r#""prediction_id":"{id}""#)),
            "acknowledged feedback for {id} was lost"
        );
    }
    let db = rusqlite::Connection::open(ws.path().join(".mlcycle/serve.db")).unwrap();
    for id in &ids {
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM predictions WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "acknowledged prediction {id} was lost");
    }
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let ws = trained();
    let mut s = start(&ws, &[]);
    assert_eq!(
        post(s.port, "/predict", r#"{"instances": [{"area": 100}]}"#).0,
        200
    );
    let pid = s.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let t = Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serving_without_a_champion_says_what_to_do() {
    let ws = Ws::new(PIPELINE);
    let r = ws.run(&["serve", "--port", "0"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("there is no champion model"),
        "{}",
        r.stderr
    );
}

/// One HTTP/1.1 request; returns (status, head (status line and
/// headers, lower-cased), body).
fn http_full(
    port: u16,
    method: &str,
    path: &str,
    ctype: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// What MLflow's clients, load balancers and health checks send works
/// unchanged: `/ping`, `/version`, bare values on a one-feature model, one
/// row as a mapping, CSV bodies, extra columns (ignored and named in a
/// header), and MLflow's error keys; two format keys are a 400 as in
/// MLflow (before: 200 with one of them silently dropped).
#[test]
fn mlflow_clients_work_unchanged() {
    let ws = trained();
    let s = start(&ws, &[]);
    assert_eq!(http(s.port, "GET", "/ping", "", "").0, 200);
    let (code, body) = http(s.port, "GET", "/version", "", "");
    assert_eq!(code, 200);
    assert!(body.starts_with("0."), "{body}");
    let (_, reference) = post(
        s.port,
        "/invocations",
        r#"{"instances": [{"area": 60}, {"area": 120}]}"#,
    );
    let want = json(&reference)["predictions"].clone();
    for (ctype, req) in [
        ("application/json", r#"{"instances": [60, 120]}"#),
        ("application/json", r#"{"inputs": [60, 120]}"#),
        ("application/json", r#"{"instances": [[60], [120]]}"#),
        ("text/csv", "area\n60\n120\n"),
        ("text/csv; charset=utf-8", "area\r\n60\r\n120\r\n"),
    ] {
        let (code, body) = http(s.port, "POST", "/invocations", ctype, req);
        assert_eq!(code, 200, "{req}: {body}");
        assert_eq!(json(&body)["predictions"], want, "{req}");
    }
    let (code, body) = post(s.port, "/invocations", r#"{"inputs": {"area": 120}}"#);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["predictions"][0], want[1]);
    // Two format keys: MLflow answers 400, and so do we.
    let (code, body) = post(
        s.port,
        "/invocations",
        r#"{"dataframe_records": [{"area": 60}], "instances": [{"area": 60}]}"#,
    );
    assert_eq!(code, 400, "{body}");
    let v = json(&body);
    assert_eq!(v["error_code"], "BAD_REQUEST", "{body}");
    assert!(
        v["message"].as_str().unwrap().contains("exactly one"),
        "{body}"
    );
    // An `id` column beside the features is ignored, and named.
    let (code, head, body) = http_full(
        s.port,
        "POST",
        "/invocations",
        "application/json",
        r#"{"dataframe_records": [{"area": 60, "id": 7}]}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-mlcycle-ignored-columns: id"), "{head}");
    // A prediction that is not a finite number is an error, not `null`.
    let (code, body) = post(s.port, "/predict", r#"{"instances": [{"area": 1e308}]}"#);
    assert_eq!(code, 422, "{body}");
    assert_eq!(json(&body)["error_code"], "INVALID_PARAMETER_VALUE");
    drop(s);
    // `--strict-columns` keeps the old strictness.
    let s = start(&ws, &["--strict-columns"]);
    let (code, body) = post(
        s.port,
        "/invocations",
        r#"{"dataframe_records": [{"area": 60, "id": 7}]}"#,
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("unknown feature(s): id"), "{body}");
}

/// A label that is not what the model predicts is refused before it is
/// acknowledged (each of these got 200, and the next retrain failed).
#[test]
fn feedback_labels_are_checked_against_the_model() {
    let ws = trained();
    let s = start(&ws, &[]);
    let (_, body) = post(s.port, "/predict", r#"{"instances": [{"area": 100}]}"#);
    let id = json(&body)["predictions"][0]["prediction_id"].clone();
    for bad in [r#""not-a-price""#, "true", "{}", "[]", r#""""#] {
        let fb = format!(r#"{{"prediction_id": {id}, "label": {bad}}}"#);
        let (code, body) = post(s.port, "/feedback", &fb);
        assert_eq!(code, 422, "{bad}: {body}");
        assert!(body.contains("must be a finite number"), "{bad}: {body}");
    }
    let fb = format!(r#"{{"prediction_id": {id}, "label": 330000}}"#);
    assert_eq!(post(s.port, "/feedback", &fb).0, 200);
    assert_eq!(ws.read("feedback/labels.jsonl").lines().count(), 1);
}

/// `dataset.feedback` keeps the latest label of a prediction labelled
/// twice, and skips (and reports) bad lines instead of failing the retrain.
#[test]
fn the_feedback_stage_survives_bad_lines_and_keeps_the_latest_label() {
    let ws = Ws::new("stages:\n  fb:\n    uses: dataset.feedback\n    with: {target: price}\n");
    ws.write(
        "feedback/labels.jsonl",
        concat!(
            "{\"row\":{\"area\":100},\"label\":300000,\"prediction_id\":\"a\"}\n",
            "not json\n",
            "{\"row\":{\"area\":120},\"label\":\"not-a-price\",\"prediction_id\":\"b\"}\n",
            "{\"row\":{\"area\":100},\"label\":310000,\"prediction_id\":\"a\"}\n",
            "{\"row\":{\"area\":80},\"label\":250000}\n",
        ),
    );
    let r = ws.run(&["run", "-v"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("2 feedback row(s)"), "{out}");
    assert!(out.contains("skipped 2 bad feedback record(s)"), "{out}");
    assert!(out.contains("line 2: not a JSON record"), "{out}");
    assert!(
        out.contains("line 3: \"not-a-price\" for numeric column `price`"),
        "{out}"
    );
}

/// Sends `head` (and no more), then reads the answer: (seconds, answer).
fn send_partial(port: u16, head: &str) -> (f64, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

/// No client can stall the server: a declared body over `--max-body` is
/// refused at once (it waited for bytes that never came, over 75 s), a
/// body that stalls gets 408 after `--body-timeout`, connections over
/// `--max-connections` get 503, and the feedback quota holds under
/// concurrent posts (all 40 were accepted with a quota of 5).
#[test]
fn no_client_can_stall_the_server() {
    let ws = trained();
    let s = start(
        &ws,
        &[
            "--body-timeout",
            "1",
            "--feedback-quota",
            "5",
            "--max-connections",
            "64",
        ],
    );
    let (secs, out) = send_partial(
        s.port,
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\nExpect: 100-continue\r\n\r\n{\"ins",
    );
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert!(!out.contains("100 Continue"), "{out}");
    assert!(secs < 5.0, "took {secs} s");
    let (secs, out) = send_partial(
        s.port,
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ins",
    );
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!((0.9..10.0).contains(&secs), "took {secs} s");
    let port = s.port;
    let codes: Vec<u16> = (0..40)
        .map(|_| {
            std::thread::spawn(move || {
                post(
                    port,
                    "/feedback",
                    r#"{"row": {"area": 100}, "label": 300000}"#,
                )
                .0
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 5, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 429).count(), 35, "{codes:?}");
    assert_eq!(ws.read("feedback/labels.jsonl").lines().count(), 5);
    drop(s);

    let s = start(&ws, &["--max-connections", "2"]);
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Every refused client reads its 503 and the reason: the server reads
    // what was sent before it closes, so no reset throws the answer away
    // (a reset reached CI as "connection reset by peer").
    for _ in 0..50 {
        let (code, body) = http(s.port, "GET", "/ping", "", "");
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("--max-connections"), "{body}");
    }
    drop(idle);
    // The slots free as the server notices the closes: a client that got
    // 503 with `Retry-After` tries again, and is served within a few tries.
    let t = Instant::now();
    loop {
        let (code, body) = http(s.port, "GET", "/ping", "", "");
        if code == 200 {
            break;
        }
        assert_eq!(code, 503, "{body}");
        assert!(t.elapsed() < Duration::from_secs(10), "never freed: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Out of file descriptors, the accept loop backs off and logs once per
/// interval (it spun at half a core, writing ~80 MB of warnings in 5 s),
/// and serves again once connections close.
#[test]
fn running_out_of_file_descriptors_does_not_spin() {
    let ws = trained();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {} serve --port 0",
            common::bin().display()
        ))
        .current_dir(ws.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let port: u16 = loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "the server exited");
        if let Some(rest) = line.trim().strip_prefix("listening on http://") {
            break rest.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    let log = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        rest
    });
    let conns: Vec<TcpStream> = (0..120)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    drop(conns);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http(port, "GET", "/ping", "", "").0, 200);
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join().unwrap();
    let warnings = log.matches("Cannot accept connections").count();
    assert!((1..=2).contains(&warnings), "{warnings} warnings:\n{log}");
}

/// What the review found: feedback that would poison the retrain is
/// refused (a row the model gives no finite prediction for, a label whose
/// square overflows), a torn last line of the feedback log does not swallow
/// the next record, and ignored column names always reach the header,
/// escaped.
#[test]
fn feedback_cannot_poison_the_log_and_ignored_names_are_escaped() {
    let ws = trained();
    let s = start(&ws, &[]);
    for bad in [
        r#"{"row": {"area": 1e308}, "label": 420000}"#,
        r#"{"row": {"area": 120}, "label": 1e308}"#,
    ] {
        let (code, body) = post(s.port, "/feedback", bad);
        assert_eq!(code, 422, "{bad}: {body}");
    }
    let (code, head, body) = http_full(
        s.port,
        "POST",
        "/invocations",
        "application/json",
        r#"{"instances": [{"area": 60, "id": 1, "a\nb": 1, "x,y": 2, "": 3}]}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        head.contains(r#"x-mlcycle-ignored-columns: "",a%0ab,id,x%2cy"#),
        "{head}"
    );
    drop(s);
    // A torn last line, then a restart: the next record stands on its own.
    let log = ws.path().join("feedback/labels.jsonl");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"{\"row\":{\"ar").unwrap();
    drop(f);
    let s = start(&ws, &[]);
    let (code, _) = post(
        s.port,
        "/feedback",
        r#"{"row": {"area": 100}, "label": 300000}"#,
    );
    assert_eq!(code, 200);
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("{\"row\":{\"area\":100}"), "{text}");
}

/// A client stalled in the middle of its body does not hold SIGTERM for
/// the whole drain time: it is answered 503 and the server exits at once.
#[test]
fn sigterm_does_not_wait_for_a_stalled_body() {
    let ws = trained();
    let mut s = start(&ws, &[]);
    let mut stalled = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stalled
        .write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ins")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = s.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let t = Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a stalled body held the shutdown"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stalled
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut out = String::new();
    let _ = stalled.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
}

/// Requests MLflow refuses are refused here too, with a JSON body: no
/// format key (400), a column named twice (it silently took the last
/// value), unknown routes (404) and methods (405).
#[test]
fn malformed_mlflow_requests_are_refused_with_a_reason() {
    let ws = trained();
    let s = start(&ws, &[]);
    let (code, body) = post(s.port, "/invocations", r#"{"foo": 1}"#);
    assert_eq!(code, 400, "{body}");
    assert_eq!(json(&body)["error_code"], "BAD_REQUEST");
    let (code, body) = post(
        s.port,
        "/invocations",
        r#"{"dataframe_split": {"columns": ["area", "area"], "data": [[60, 70]]}}"#,
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("`area` twice"), "{body}");
    let (code, body) = http(
        s.port,
        "POST",
        "/invocations",
        "text/csv",
        "area,area\n60,70\n",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("`area` twice"), "{body}");
    let (code, body) = http(s.port, "GET", "/nope", "", "");
    assert_eq!(code, 404, "{body}");
    assert_eq!(json(&body)["error_code"], "RESOURCE_DOES_NOT_EXIST");
    let (code, body) = http(s.port, "GET", "/invocations", "", "");
    assert_eq!(code, 405, "{body}");
    assert_eq!(json(&body)["error"], "method_not_allowed");
}

/// Under load, a client that sends an oversized body in one go (no
/// `Expect: 100-continue`) still reads the 413, not a reset.
#[test]
fn oversized_bodies_under_load_get_their_413() {
    let ws = trained();
    let s = start(&ws, &["--max-body", "100000"]);
    let port = s.port;
    let answers: Vec<String> = (0..24)
        .map(|_| {
            std::thread::spawn(move || {
                let body = vec![b'x'; 600_000];
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let head = format!(
                    "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                c.write_all(head.as_bytes()).unwrap();
                let _ = c.write_all(&body);
                let mut out = Vec::new();
                let _ = c.read_to_end(&mut out);
                String::from_utf8_lossy(&out[..out.len().min(12)]).into_owned()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(answers.iter().all(|a| a == "HTTP/1.1 413"), "{answers:?}");
}

/// A category the model's one-hot encoder never saw is scored (as all
/// zeros), named with its row count in `X-Mlcycle-Unknown-Categories`,
/// and counted in `/metrics`; `1` and `1.0` are the same category.
#[test]
fn unknown_categories_are_named_in_a_header_and_counted() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: ins.csv, target: charges, types: {sex: categorical}}}
  onehot: {uses: features.one_hot, inputs: {data: data.data}}
  ols: {uses: train.linear_regression, inputs: {train: onehot.data}}
  bundle: {uses: deploy.bundle, inputs: {model: ols.model}}
  promote: {uses: deploy.promote, inputs: {bundle: bundle.bundle, test: onehot.data}}
"#,
    );
    let mut csv = String::from("age,sex,charges\n");
    for i in 0..40 {
        let (age, sex) = (20 + i, i % 2);
        csv.push_str(&format!("{age},{sex}.0,{}\n", 250 * age + 1000 * sex));
    }
    ws.write("ins.csv", &csv);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = start(&ws, &[]);
    let (code, head, body) = http_full(
        s.port,
        "POST",
        "/predict",
        "application/json",
        r#"{"instances": [{"age": 30, "sex": "1"}, {"age": 30, "sex": "2"}, {"age": 31, "sex": "2"}]}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        head.contains("x-mlcycle-unknown-categories: sex=2:2"),
        "{head}"
    );
    let (code, head, _) = http_full(
        s.port,
        "POST",
        "/predict",
        "application/json",
        r#"{"instances": [{"age": 30, "sex": "1.0"}]}"#,
    );
    assert_eq!(code, 200);
    assert!(!head.contains("unknown-categories"), "{head}");
    let (_, metrics) = http(s.port, "GET", "/metrics", "", "");
    assert!(
        metrics.contains("mlcycle_unknown_categories_total 2"),
        "{metrics}"
    );
    // An empty string is missing, as an empty CSV cell is (it was the
    // unseen category ``); training had none, so it is unseen as
    // `(missing)`, alike from JSON and CSV.
    for (ty, body) in [
        (
            "application/json",
            r#"{"instances": [{"age": 30, "sex": ""}]}"#,
        ),
        (
            "application/json",
            r#"{"instances": [{"age": 30, "sex": null}]}"#,
        ),
        ("text/csv", "age,sex\n30,\n"),
    ] {
        let (code, head, body) = http_full(s.port, "POST", "/invocations", ty, body);
        assert_eq!(code, 200, "{body}");
        assert!(
            head.contains("x-mlcycle-unknown-categories: sex=(missing):1"),
            "{ty}: {head}"
        );
    }
    // A list or an object is no category.
    let (code, body) = post(
        s.port,
        "/predict",
        r#"{"instances": [{"age": 30, "sex": "1"}, {"age": 30, "sex": ["a"]}]}"#,
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("row 2: `sex` must be a category"), "{body}");
}
