import datetime
import json
import math

import pytest

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
import pyarrow.ipc  # noqa: E402

import mlcycle  # noqa: E402

STEPS = [{"op": "scale", "method": "standard", "columns": ["x"], "offsets": [1.5], "scales": [2.0]}]


def raw(path):
    """The file as pyarrow reads it, without the helper."""
    with pa.ipc.open_file(str(path)) as f:
        return f.read_all()


def test_pandas_round_trip(tmp_path):
    df = pd.DataFrame(
        {
            "x": [1.5, None, 3.0],
            "n": [1, 2, 3],
            "flag": [True, False, True],
            "city": ["a", None, "c"],
            "kind": pd.Categorical(["u", "v", "u"]),
            "y": [0.0, 1.0, float("nan")],
        }
    )
    path = mlcycle.write_table(df, tmp_path / "t.arrow", target="y")
    assert path == tmp_path / "t.arrow"
    t = raw(path)
    assert [(f.name, str(f.type)) for f in t.schema] == [
        ("x", "double"), ("n", "double"), ("flag", "double"),
        ("city", "string"), ("kind", "string"), ("y", "double"),
    ]
    assert t.schema.metadata == {b"mlcycle.target": b"y"}
    assert t.column("x").to_pylist() == [1.5, None, 3.0]
    assert t.column("flag").to_pylist() == [1.0, 0.0, 1.0]
    assert t.column("city").to_pylist() == ["a", None, "c"]
    assert t.column("y").to_pylist() == [0.0, 1.0, None]  # NaN is a null, as mlcycle writes it

    back = mlcycle.read_table(path)
    assert isinstance(back, pd.DataFrame)
    assert back.attrs["mlcycle.target"] == "y" and back.attrs["target"] == "y"
    assert list(back.columns) == list(df.columns)
    assert str(back["n"].dtype) == "float64"
    assert back["n"].tolist() == [1.0, 2.0, 3.0]
    assert math.isnan(back["x"][1])
    assert back["kind"].tolist() == ["u", "v", "u"]
    assert mlcycle.table_target(path) == "y"
    assert mlcycle.table_transforms(path) == []


def test_pandas_keeps_target_from_attrs(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]})
    mlcycle.write_table(df, tmp_path / "a.arrow", target="label")
    back = mlcycle.read_table(tmp_path / "a.arrow")
    back["x2"] = back["x"] * 2
    mlcycle.write_table(back, tmp_path / "b.arrow")
    assert mlcycle.table_target(tmp_path / "b.arrow") == "label"
    # an explicit target wins; False writes none
    mlcycle.write_table(back, tmp_path / "c.arrow", target="x")
    assert mlcycle.table_target(tmp_path / "c.arrow") == "x"
    mlcycle.write_table(back, tmp_path / "d.arrow", target=False)
    assert mlcycle.table_target(tmp_path / "d.arrow") is None
    assert raw(tmp_path / "d.arrow").schema.metadata is None


def test_short_attrs_target(tmp_path):
    df = pd.DataFrame({"x": [1.0], "y": [2.0]})
    df.attrs["target"] = "y"
    mlcycle.write_table(df, tmp_path / "t.arrow")
    assert mlcycle.table_target(tmp_path / "t.arrow") == "y"
    df.attrs["mlcycle.target"] = "x"
    with pytest.raises(ValueError, match="target=NAME"):
        mlcycle.write_table(df, tmp_path / "t.arrow")


def test_target_must_be_a_column(tmp_path):
    df = pd.DataFrame({"price": [1.0], "area": [2.0]})
    with pytest.raises(ValueError) as e:
        mlcycle.write_table(df, tmp_path / "t.arrow", target="prce")
    msg = str(e.value)
    assert "target column `prce` is not in the table" in msg
    assert "Did you mean `price`?" in msg
    assert "`price`, `area`" in msg
    # a target carried in attrs that was dropped: say how to get out
    df.attrs["mlcycle.target"] = "gone"
    with pytest.raises(ValueError, match="target=False"):
        mlcycle.write_table(df, tmp_path / "t.arrow")
    assert not (tmp_path / "t.arrow").exists()


def test_transforms_are_kept_through_pandas(tmp_path):
    src = pa.table({"x": [0.1, 0.2], "y": [1.0, 2.0]}).replace_schema_metadata(
        {"mlcycle.target": "y", "mlcycle.transforms": json.dumps(STEPS)}
    )
    with pa.ipc.new_file(str(tmp_path / "in.arrow"), src.schema) as w:
        w.write_table(src)
    df = mlcycle.read_table(tmp_path / "in.arrow")
    assert json.loads(df.attrs["mlcycle.transforms"]) == STEPS
    df["z"] = df["x"] + 1
    mlcycle.write_table(df, tmp_path / "out.arrow")
    meta = raw(tmp_path / "out.arrow").schema.metadata
    assert meta[b"mlcycle.transforms"] == json.dumps(STEPS).encode()  # byte for byte
    assert meta[b"mlcycle.target"] == b"y"
    assert mlcycle.table_transforms(tmp_path / "out.arrow") == STEPS
    # dropped on request
    mlcycle.write_table(df, tmp_path / "none.arrow", transforms=[])
    assert b"mlcycle.transforms" not in raw(tmp_path / "none.arrow").schema.metadata
    # or given as a list
    mlcycle.write_table(df, tmp_path / "list.arrow", transforms=STEPS)
    assert mlcycle.table_transforms(tmp_path / "list.arrow") == STEPS
    with pytest.raises(ValueError, match="JSON list"):
        mlcycle.write_table(df, tmp_path / "bad.arrow", transforms='{"op": 1}')


def test_polars_round_trip(tmp_path):
    df = pl.DataFrame(
        {
            "x": [1, None, 3],
            "f": [0.5, float("nan"), None],
            "s": ["a", None, "c"],
            "cat": pl.Series(["u", "v", "u"], dtype=pl.Categorical),
            "enum": pl.Series(["lo", "hi", "lo"], dtype=pl.Enum(["lo", "hi"])),
            "b": [True, None, False],
            "u8": pl.Series([1, 2, 3], dtype=pl.UInt8),
            "y": [1.0, 2.0, 3.0],
        }
    )
    mlcycle.write_table(df, tmp_path / "p.arrow", target="y")
    t = raw(tmp_path / "p.arrow")
    assert {f.name: str(f.type) for f in t.schema} == {
        "x": "double", "f": "double", "s": "string", "cat": "string",
        "enum": "string", "b": "double", "u8": "double", "y": "double",
    }
    assert t.column("x").to_pylist() == [1.0, None, 3.0]
    assert t.column("f").to_pylist() == [0.5, None, None]
    assert t.column("b").to_pylist() == [1.0, None, 0.0]
    assert t.column("cat").to_pylist() == ["u", "v", "u"]
    assert t.schema.metadata == {b"mlcycle.target": b"y"}

    back = mlcycle.read_table(tmp_path / "p.arrow", library="polars")
    assert isinstance(back, pl.DataFrame)
    assert back.schema["s"] == pl.String and back.schema["x"] == pl.Float64
    assert back["s"].to_list() == ["a", None, "c"]
    assert back["x"].to_list() == [1.0, None, 3.0]
    # polars carries no metadata: pass it on by hand
    mlcycle.write_table(back, tmp_path / "q.arrow", target=mlcycle.table_target(tmp_path / "p.arrow"))
    assert mlcycle.table_target(tmp_path / "q.arrow") == "y"
    mlcycle.write_table(back, tmp_path / "r.arrow")
    assert mlcycle.table_target(tmp_path / "r.arrow") is None


def test_pyarrow_round_trip_keeps_metadata(tmp_path):
    table = pa.table(
        {
            "i": pa.array([1, 2, None], pa.int32()),
            "d": pa.array([1, 2, 3], pa.decimal128(5, 2)),
            "ls": pa.array(["a", "b", None], pa.large_string()),
            "dict": pa.array(["p", "q", "p"]).dictionary_encode(),
            "dnum": pa.array([1, 2, 1]).dictionary_encode(),
            "null": pa.nulls(3),
            "y": [1.0, 2.0, 3.0],
        }
    ).replace_schema_metadata({"mlcycle.target": "y", "mlcycle.transforms": "[]", "other": "x"})
    mlcycle.write_table(table, tmp_path / "t.arrow")
    t = raw(tmp_path / "t.arrow")
    assert [str(f.type) for f in t.schema] == ["double"] * 2 + ["string"] * 3 + ["double"] * 2
    assert t.column("d").to_pylist() == [1.0, 2.0, 3.0]
    assert t.column("dnum").to_pylist() == ["1", "2", "1"]
    assert t.column("null").to_pylist() == [None] * 3
    # the target is kept; an empty chain and foreign metadata are not written
    assert t.schema.metadata == {b"mlcycle.target": b"y"}
    back = mlcycle.read_table(tmp_path / "t.arrow", library="pyarrow")
    assert back.equals(t)
    assert back.schema.metadata == t.schema.metadata


def test_file_is_uncompressed_ipc_file(tmp_path):
    df = pd.DataFrame({"x": list(range(1000)), "s": ["abc"] * 1000})
    mlcycle.write_table(df, tmp_path / "t.arrow")
    data = (tmp_path / "t.arrow").read_bytes()
    assert data[:6] == b"ARROW1" and data[-6:] == b"ARROW1"  # the file format, not a stream
    with pa.ipc.open_file(str(tmp_path / "t.arrow")) as f:
        batch = f.get_batch(0)
    assert batch.num_rows == 1000
    # no compression: the 1000 int64 values are there as 8000 bytes of float64
    assert len(data) > 8000


def test_creates_folder_and_empty_tables(tmp_path):
    out = tmp_path / "out" / "parts" / "t.arrow"
    mlcycle.write_table(pd.DataFrame({"x": pd.Series([], dtype="float64"), "s": pd.Series([], dtype=object)}), out)
    t = raw(out)
    assert t.num_rows == 0 and [str(f.type) for f in t.schema] == ["double", "double"]
    mlcycle.write_table(pd.DataFrame(), tmp_path / "empty.arrow")
    assert raw(tmp_path / "empty.arrow").num_columns == 0


def test_pandas_index_is_not_written(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=[10, 20, 30]).iloc[[0, 2]]
    mlcycle.write_table(df, tmp_path / "t.arrow")
    assert raw(tmp_path / "t.arrow").column_names == ["x"]


@pytest.mark.parametrize(
    "frame, column, words",
    [
        (lambda: pd.DataFrame({"when": pd.to_datetime(["2024-01-01"])}), "when", ["dates or times", "total_seconds", "strftime"]),
        (lambda: pd.DataFrame({"d": [datetime.date(2024, 1, 1)]}), "d", ["dates or times"]),
        (lambda: pd.DataFrame({"dt": pd.to_timedelta([5], unit="s")}), "dt", ["durations", "total_seconds"]),
        (lambda: pd.DataFrame({"xs": [[1, 2], [3]]}), "xs", ["nested values", "one column per element"]),
        (lambda: pd.DataFrame({"rec": [{"a": 1}]}), "rec", ["nested values"]),
        (lambda: pd.DataFrame({"raw": [b"\x00\x01"]}), "raw", ["bytes", "decode"]),
        (lambda: pd.DataFrame({"mixed": ["a", 1]}), "mixed", ["cannot be converted", "astype(str)"]),
        (lambda: pl.DataFrame({"ts": [datetime.datetime(2024, 1, 1)]}), "ts", ["dates or times", "dt.epoch"]),
        (lambda: pl.DataFrame({"xs": [[1, 2], [3]]}), "xs", ["nested values"]),
        (lambda: pa.table({"t": pa.array([1], pa.time32("s"))}), "t", ["dates or times"]),
    ],
)
def test_unsupported_types_are_refused(tmp_path, frame, column, words):
    df = frame()
    with pytest.raises(mlcycle.TableTypeError) as e:
        mlcycle.write_table(df, tmp_path / "t.arrow")
    msg = str(e.value)
    assert f"column `{column}`" in msg
    assert e.value.column == column
    for w in words:
        assert w in msg
    assert isinstance(e.value, TypeError)
    assert not (tmp_path / "t.arrow").exists()


def test_bad_column_names(tmp_path):
    with pytest.raises(mlcycle.TableTypeError, match="astype"):
        mlcycle.write_table(pd.DataFrame({0: [1.0]}), tmp_path / "t.arrow")
    dup = pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])
    with pytest.raises(mlcycle.TableTypeError, match="appears twice"):
        mlcycle.write_table(dup, tmp_path / "t.arrow")


def test_not_a_frame(tmp_path):
    with pytest.raises(TypeError, match="pandas or polars DataFrame"):
        mlcycle.write_table({"x": [1]}, tmp_path / "t.arrow")
    with pytest.raises(TypeError, match="collect"):
        mlcycle.write_table(pl.DataFrame({"x": [1]}).lazy(), tmp_path / "t.arrow")


def test_read_errors(tmp_path):
    (tmp_path / "x.arrow").write_text("a,b\n1,2\n")  # text, named as IPC
    with pytest.raises(ValueError, match="not a table"):
        mlcycle.read_table(tmp_path / "x.arrow")
    with pytest.raises(FileNotFoundError):
        mlcycle.read_table(tmp_path / "missing.arrow")
    mlcycle.write_table(pd.DataFrame({"x": [1.0]}), tmp_path / "t.arrow")
    with pytest.raises(ValueError, match="library"):
        mlcycle.read_table(tmp_path / "t.arrow", library="numpy")  # type: ignore[call-overload]


def test_reads_compressed_files_from_other_writers(tmp_path):
    # pandas' to_feather compresses with lz4 by default; reading it works.
    df = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    df.to_feather(tmp_path / "f.arrow")
    assert mlcycle.read_table(tmp_path / "f.arrow")["s"].tolist() == ["a", "b"]


def test_pandas_nullable_and_arrow_dtypes(tmp_path):
    df = pd.DataFrame(
        {
            "i": pd.array([1, None, 3], dtype="Int64"),
            "b": pd.array([True, None, False], dtype="boolean"),
            "s": pd.array(["a", None, "c"], dtype="string"),
            "f": pd.array([1.5, None, 2.0], dtype="Float64"),
            "obj": [None, "x", float("nan")],
        }
    )
    mlcycle.write_table(df, tmp_path / "t.arrow")
    t = raw(tmp_path / "t.arrow")
    assert [str(f.type) for f in t.schema] == ["double", "double", "string", "double", "string"]
    assert t.to_pydict() == {
        "i": [1.0, None, 3.0],
        "b": [1.0, None, 0.0],
        "s": ["a", None, "c"],
        "f": [1.5, None, 2.0],
        "obj": [None, "x", None],
    }


def test_read_table_reads_what_built_in_stages_read(tmp_path):
    """Parquet, IPC streams and CSV read too, told by content, not by name."""
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    df.to_parquet(tmp_path / "t.data")  # a Parquet file under another name
    pl.from_pandas(df).write_ipc_stream(tmp_path / "t.arrows")
    df.to_csv(tmp_path / "t.csv", index=False)
    for name in ["t.data", "t.arrows", "t.csv"]:
        got = mlcycle.read_table(tmp_path / name)
        assert list(got.columns) == ["a", "b"], name
        assert got["a"].tolist() == [1.0, 2.0], name
    (tmp_path / "junk.bin").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a table"):
        mlcycle.read_table(tmp_path / "junk.bin")
