"""Saving models as ONNX files that mlcycle's built-in stages read.

A model artifact may be an ONNX file: ``evaluate.*``, ``deploy.bundle``,
``mlcycle predict`` and ``mlcycle serve`` take it like a built-in model.
What the graph cannot say (the names of its input columns, the task, the
class names, the target) travels in the file's ``metadata_props`` under
``mlcycle.*`` keys, which :func:`save_model` writes.

The metadata is appended to the file as protobuf fields, so no ``onnx``
package is needed; a scikit-learn estimator is converted with ``skl2onnx``
(imported only then).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from ._env import in_stage, outputs, stage
from ._errors import ModelSaveError

__all__ = ["save_model", "onnx_metadata"]

TASKS = ("regression", "classification")
SCORES = ("probabilities", "logits", "decision")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _metadata_bytes(entries: Dict[str, str]) -> bytes:
    # ModelProto.metadata_props = 14, StringStringEntryProto {key = 1, value = 2}.
    out = b""
    for k, v in entries.items():
        out += _field(14, _field(1, k.encode()) + _field(2, v.encode()))
    return out


def _read_varint(b: bytes, i: int) -> "tuple[int, int]":
    n = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def onnx_metadata(data: bytes) -> Dict[str, str]:
    """The ``metadata_props`` of a serialized ONNX model (later entries win).

    Raises ``ValueError`` when ``data`` is not a protobuf message.
    """
    meta: Dict[str, str] = {}
    i = 0
    while i < len(data):
        tag, i = _read_varint(data, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, i = _read_varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = _read_varint(data, i)
            payload = data[i : i + n]
            if len(payload) != n:
                raise ValueError("truncated field")
            i += n
            if number == 14:
                entry: Dict[int, str] = {}
                j = 0
                while j < len(payload):
                    t, j = _read_varint(payload, j)
                    m, j = _read_varint(payload, j)
                    entry[t >> 3] = payload[j : j + m].decode("utf-8", "replace")
                    j += m
                meta[entry.get(1, "")] = entry.get(2, "")
        else:
            raise ValueError(f"not an ONNX model (protobuf wire type {wire})")
    return meta


def _is_estimator(model: Any) -> bool:
    return hasattr(model, "fit") and hasattr(model, "get_params")


def _final_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def _jsonable_params(model: Any) -> Dict[str, Any]:
    out = {}
    try:
        params = _final_step(model).get_params(deep=False)
    except Exception:  # pragma: no cover - any estimator has get_params
        return out
    for k, v in sorted(params.items()):
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
    return out


def class_name(c: Any) -> str:
    """A class label as mlcycle's tables write it: ``1.0`` as ``1``,
    ``True`` as ``true``, anything else as ``str()`` does."""
    if hasattr(c, "item"):  # a numpy scalar
        c = c.item()
    if isinstance(c, bool):
        return "true" if c else "false"
    if isinstance(c, float) and c.is_integer():
        return str(int(c))
    return str(c)


def _from_sklearn(model: Any, features: Optional[List[str]]) -> "tuple[bytes, Dict[str, Any]]":
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelSaveError(
            "save_model(estimator) converts scikit-learn models with skl2onnx: "
            "pip install skl2onnx (or pass an ONNX model you exported)"
        ) from e
    from sklearn.base import is_classifier

    fitted = getattr(model, "feature_names_in_", None)
    fitted = [str(c) for c in fitted] if fitted is not None else None
    names = features
    if names is not None and fitted is not None and names != fitted:
        if sorted(names) == sorted(fitted):
            raise ModelSaveError(
                "save_model: `features` must be in the order the estimator was fitted on: "
                + ", ".join(fitted)
            )
        raise ModelSaveError(
            "save_model: `features` are not the columns the estimator was fitted on: " + ", ".join(fitted)
        )
    if names is None:
        names = fitted
    n = len(names) if names is not None else getattr(model, "n_features_in_", None)
    if n is None:
        raise ModelSaveError("the estimator is not fitted (no n_features_in_): fit it before save_model")
    clf = is_classifier(model)
    final = _final_step(model)
    # The operator sets mlcycle's runtime is tested with.
    opset = {"": 17, "ai.onnx.ml": 3}
    one_input = [("X", FloatTensorType([None, int(n)]))]
    # skl2onnx's defaults (a classifier's ZipMap output included: mlcycle
    # reads the probability tensor under it, other runtimes the dict).
    attempts = [one_input]
    if names is not None:
        # A ColumnTransformer that picks columns by name needs one graph
        # input per column.
        attempts.append([(c, FloatTensorType([None, 1])) for c in names])
    errors = []
    onx = None
    for inputs in attempts:
        try:
            onx = to_onnx(model, initial_types=inputs, target_opset=opset)
            break
        except Exception as e:  # skl2onnx raises NameError, RuntimeError, ...
            errors.append(f"{type(e).__name__}: {e}")
    if onx is None:
        raise ModelSaveError("skl2onnx cannot convert this estimator: " + " | ".join(errors))
    found: Dict[str, Any] = {
        "task": "classification" if clf else "regression",
        "kind": "sklearn." + type(final).__name__,
        "params": _jsonable_params(model),
    }
    if names is not None:
        found["features"] = names
    if clf:
        found["classes"] = [class_name(c) for c in final.classes_]
        # skl2onnx names the score tensor `probabilities`; for a classifier
        # without predict_proba (a linear SVM, a ridge classifier) it holds
        # decision values.
        found["output"] = "probabilities"
        found["scores"] = "probabilities" if hasattr(model, "predict_proba") else "decision"
    return onx.SerializeToString(), found


def _onnx_bytes(model: Any) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if isinstance(model, (str, os.PathLike)):
        return Path(model).read_bytes()
    if hasattr(model, "SerializeToString"):
        return model.SerializeToString()
    raise ModelSaveError(
        f"save_model takes an ONNX model (onnx.ModelProto, bytes or a path to a .onnx file) "
        f"or a fitted scikit-learn estimator, not {type(model).__name__}"
    )


def _default_path() -> Path:
    if not in_stage():
        raise ModelSaveError(
            "save_model: say where to write (path=...): outside an mlcycle `run:` stage "
            "there is no stage output to write to"
        )
    outs = outputs()
    if "model" in outs:
        return outs["model"]
    onnx = [p for p in outs.values() if str(p).endswith(".onnx")]
    if len(onnx) == 1:
        return onnx[0]
    raise ModelSaveError(
        "save_model: say where to write (path=...): the stage has no output named `model` "
        f"and {len(onnx)} outputs ending in .onnx"
    )


def save_model(
    model: Any,
    path: Union[str, os.PathLike, None] = None,
    *,
    features: Optional[Iterable[str]] = None,
    task: Optional[str] = None,
    classes: Optional[Iterable[Any]] = None,
    target: Optional[str] = None,
    scores: Optional[str] = None,
    output: Optional[str] = None,
    params: Optional[Dict[str, Any]] = None,
    rows: Optional[int] = None,
) -> Path:
    """Write ``model`` as an ONNX file for mlcycle and return its path.

    ``model`` is a fitted scikit-learn estimator or pipeline (converted with
    skl2onnx, float inputs), or an ONNX model from any exporter
    (``torch.onnx.export``, onnxmltools for LightGBM/XGBoost): an
    ``onnx.ModelProto``, its bytes, or the path of a ``.onnx`` file.

    The keywords fill what the graph cannot say; for a scikit-learn model
    they default to what the estimator knows:

    - ``features``: the input column names, in the order of the input
      tensor's columns (default: ``feature_names_in_``, which a model
      fitted on a DataFrame has). Needed when the graph has one input of
      several columns.
    - ``task``: ``"regression"`` or ``"classification"``.
    - ``classes``: class names, in the order of the score columns.
    - ``target``: the target column (default: the evaluated table's).
    - ``scores``: ``"probabilities"``, ``"logits"`` (a softmax is applied)
      or ``"decision"`` (decision values: the highest wins, no
      probabilities) for a classifier's output.
    - ``output``: the graph output to read, when not the first float one.

    ``path`` defaults to the stage's output named ``model``, or its only
    output ending in ``.onnx``. The file is written whole (temp file, then
    rename). Raises :class:`ModelSaveError` for a bad argument.
    """
    found: Dict[str, Any] = {}
    names = [str(f) for f in features] if features is not None else None
    if _is_estimator(model):
        data, found = _from_sklearn(model, names)
    else:
        data = _onnx_bytes(model)
        try:
            onnx_metadata(data)
        except ValueError as e:
            raise ModelSaveError(f"save_model: not an ONNX model: {e}") from None
    if names is not None:
        if len(set(names)) != len(names):
            raise ModelSaveError("save_model: `features` names a column twice")
        found["features"] = names
    if task is not None:
        if task not in TASKS:
            raise ModelSaveError(f"save_model: task must be one of {', '.join(TASKS)}, not {task!r}")
        found["task"] = task
    if classes is not None:
        found["classes"] = [class_name(c) for c in classes]
    if scores is not None:
        if scores not in SCORES:
            raise ModelSaveError(f"save_model: scores must be one of {', '.join(SCORES)}, not {scores!r}")
        found["scores"] = scores
    if output is not None:
        found["output"] = output
    if target is not None:
        found["target"] = target
    if params is not None:
        found["params"] = params
    if rows is not None:
        found["rows"] = int(rows)
    if in_stage():
        found.setdefault("stage", stage())

    entries: Dict[str, str] = {}
    for key, value in found.items():
        entries["mlcycle." + key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    data += _metadata_bytes(entries)

    dest = Path(path) if path is not None else _default_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private; give it the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest
