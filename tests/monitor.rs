//! Drift between training rows and served rows: `dataset.served`,
//! `monitor.drift` (PSI, KS, the `fail_above` gate), the served-rows log
//! and the drift gauges of `mlcycle serve`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use common::Ws;
use serde_json::Value;

/// 400 houses: `area` uniform over 40–240 m², `city` one in four north.
fn houses() -> String {
    let mut s = String::from("area,city,price\n");
    for i in 0..400 {
        let area = 40.0 + f64::from(i) * 0.5;
        let city = if i % 4 == 0 { "north" } else { "south" };
        s.push_str(&format!("{area},{city},{}\n", 50_000.0 + 3_000.0 * area));
    }
    s
}

/// `n` served rows, `area` from `lo` up in steps of `step`.
fn served(n: usize, lo: f64, step: f64, city: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"p{i}\",\"model_version\":\"v1\",\"inputs\":{{\"area\":{},\"city\":\"{city}\"}}}}\n",
                lo + step * i as f64
            )
        })
        .collect()
}

const PIPELINE: &str = r#"name: drift
stages:
  data:
    uses: dataset.csv
    with: {path: data/houses.csv, target: price}
  split:
    uses: preprocess.split
    inputs: {data: data.data}
    with: {test: 0.25, seed: 1}
  served:
    uses: dataset.served
  drift:
    uses: monitor.drift
    inputs: {reference: split.train, current: served.data}
"#;

fn ws() -> Ws {
    let ws = Ws::new(PIPELINE);
    ws.write("data/houses.csv", &houses());
    ws.write("feedback/served.jsonl", "");
    ws
}

fn drift(ws: &Ws) -> Value {
    serde_json::from_str(&ws.read("artifacts/drift/drift.json")).unwrap()
}

#[test]
fn no_traffic_is_no_drift_and_traffic_like_training_is_stable() {
    let ws = ws();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let d = drift(&ws);
    assert_eq!(d["current_rows"], 0);
    assert_eq!(d["max_psi"], Value::Null);
    // Rows spread like the training rows: every PSI small, KS not significant.
    ws.write("feedback/served.jsonl", &served(200, 40.0, 1.0, "south"));
    let mut lines = ws.read("feedback/served.jsonl");
    lines.push_str(&served(67, 41.0, 3.0, "north"));
    ws.write("feedback/served.jsonl", &lines);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("267 served row(s) × 2 column(s)"),
        "{}",
        r.stderr
    );
    let d = drift(&ws);
    assert_eq!(d["current_rows"], 267);
    assert!(d["columns"]["area"]["psi"].as_f64().unwrap() < 0.1, "{d}");
    assert!(
        d["columns"]["area"]["ks_pvalue"].as_f64().unwrap() > 0.05,
        "{d}"
    );
    assert!(d["columns"]["city"]["psi"].as_f64().unwrap() < 0.1, "{d}");
    assert_eq!(d["shifted"], serde_json::json!([]));
}

#[test]
fn shifted_traffic_is_named_reruns_when_the_log_grows_and_can_stop_the_run() {
    let ws = ws();
    // Bigger houses, all in the north.
    ws.write("feedback/served.jsonl", &served(300, 200.0, 0.5, "north"));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let d = drift(&ws);
    assert!(d["columns"]["area"]["psi"].as_f64().unwrap() > 0.25, "{d}");
    assert!(
        d["columns"]["area"]["ks_statistic"].as_f64().unwrap() > 0.5,
        "{d}"
    );
    assert!(
        d["columns"]["area"]["ks_pvalue"].as_f64().unwrap() < 1e-6,
        "{d}"
    );
    let shifted: Vec<&str> = d["shifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        shifted.len() == 2 && shifted.contains(&"area") && shifted.contains(&"city"),
        "{d}"
    );
    assert!(ws.exists("artifacts/drift/plots/psi.svg"));
    assert!(ws.exists("artifacts/drift/plots/shares_area.png"));
    let report = ws.read("artifacts/drift/drift.md");
    assert!(report.contains("| area | numeric |"), "{report}");

    // Nothing new: nothing reruns. More traffic: the log's stages rerun.
    let r = ws.run(&["run"]);
    assert!(r.stdout.contains("4 fresh"), "{}", r.stdout);
    let mut log = ws.read("feedback/served.jsonl");
    log.push_str(&served(10, 60.0, 1.0, "south"));
    ws.write("feedback/served.jsonl", &log);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("served ")
            && l.contains(" ran ")
            && l.contains("feedback/served.jsonl")),
        "{}",
        r.stdout
    );
    assert_eq!(drift(&ws)["current_rows"], 310);

    // The gate: above `fail_above`, the stage fails and names the columns.
    ws.write(
        "mlcycle.yaml",
        &format!("{PIPELINE}    with: {{fail_above: 0.25}}\n"),
    );
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("drift above `fail_above: 0.25` over 310 current rows: `area` PSI"),
        "{}",
        r.stderr
    );

    // `last` keeps a window of recent rows; the 10 small houses alone are
    // like the training rows.
    ws.write(
        "mlcycle.yaml",
        &PIPELINE.replace(
            "    uses: dataset.served\n",
            "    uses: dataset.served\n    with: {last: 10}\n",
        ),
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(drift(&ws)["current_rows"], 10);
}

#[test]
fn bad_inputs_are_refused_with_the_reason() {
    let ws = ws();
    ws.write("feedback/served.jsonl", &served(50, 40.0, 1.0, "south"));
    // A torn line and a foreign line are skipped, not fatal.
    let mut log = ws.read("feedback/served.jsonl");
    log.push_str("{\"id\": \"x\"}\n{\"id\":\"p9\",\"inputs\":{\"are");
    ws.write("feedback/served.jsonl", &log);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("2 unreadable line(s) skipped"),
        "{}",
        r.stderr
    );
    for (with, want) in [
        ("{bins: 1}", "must be between 2 and 100"),
        ("{fail_above: -1}", "must be a PSI"),
        ("{columns: [aera]}", "did you mean `area`?"),
    ] {
        ws.write("mlcycle.yaml", &format!("{PIPELINE}    with: {with}\n"));
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "{with}");
        assert!(r.stderr.contains(want), "{with}: {}", r.stderr);
    }
    // A scaled reference against raw served rows is not comparable.
    ws.write(
        "mlcycle.yaml",
        &PIPELINE
            .replace(
                "  served:\n",
                "  scale:\n    uses: preprocess.scale\n    inputs: {data: split.train}\n  served:\n",
            )
            .replace("reference: split.train", "reference: scale.data"),
    );
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("preprocessed differently"),
        "{}",
        r.stderr
    );
}

#[test]
fn serve_logs_served_rows_and_reports_drift_on_metrics() {
    let ws = Ws::new(&format!(
        "{PIPELINE}  ols:\n    uses: train.linear_regression\n    inputs: {{train: split.train}}\n  bundle:\n    uses: deploy.bundle\n    inputs: {{model: ols.model, reference: split.train}}\n"
    ));
    // Area only: a linear model takes numbers.
    let area_only: String = houses()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{}\n", f[0], f[2])
        })
        .collect();
    ws.write("data/houses.csv", &area_only);
    ws.write("feedback/served.jsonl", "");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(ws.exists("artifacts/bundle/bundle/reference.json"));
    let mut child = ws
        .cmd(&[
            "serve",
            "--bundle",
            "artifacts/bundle/bundle",
            "--port",
            "0",
            "--drift-window",
            "100",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = common::listening_port(&mut child);
    let post = |body: &str| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            c,
            "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    };
    // 150 big houses: the window keeps the last 100.
    for i in 0..150 {
        post(&format!(
            r#"{{"instances": [{{"area": {}}}]}}"#,
            230.0 + f64::from(i) * 0.1
        ));
    }
    // The served-rows log is written out about once a second.
    let t = std::time::Instant::now();
    while ws.read("feedback/served.jsonl").lines().count() < 150 {
        assert!(
            t.elapsed().as_secs() < 20,
            "the served rows never reached the log"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut metrics = String::new();
    c.read_to_string(&mut metrics).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        metrics.contains("mlcycle_drift_window_rows 100"),
        "{metrics}"
    );
    let psi: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mlcycle_feature_psi{feature=\"area\"} "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(psi > 0.25, "{metrics}");
    let ks: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mlcycle_feature_ks_statistic{feature=\"area\"} "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(ks > 0.9, "{metrics}");
    // Every served row is in the log `dataset.served` reads, and the
    // pipeline's drift stage sees them.
    assert_eq!(ws.read("feedback/served.jsonl").lines().count(), 150);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = drift(&ws);
    assert_eq!(d["current_rows"], 150);
    assert!(d["columns"]["area"]["psi"].as_f64().unwrap() > 0.25, "{d}");
}

#[test]
fn one_row_is_too_few_to_stop_the_run_and_versions_may_be_numbers() {
    let ws = ws();
    ws.write(
        "feedback/served.jsonl",
        "{\"id\":\"a\",\"model_version\":\"2\",\"inputs\":{\"area\":900,\"city\":\"north\"}}\n",
    );
    ws.write(
        "mlcycle.yaml",
        &PIPELINE
            .replace(
                "    uses: dataset.served\n",
                "    uses: dataset.served\n    with: {model_version: 2}\n",
            )
            .replace(
                "current: served.data}\n",
                "current: served.data}\n    with: {fail_above: 0.25}\n",
            ),
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("too few to judge"), "{}", r.stderr);
    let d = drift(&ws);
    assert_eq!(d["too_few_rows"], true);
    assert_eq!(d["current_rows"], 1);
    // The figures are still there: 900 m² is above every training house.
    assert!(d["columns"]["area"]["psi"].as_f64().unwrap() > 0.25, "{d}");
}
