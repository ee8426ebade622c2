//! Dataset stages and `mlcycle show`.

mod common;

use common::Ws;

#[test]
fn csv_to_table_and_show() {
    let ws = Ws::new(
        "stages:\n  houses:\n    uses: dataset.csv\n    with: {path: data/houses.csv, target: price}\n",
    );
    ws.write(
        "data/houses.csv",
        "area,city,price\n120,Oslo,300000\n80.5,Bergen,210000\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("houses | read 2 rows × 3 columns from data/houses.csv"),
        "{}",
        r.stderr
    );
    let s = ws.run(&["show", "houses.data"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    insta::assert_snapshot!(s.stdout, @r"
    2 rows × 3 columns, target `price`
      area                 numeric
      city                 categorical
      price                numeric

    area    city   price
     120    Oslo  300000
    80.5  Bergen  210000
    ");
    // Editing the CSV reruns the stage.
    ws.write("data/houses.csv", "area,city,price\n121,Oslo,300000\n");
    let r = ws.run(&["run"]);
    assert!(
        r.stdout.contains("file `data/houses.csv` changed"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_missing_target_column_is_named_with_a_suggestion() {
    let ws =
        Ws::new("stages:\n  d:\n    uses: dataset.csv\n    with: {path: d.csv, target: prise}\n");
    ws.write("d.csv", "area,price\n1,2\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("target column `prise` is not in d.csv"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("did you mean `price`?"), "{}", r.stderr);
}

/// A row with a field too many is named by one line number: the csv
/// crate's own text added a second, off by one ("line 4: CSV error:
/// record 2 (line: 3, …)").
#[test]
fn a_ragged_row_is_named_by_its_line_alone() {
    let ws = Ws::new("stages:\n  d: {uses: dataset.csv, with: {path: d.csv}}\n");
    ws.write("d.csv", "a,y\n1,2\n2,3\n3,4,5\n4,5\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("d.csv, line 4: 3 fields, the header has 2"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("record 2"), "{}", r.stderr);
    // CRLF line ends: every line number was one too low (the reader stops
    // between `\r` and `\n`), here and in files read in parallel pieces.
    ws.write("d.csv", "a,y\r\n1,2\r\n2,3\r\n3,4,5\r\n4,5\r\n");
    let r = ws.run(&["run"]);
    assert!(
        r.stderr
            .contains("d.csv, line 4: 3 fields, the header has 2"),
        "{}",
        r.stderr
    );
    let mut big = String::from("a,y\r\n");
    for i in 0..800_000 {
        big.push_str(&format!("{i},{}\r\n", i % 7));
    }
    big.push_str("1,2,3\r\n");
    ws.write("d.csv", &big);
    let r = ws.run(&["run"]);
    assert!(
        r.stderr
            .contains("d.csv, line 800002: 3 fields, the header has 2"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_non_numeric_value_in_a_numeric_column_names_line_and_column() {
    let ws = Ws::new(
        "stages:\n  d:\n    uses: dataset.csv\n    with: {path: d.csv, types: {price: numeric}}\n",
    );
    ws.write("d.csv", "area,price\n1,2\n3,four\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("column `price` is numeric, but `four` is not a number"),
        "{}",
        r.stderr
    );
}

#[test]
fn synthetic_data_is_byte_identical_for_the_same_seed() {
    let ws = Ws::new(
        "params: {seed: 1}\nstages:\n  houses:\n    uses: dataset.synthetic\n    with: {kind: house_prices, rows: 100, seed: \"${params.seed}\"}\n  count:\n    run: wc -c < ${inputs.data} > ${outputs.n}\n    deps: [houses.data]\n    outs: [n.txt]\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    let first = std::fs::read(ws.path().join("artifacts/houses/data.arrow")).unwrap();
    // A forced rerun writes the same bytes, so `count` stays fresh.
    let r = ws.run(&["run", "-v", "--force", "--downstream", "houses"]);
    assert_eq!(r.outcome("houses").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(r.outcome("count").as_deref(), Some("fresh"), "{}", r.stdout);
    assert_eq!(
        std::fs::read(ws.path().join("artifacts/houses/data.arrow")).unwrap(),
        first
    );
    // Another seed, other data.
    let r = ws.run(&["run", "-p", "seed=2"]);
    assert_eq!(r.outcome("count").as_deref(), Some("ran"), "{}", r.stdout);
}

#[test]
fn show_explains_what_it_cannot_show() {
    let ws = Ws::new("stages:\n  blobs:\n    uses: dataset.synthetic\n    with: {kind: blobs}\n");
    let r = ws.run(&["show", "blobs.data"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("has not been produced yet"),
        "{}",
        r.stderr
    );
    let r = ws.run(&["show", "blob.data"]);
    assert!(r.stderr.contains("did you mean `blobs`?"), "{}", r.stderr);
    let r = ws.run(&["show", "blobs.model"]);
    assert!(r.stderr.contains("has no output `model`"), "{}", r.stderr);
}

#[test]
fn split_writes_seeded_disjoint_tables() {
    let ws = Ws::new(
        "stages:\n  blobs:\n    uses: dataset.synthetic\n    with: {kind: blobs, rows: 60, classes: 3}\n  split:\n    uses: preprocess.split\n    inputs: {data: blobs.data}\n    with: {test: 0.2, validation: 0.1, stratify: true}\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("split | 60 rows: 42 train, 12 test, 6 validation"),
        "{}",
        r.stderr
    );
    let s = ws.run(&["show", "split.test", "-n", "0"]);
    assert!(
        s.stdout.starts_with("12 rows × 4 columns, target `class`"),
        "{}",
        s.stdout
    );
}

#[test]
fn stratifying_a_numeric_target_is_explained() {
    let ws = Ws::new(
        "stages:\n  h:\n    uses: dataset.synthetic\n    with: {kind: house_prices}\n  split:\n    uses: preprocess.split\n    inputs: {data: h.data}\n    with: {stratify: true}\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("`stratify` keeps each class's share, but the target `price` is continuous"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("stratify: false"), "{}", r.stderr);
}
