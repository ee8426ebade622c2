//! Tables written by pandas, polars and pyarrow with their defaults feed
//! built-in stages: LZ4/ZSTD Feather, IPC streams, Parquet and CSV, with
//! nullable integers, categoricals, booleans, dates and timestamps, and the
//! target named by the consuming stage.
//!
//! Needs a Python with pandas, polars and pyarrow, named by MLCYCLE_PYTHON
//! (`.ci/run` makes one and sets MLCYCLE_REQUIRE_PYTHON=1, so in CI its
//! absence fails); elsewhere the test says it is skipped.

mod common;

use std::process::Command;

use common::Ws;

const WRITE: &str = r#"
import datetime, sys
import numpy as np, pandas as pd, polars as pl, pyarrow as pa, pyarrow.feather as feather
n = 20
df = pd.DataFrame({
    "area": [50.0 + 7.5 * i for i in range(n)],
    "rooms": pd.array([None if i == 3 else i % 5 + 1 for i in range(n)], dtype="Int64"),
    "small": np.arange(n, dtype="uint8"),
    "city": pd.Categorical(["north", "south"] * (n // 2)),
    "garden": [i % 2 == 0 for i in range(n)],
    "listed": pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC"),
    "sold": [datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(n)],
    "price": [1000.0 * i for i in range(n)],
})
df.to_feather("pandas.feather")                    # LZ4, pandas' default
feather.write_feather(pa.Table.from_pandas(df), "pyarrow.feather", compression="zstd")
pl.from_pandas(df).write_ipc("polars.arrow", compression="zstd")
pl.from_pandas(df).write_ipc_stream("polars.arrows")
df.to_parquet("pandas.parquet")                     # snappy
pl.from_pandas(df).write_parquet("polars.parquet")  # zstd
df.to_csv("pandas.csv", index=False)
print(pa.ipc.open_file("pandas.feather").schema.metadata is None or b"mlcycle.target" not in pa.ipc.open_file("pandas.feather").schema.metadata)
"#;

const CHECK: &str = r#"
import json, sys
import pyarrow as pa, pyarrow.ipc as ipc
out = {}
for name in sys.argv[1:]:
    parts = [ipc.open_file(f"artifacts/split@{name}/{p}.arrow").read_all() for p in ("train", "test")]
    t = pa.concat_tables(parts).to_pandas().sort_values("price")
    meta = ipc.open_file(f"artifacts/split@{name}/train.arrow").schema.metadata
    out[name] = {
        "target": meta[b"mlcycle.target"].decode(),
        "columns": list(t.columns),
        "listed": t["listed"].tolist()[:2],
        "sold": t["sold"].tolist()[:2],
        "rooms_nan": int(t["rooms"].isna().sum()),
        "garden": sorted(set(t["garden"].dropna())),
        "city": sorted(set(t["city"].dropna())),
        "rows": len(t),
    }
print(json.dumps(out))
"#;

const FILES: [&str; 6] = [
    "pandas.feather",
    "pyarrow.feather",
    "polars.arrow",
    "polars.arrows",
    "pandas.parquet",
    "polars.parquet",
];

#[test]
fn tables_from_pandas_polars_and_pyarrow_feed_built_in_stages() {
    let Some(python) = std::env::var_os("MLCYCLE_PYTHON") else {
        if std::env::var("MLCYCLE_REQUIRE_PYTHON").as_deref() == Ok("1") {
            panic!(
                "MLCYCLE_PYTHON is not set: .ci/run makes a venv with pandas, polars and pyarrow"
            );
        }
        eprintln!("skipped: set MLCYCLE_PYTHON to a python with pandas, polars and pyarrow");
        return;
    };
    let items: Vec<&str> = FILES.iter().copied().chain(["pandas.csv"]).collect();
    let ws = Ws::new(&format!(
        r#"name: py
stages:
  split:
    foreach: [{list}]
    uses: preprocess.split
    inputs: {{data: "${{item}}"}}
    with: {{target: price, test: 0.25, seed: 3}}
"#,
        list = items.join(", ")
    ));
    ws.write("write.py", WRITE);
    ws.write("check.py", CHECK);
    let py = |script: &str, args: &[&str]| {
        let out = Command::new(&python)
            .arg(script)
            .args(args)
            .current_dir(ws.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        py("write.py", &[]).trim(),
        "True",
        "pandas writes no target"
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let got: serde_json::Value = serde_json::from_str(&py("check.py", &FILES)).unwrap();
    for f in FILES {
        let g = &got[f];
        assert_eq!(g["target"], "price", "{f}: {g}");
        assert_eq!(g["rows"], 20, "{f}: {g}");
        assert_eq!(
            g["columns"],
            serde_json::json!([
                "area", "rooms", "small", "city", "garden", "listed", "sold", "price"
            ]),
            "{f}: {g}"
        );
        // 2024-01-01T00:00:00Z, a day later; and days since 1970-01-01.
        assert_eq!(
            g["listed"],
            serde_json::json!([1_704_067_200.0, 1_704_153_600.0]),
            "{f}: {g}"
        );
        assert_eq!(g["sold"], serde_json::json!([19723.0, 19724.0]), "{f}: {g}");
        assert_eq!(
            g["rooms_nan"], 1,
            "a nullable integer's NA is missing: {f}: {g}"
        );
        assert_eq!(
            g["garden"],
            serde_json::json!(["false", "true"]),
            "{f}: {g}"
        );
        assert_eq!(g["city"], serde_json::json!(["north", "south"]), "{f}: {g}");
    }
    // The CSV reads too (its dates stay text, as in any CSV).
    let r = ws.run(&["show", "split@pandas.csv.train"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("target `price`"), "{}", r.stdout);

    // A target the table does not have is named, with the nearest column.
    ws.write(
        "mlcycle.yaml",
        &ws.read("mlcycle.yaml")
            .replace("target: price", "target: Price"),
    );
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("`target: Price` names no column"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("did you mean `price`?"), "{}", r.stderr);
}
