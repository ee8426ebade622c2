"""Step-wise metrics: JSON lines appended to ``$MLCYCLE_STEP_METRICS``."""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from typing import Any, Dict, Mapping, Optional, Union

__all__ = ["log_metric", "log_metrics"]

Number = Union[int, float]

_warned = False


def _number(name: str, value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # numpy and torch scalars of one element: .item() gives a Python number.
        item = getattr(value, "item", None)
        if callable(item) and not isinstance(value, bool):
            try:
                value = item()
            except (TypeError, ValueError, RuntimeError):
                pass
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"metric `{name}` must be a number (int or float), not {type(value).__name__}: {value!r}"
            )
    number: Number = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(
            f"metric `{name}` is {number}; step metrics must be finite numbers "
            "(a NaN or infinite loss usually means the training diverged)"
        )
    return number


def _step(step: Any) -> Optional[int]:
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an int or None, not {type(step).__name__}: {step!r}")
    return int(step)


def _write(line: Dict[str, Any], stacklevel: int) -> None:
    global _warned
    path = os.environ.get("MLCYCLE_STEP_METRICS")
    if not path:
        if not _warned:
            _warned = True
            warnings.warn(
                "MLCYCLE_STEP_METRICS is not set (not run as an mlcycle `run:` stage): "
                "mlcycle.log_metric() records nothing",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
        return
    text = json.dumps(line, allow_nan=False, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()


def log_metrics(metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
    """Record several metrics of one step as one line: ``{"step": 3, "loss": 0.41, "acc": 0.9}``.

    The line is appended to the file named by ``MLCYCLE_STEP_METRICS`` and
    flushed at once; an experiment records the stage's lines, ``mlcycle exp
    steps`` prints them and ``mlcycle exp plot --metric loss`` draws them.
    ``"step"`` is left out when ``step`` is None.

    Args:
        metrics: ``{name: value}``; each value a finite int or float (numpy
            and torch one-element scalars are accepted through ``.item()``).
        step: the step (epoch, iteration), an int, or None.

    Raises:
        TypeError: a name that is not a string, a value that is not a number
            (booleans included), or a step that is not an int.
        ValueError: no metrics, a name that is empty or ``"step"``, or a
            NaN or infinite value.

    Outside mlcycle (``MLCYCLE_STEP_METRICS`` unset) nothing is written and
    a single :class:`RuntimeWarning` is emitted per process.
    """
    _log(metrics, step)


def _log(metrics: Mapping[str, Any], step: Optional[int]) -> None:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"log_metrics() takes a mapping of name to value, not {type(metrics).__name__}")
    if not metrics:
        raise ValueError("log_metrics() needs at least one metric")
    line: Dict[str, Any] = {}
    s = _step(step)
    if s is not None:
        line["step"] = s
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"metric names must be strings, not {name!r}")
        if not name:
            raise ValueError("a metric name must not be empty")
        if name == "step":
            raise ValueError("`step` is not a metric name: pass the step as step=N")
        line[name] = _number(name, value)
    # The warning points at the caller of log_metric / log_metrics:
    # caller -> log_metric(s) -> _log -> _write -> warn.
    _write(line, stacklevel=4)


def log_metric(name: str, value: Number, step: Optional[int] = None) -> None:
    """Record one metric: appends ``{"step": step, name: value}`` as a JSON line.

    ``log_metric("loss", 0.41, step=3)`` writes ``{"step": 3, "loss": 0.41}``
    to the file named by ``MLCYCLE_STEP_METRICS``, flushed at once
    (``"step"`` is left out when ``step`` is None). To record several metrics
    of one step on one line, use :func:`log_metrics`.

    Raises:
        TypeError, ValueError: as :func:`log_metrics` (non-numbers, NaN or
            infinite values, a bad name or step).

    Outside mlcycle (``MLCYCLE_STEP_METRICS`` unset) nothing is written and
    a single :class:`RuntimeWarning` is emitted per process.
    """
    _log({name: value}, step)
