"""The ``table`` artifact: an Arrow IPC (Feather v2) file of Float64 and Utf8 columns.

pyarrow is imported only when a table is read or written, so that
``import mlcycle`` works without it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Literal, Optional, Tuple, Union, overload

from ._errors import TableTypeError, did_you_mean, listing


if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import polars
    import pyarrow

__all__ = [
    "TARGET_KEY",
    "TRANSFORMS_KEY",
    "read_table",
    "write_table",
    "table_target",
    "table_transforms",
]

TARGET_KEY = "mlcycle.target"
"""Schema metadata key (and pandas ``attrs`` key) naming the target column."""

TRANSFORMS_KEY = "mlcycle.transforms"
"""Schema metadata key (and pandas ``attrs`` key): the applied steps, as JSON."""

PathLike = Union[str, "os.PathLike[str]"]
Library = Literal["pandas", "polars", "pyarrow"]


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401
        import pyarrow.ipc  # noqa: F401
    except ImportError:
        raise ImportError(
            "mlcycle tables need pyarrow: pip install pyarrow "
            "(or 'mlcycle[pandas]' / 'mlcycle[polars]')"
        ) from None
    return pyarrow


# -- reading ---------------------------------------------------------------


def _read_arrow(path: PathLike) -> "pyarrow.Table":
    """Reads a table file as built-in stages do, told by its first bytes:
    an Arrow IPC file or stream, a Parquet file, or else a CSV (or TSV)
    file by its extension."""
    pa = _pyarrow()
    p = os.fspath(path)
    with open(p, "rb") as f:
        head = f.read(8)
    try:
        if head.startswith(b"ARROW1"):
            with pa.memory_map(p, "r") as source:
                return pa.ipc.open_file(source).read_all()
        if head.startswith(b"\xff\xff\xff\xff"):
            with pa.memory_map(p, "r") as source:
                return pa.ipc.open_stream(source).read_all()
        if head.startswith(b"PAR1"):
            import pyarrow.parquet as pq

            return pq.read_table(p)
        ext = os.path.splitext(p)[1].lower()
        if ext in (".csv", ".txt", ".tsv"):
            import pyarrow.csv as pcsv

            opts = pcsv.ParseOptions(delimiter="\t" if ext == ".tsv" else ",")
            return pcsv.read_csv(p, parse_options=opts)
    except pa.ArrowInvalid as e:
        raise ValueError(f"{p} is not a readable table: {e}") from None
    raise ValueError(
        f"{p} is not a table: neither Arrow IPC (Feather), Parquet, nor a `.csv` or `.tsv` file"
    )


def _metadata(table: "pyarrow.Table") -> Tuple[Optional[str], Optional[str]]:
    meta = table.schema.metadata or {}
    target = meta.get(TARGET_KEY.encode())
    transforms = meta.get(TRANSFORMS_KEY.encode())
    return (
        target.decode("utf-8") if target is not None else None,
        transforms.decode("utf-8") if transforms is not None else None,
    )


def _read_schema(path: PathLike) -> "pyarrow.Schema":
    pa = _pyarrow()
    try:
        with pa.memory_map(os.fspath(path), "r") as source:
            return pa.ipc.open_file(source).schema
    except pa.ArrowInvalid as e:
        raise ValueError(f"{os.fspath(path)} is not an Arrow IPC (Feather v2) file: {e}") from None


def table_target(path: PathLike) -> Optional[str]:
    """The target column's name recorded in a table file, or None.

    Reads only the schema (``mlcycle.target`` in its metadata).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not an Arrow IPC file.
        ImportError: pyarrow is not installed.
    """
    meta = _read_schema(path).metadata or {}
    value = meta.get(TARGET_KEY.encode())
    return value.decode("utf-8") if value is not None else None


def table_transforms(path: PathLike) -> List[Any]:
    """The fitted preprocessing steps recorded in a table file (a JSON list).

    ``[]`` when the table has none. Each step is a dict such as
    ``{"op": "scale", "method": "standard", "columns": [...], ...}``
    (docs/artifacts.md, "transform").

    Raises:
        FileNotFoundError, ValueError, ImportError: as :func:`table_target`.
    """
    meta = _read_schema(path).metadata or {}
    value = meta.get(TRANSFORMS_KEY.encode())
    return json.loads(value) if value is not None else []


@overload
def read_table(path: PathLike, *, library: Literal["pandas"] = ...) -> "pandas.DataFrame": ...
@overload
def read_table(path: PathLike, *, library: Literal["polars"]) -> "polars.DataFrame": ...
@overload
def read_table(path: PathLike, *, library: Literal["pyarrow"]) -> "pyarrow.Table": ...


def read_table(path: PathLike, *, library: str = "pandas") -> Any:
    """Read a table: an mlcycle ``table`` artifact (Arrow IPC / Feather v2),
    or any file built-in stages read (an IPC stream, Parquet, CSV or TSV),
    told by its first bytes as they do.

    Args:
        path: the file, e.g. ``mlcycle.input("data")``.
        library: ``"pandas"`` (default), ``"polars"`` or ``"pyarrow"``.

    Returns:
        - pandas: a ``DataFrame`` with numeric columns as ``float64`` (missing
          values NaN) and categorical ones as strings. ``df.attrs`` holds the
          target column's name under ``"mlcycle.target"`` and ``"target"``
          (None when the table has none) and, when the table carries fitted
          preprocessing steps, their JSON text under ``"mlcycle.transforms"``;
          :func:`write_table` writes both back.
        - polars: a ``DataFrame`` (``Float64`` / ``String``). polars frames
          carry no metadata: get the target with :func:`table_target` and the
          steps with :func:`table_transforms`, and pass them to
          :func:`write_table`.
        - pyarrow: the ``Table``, with its schema metadata.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a table file, or an unknown ``library``.
        ImportError: pyarrow (or the library asked for) is not installed.
    """
    if library not in ("pandas", "polars", "pyarrow"):
        raise ValueError(f"library must be 'pandas', 'polars' or 'pyarrow', not {library!r}")
    table = _read_arrow(path)
    if library == "pyarrow":
        return table
    target, transforms = _metadata(table)
    if library == "polars":
        try:
            import polars as pl
        except ImportError:
            raise ImportError("read_table(library='polars') needs polars: pip install polars") from None
        return pl.from_arrow(table.replace_schema_metadata(None))
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise ImportError("read_table() needs pandas: pip install pandas") from None
    df = table.replace_schema_metadata(None).to_pandas()
    df.attrs[TARGET_KEY] = target
    df.attrs["target"] = target
    if transforms is not None:
        df.attrs[TRANSFORMS_KEY] = transforms
    return df


# -- writing ---------------------------------------------------------------

_WHAT_TO_DO_TIME = (
    "convert it first: to a number (seconds since the epoch: pandas "
    "`(df[c] - pd.Timestamp(0)).dt.total_seconds()`, polars `pl.col(c).dt.epoch('s')`), to text "
    "(`.dt.strftime('%Y-%m-%d')`), or to features such as the year or the weekday"
)
_WHAT_TO_DO_DURATION = (
    "convert it to a number first, e.g. seconds (pandas `df[c].dt.total_seconds()`, "
    "polars `pl.col(c).dt.total_seconds()`)"
)
_WHAT_TO_DO_NESTED = (
    "expand it into one column per element or field first (pandas "
    "`pd.DataFrame(df[c].tolist())`, polars `.list.to_struct()` then `.struct.unnest()`), "
    "or join it into one string"
)
_WHAT_TO_DO_BINARY = "decode it to text first (e.g. `.str.decode('utf-8')`), or drop it"


def _refuse(name: str, dtype: Any, why: str, what_to_do: str) -> TableTypeError:
    return TableTypeError(
        f"column `{name}` {why} ({dtype}); an mlcycle table holds only numbers (Float64) "
        f"and strings (Utf8): {what_to_do}",
        name,
    )


def _convert_column(name: str, column: Any) -> Any:
    """One column as Float64 or Utf8 (a ChunkedArray), or TableTypeError."""
    pa = _pyarrow()
    pc = pa.compute
    t = pa.types
    dtype = column.type
    if t.is_dictionary(dtype):
        # A category: its values as text (categories of numbers too).
        column = pc.cast(column, dtype.value_type)
        dtype = column.type
        if not (_is_text(dtype) or t.is_null(dtype)):
            if t.is_floating(dtype) or t.is_integer(dtype) or t.is_boolean(dtype) or t.is_decimal(dtype):
                return pc.cast(column, pa.string())
            raise _refuse(name, dtype, "is a category of unsupported values", "convert it to strings")
    if _is_text(dtype):
        return column if dtype == pa.string() else pc.cast(column, pa.string())
    if t.is_null(dtype):
        return pa.chunked_array([pa.nulls(len(c), pa.float64()) for c in column.chunks], pa.float64())
    if t.is_boolean(dtype) or t.is_integer(dtype) or t.is_floating(dtype) or t.is_decimal(dtype):
        out = column if dtype == pa.float64() else pc.cast(column, pa.float64(), safe=False)
        # A NaN is a missing value in mlcycle: store it as a null, as mlcycle does.
        if out.null_count < len(out) and pc.any(pc.is_nan(out)).as_py():
            out = pc.if_else(pc.is_nan(out), pa.scalar(None, pa.float64()), out)
        return out
    if t.is_timestamp(dtype) or t.is_date(dtype) or t.is_time(dtype):
        raise _refuse(name, dtype, "holds dates or times", _WHAT_TO_DO_TIME)
    if t.is_duration(dtype) or t.is_interval(dtype):
        raise _refuse(name, dtype, "holds durations", _WHAT_TO_DO_DURATION)
    if _is_nested(dtype):
        raise _refuse(name, dtype, "holds nested values", _WHAT_TO_DO_NESTED)
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_fixed_size_binary(dtype) or _is_binary_view(dtype):
        raise _refuse(name, dtype, "holds bytes", _WHAT_TO_DO_BINARY)
    raise _refuse(name, dtype, "has an unsupported type", "convert it to numbers or strings first")


def _is_text(dtype: Any) -> bool:
    t = _pyarrow().types
    view = getattr(t, "is_string_view", None)
    return bool(t.is_string(dtype) or t.is_large_string(dtype) or (view is not None and view(dtype)))


def _is_binary_view(dtype: Any) -> bool:
    view = getattr(_pyarrow().types, "is_binary_view", None)
    return bool(view is not None and view(dtype))


def _is_nested(dtype: Any) -> bool:
    t = _pyarrow().types
    checks = ["is_list", "is_large_list", "is_fixed_size_list", "is_list_view",
              "is_large_list_view", "is_struct", "is_map", "is_union"]
    return any(getattr(t, c, lambda _: False)(dtype) for c in checks)


def _is_pandas(df: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(df, pd.DataFrame)


def _is_polars(df: Any) -> bool:
    pl = sys.modules.get("polars")
    return pl is not None and isinstance(df, pl.DataFrame)


def _check_names(names: List[Any]) -> None:
    seen = set()
    for n in names:
        if not isinstance(n, str):
            raise TableTypeError(
                f"column name {n!r} has type {type(n).__name__}; table columns are named by "
                "strings: rename them first (pandas `df.columns = df.columns.astype(str)`)",
                None,
            )
        if n in seen:
            raise TableTypeError(f"column `{n}` appears twice; column names must be unique", n)
        seen.add(n)


def _from_pandas(df: Any) -> Tuple[List[str], List[Any], Any, Any]:
    """(names, arrow columns, attrs target, attrs transforms) of a pandas frame."""
    pa = _pyarrow()
    names = list(df.columns)
    _check_names(names)
    columns = []
    for i, name in enumerate(names):
        series = df.iloc[:, i]
        try:
            array = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as e:
            raise TableTypeError(
                f"column `{name}` (dtype {series.dtype}) cannot be converted to Arrow ({e}). "
                "Mixed values? Make it all numbers (`pd.to_numeric(df[c])`) or all "
                "strings (`df[c].astype(str)`) first",
                name,
            ) from None
        columns.append(pa.chunked_array([array]) if not isinstance(array, pa.ChunkedArray) else array)
    attrs = getattr(df, "attrs", {}) or {}
    target = _attrs_target(attrs)
    return names, columns, target, attrs.get(TRANSFORMS_KEY)


def _attrs_target(attrs: Any) -> Optional[str]:
    full = attrs.get(TARGET_KEY)
    short = attrs.get("target")
    if full is not None and short is not None and full != short:
        raise ValueError(
            f"df.attrs['{TARGET_KEY}'] is {full!r} but df.attrs['target'] is {short!r}: "
            "pass the target to write_table(..., target=NAME)"
        )
    return full if full is not None else short


def _to_arrow(df: Any) -> Tuple[List[str], List[Any], Any, Any]:
    pa = _pyarrow()
    if _is_pandas(df):
        return _from_pandas(df)
    if _is_polars(df):
        names = list(df.columns)
        columns = []
        for name in names:
            series = df.get_column(name)
            try:
                array = series.to_arrow()
            except Exception as e:  # polars raises several types here
                raise TableTypeError(
                    f"column `{name}` (dtype {series.dtype}) cannot be converted to Arrow ({e}); "
                    "make it numbers or strings first",
                    name,
                ) from None
            columns.append(pa.chunked_array([array]) if not isinstance(array, pa.ChunkedArray) else array)
        return names, columns, None, None
    if isinstance(df, pa.RecordBatch):
        df = pa.Table.from_batches([df])
    if isinstance(df, pa.Table):
        names = list(df.column_names)
        _check_names(names)
        target, transforms = _metadata(df)
        return names, list(df.columns), target, transforms
    kind = f"{type(df).__module__}.{type(df).__qualname__}"
    hint = " (call .collect() first)" if "LazyFrame" in kind else ""
    raise TypeError(
        f"write_table() takes a pandas or polars DataFrame or a pyarrow Table, not {kind}{hint}"
    )


def _transforms_json(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as e:
            raise ValueError(f"the transforms are not valid JSON: {e}") from None
        if not isinstance(parsed, list):
            raise ValueError("the transforms must be a JSON list of steps")
        return value if parsed else None
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), separators=(",", ":"), allow_nan=False) if value else None
    raise TypeError(f"transforms must be a list of steps or its JSON text, not {type(value).__name__}")


def write_table(
    df: Any,
    path: PathLike,
    *,
    target: Union[str, None, Literal[False]] = None,
    transforms: Union[List[Any], str, None] = None,
) -> Path:
    """Write a DataFrame as an mlcycle ``table`` artifact.

    The file is an uncompressed Arrow IPC (Feather v2) file, which every
    mlcycle version reads, with one ``Float64`` or ``Utf8`` column per column
    of ``df``, in order:

    - numbers (integers, floats, decimals) become Float64; booleans 0.0/1.0;
    - strings and categories (pandas ``category``, polars ``Categorical`` /
      ``Enum``, Arrow dictionaries — categories of numbers too) become Utf8;
    - missing values (None, NaN, null) stay missing (nulls); a column of
      nothing but nulls is numeric;
    - anything else (dates, times, durations, lists, structs, bytes, mixed
      Python objects) is refused with a :class:`TableTypeError` naming the
      column and saying how to convert it.

    A pandas index is not written (``df.reset_index()`` first to keep it).
    Other schema metadata (pandas' own, for one) is not kept.

    Args:
        df: a pandas or polars ``DataFrame``, or a pyarrow ``Table`` /
            ``RecordBatch``.
        path: the file to write, e.g. ``mlcycle.output("data")``; its folder
            is created if needed.
        target: the target column, recorded as ``mlcycle.target``. None (the
            default) keeps the one ``df`` carries: ``df.attrs["mlcycle.target"]``
            or ``df.attrs["target"]`` for pandas (as :func:`read_table` sets
            them), the schema metadata for pyarrow; polars frames carry none.
            ``False`` writes no target.
        transforms: the fitted preprocessing steps already applied to these
            rows (``mlcycle.transforms``), as a list or its JSON text. None
            keeps the ones ``df`` carries (``df.attrs["mlcycle.transforms"]``
            for pandas, as :func:`read_table` sets it, or the schema metadata
            for pyarrow), so a table read, edited and written keeps its chain
            and a model trained on it still takes raw rows; ``[]`` writes
            none. Keep them only for rows those steps were applied to: when a
            step's column is renamed or dropped, or the values are replaced,
            pass ``transforms=[]``. polars frames carry none: pass
            ``table_transforms(input_path)``.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        TableTypeError: a column of an unsupported type, a column name that
            is not a string, or a name used twice.
        ValueError: ``target`` is not a column (the message lists the
            columns), or ``transforms`` is not a JSON list.
        TypeError: ``df`` is not a pandas/polars DataFrame or pyarrow Table.
        ImportError: pyarrow is not installed.
    """
    pa = _pyarrow()
    names, columns, carried_target, carried_transforms = _to_arrow(df)

    if target is False:
        chosen: Optional[str] = None
    elif target is None:
        chosen = carried_target
    elif isinstance(target, str):
        chosen = target
    else:
        raise TypeError(f"target must be a column name, None or False, not {target!r}")
    if chosen is not None and chosen not in names:
        source = "" if target is not None else " (carried by the DataFrame's attrs / metadata)"
        msg = f"target column `{chosen}`{source} is not in the table."
        guess = did_you_mean(chosen, names)
        if guess is not None:
            msg += f" Did you mean `{guess}`?"
        msg += f" Its columns are: {listing(names)}." if names else " It has no columns."
        if target is None:
            msg += " Pass target=NAME, or target=False for a table with no target."
        raise ValueError(msg)

    steps = _transforms_json(transforms if transforms is not None else carried_transforms)

    fields = []
    arrays = []
    for name, column in zip(names, columns):
        converted = _convert_column(name, column)
        arrays.append(converted)
        fields.append(pa.field(name, converted.type, nullable=True))
    metadata = {}
    if chosen is not None:
        metadata[TARGET_KEY] = chosen
    if steps is not None:
        metadata[TRANSFORMS_KEY] = steps
    schema = pa.schema(fields, metadata=metadata or None)
    table = pa.Table.from_arrays(arrays, schema=schema) if arrays else schema.empty_table()
    if arrays:
        table = table.combine_chunks()

    out = Path(path)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    options = pa.ipc.IpcWriteOptions(compression=None)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with pa.OSFile(os.fspath(tmp), "wb") as sink:
            with pa.ipc.new_file(sink, schema, options=options) as writer:
                writer.write_table(table)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
