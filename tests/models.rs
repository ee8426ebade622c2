//! The model registry: `deploy.promote`, `mlcycle models`, `mlcycle history`.

mod common;

use common::Ws;

const PIPELINE: &str = common::PROMOTE_PIPELINE;

fn decision(ws: &Ws) -> serde_json::Value {
    serde_json::from_str(&ws.read("artifacts/promote/decision.json")).unwrap()
}

#[test]
fn promotion_is_gated_recorded_and_reversible() {
    let ws = Ws::new(PIPELINE);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("promoted version 1: the first champion"),
        "{}",
        r.stderr
    );
    // Noisier data: a worse model, kept out.
    let r = ws.run(&["run", "-p", "noise=80000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = decision(&ws);
    assert_eq!(d["promoted"], false, "{d}");
    assert_eq!(d["candidate_version"], 2);
    assert!(r.stderr.contains("kept version 1: new r2"), "{}", r.stderr);
    // Cleaner data: a better model, promoted.
    let r = ws.run(&["run", "-p", "noise=5000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(decision(&ws)["promoted"], true);
    assert_eq!(decision(&ws)["champion_after"], 3);

    let m = ws.run(&["models", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&m.stdout).unwrap();
    assert_eq!(v["champion"], 3);
    assert_eq!(v["versions"].as_array().unwrap().len(), 3);
    // The registered copy survives later runs that rewrite artifacts/.
    assert!(ws.exists(".mlcycle/models/2/model.json"));

    let r = ws.run(&["models", "rollback", "--reason", "complaints"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("version 1 is the champion again"),
        "{}",
        r.stdout
    );
    let r = ws.run(&["models", "promote", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["models", "promote", "9"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no model version 9"), "{}", r.stderr);
    let m = ws.run(&["models"]);
    let champion_line = m.stdout.lines().find(|l| l.ends_with("champion")).unwrap();
    assert!(champion_line.trim_start().starts_with('2'), "{}", m.stdout);
    let v: serde_json::Value = serde_json::from_str(&ws.run(&["models", "--json"]).stdout).unwrap();
    let actions: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["promote", "promote", "rollback", "promote"]);

    let h = ws.run(&["history", "--plot", "plots"]);
    assert_eq!(h.code, 0, "{}", h.stderr);
    let lines: Vec<&str> = h.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", h.stdout);
    assert!(lines[2].contains("kept"), "{}", h.stdout);
    assert!(lines[3].contains("promoted"), "{}", h.stdout);
    assert!(ws.exists("plots/history.png"));
}

#[test]
fn models_and_history_say_when_there_is_nothing() {
    let ws = Ws::new(PIPELINE);
    let r = ws.run(&["models"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("no model versions yet"), "{}", r.stdout);
    let r = ws.run(&["models", "rollback"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no champion to roll back"),
        "{}",
        r.stderr
    );
    let r = ws.run(&["history"]);
    assert!(
        r.stdout.contains("no promotion decisions yet"),
        "{}",
        r.stdout
    );
}

/// A champion that cannot score the test rows (missing values, which a
/// boosting candidate takes and a linear champion does not) is named as
/// such: the error blamed "the model … trained by stage `m`", which both
/// were.
#[test]
fn a_champion_that_cannot_score_the_test_rows_is_named() {
    let pipeline = |trainer: &str| {
        format!(
            "stages:\n  data: {{uses: dataset.csv, with: {{path: d.csv, target: y}}}}\n  m: {{uses: {trainer}, inputs: {{train: data.data}}}}\n  bundle: {{uses: deploy.bundle, inputs: {{model: m.model}}}}\n  promote: {{uses: deploy.promote, inputs: {{bundle: bundle.bundle, test: data.data}}}}\n"
        )
    };
    let ws = Ws::new(&pipeline("train.linear_regression"));
    let rows = |gap: bool| {
        let mut s = String::from("x,y\n");
        for i in 0..60 {
            if gap && i % 5 == 0 {
                s.push_str(&format!(",{}\n", 2 * i));
            } else {
                s.push_str(&format!("{i},{}\n", 2 * i));
            }
        }
        s
    };
    ws.write("d.csv", &rows(false));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    ws.write("mlcycle.yaml", &pipeline("train.gradient_boosting"));
    ws.write("d.csv", &rows(true));
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the champion, version 1 (not the candidate), cannot be compared on `test`"),
        "{}",
        r.stderr
    );
}
