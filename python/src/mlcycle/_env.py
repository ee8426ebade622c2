"""The environment mlcycle gives a ``run:`` command: stage, workspace, paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

from ._errors import NotInStageError, UnknownNameError, did_you_mean, listing

__all__ = [
    "in_stage",
    "stage",
    "workspace",
    "inputs",
    "outputs",
    "input",
    "output",
    "env_name",
]

_IN = "MLCYCLE_IN_"
_OUT = "MLCYCLE_OUT_"


def _not_in_stage(what: str, variable: str = "MLCYCLE_STAGE") -> NotInStageError:
    return NotInStageError(
        f"mlcycle.{what} reads the environment that mlcycle gives a `run:` stage, "
        f"but {variable} is not set: this script must run as an mlcycle `run:` stage "
        "(declare it in mlcycle.yaml, e.g. `run: python3 train.py`, and start it with "
        "`mlcycle run`). To try it by hand, set the MLCYCLE_* variables yourself "
        "(docs/pipeline-yaml.md, \"Environment of a command\")."
    )


def in_stage() -> bool:
    """Whether this process runs as an mlcycle ``run:`` stage (``MLCYCLE_STAGE`` is set)."""
    return "MLCYCLE_STAGE" in os.environ


def _require_stage(what: str) -> str:
    name = os.environ.get("MLCYCLE_STAGE")
    if name is None:
        raise _not_in_stage(what)
    return name


def stage() -> str:
    """The name of the running stage (``MLCYCLE_STAGE``), e.g. ``"train"``.

    For an instance of a ``matrix:`` stage this is the instance's name
    (``train@0.1-ols``).

    Raises:
        NotInStageError: ``MLCYCLE_STAGE`` is not set (not run by mlcycle).
    """
    return _require_stage("stage()")


def workspace() -> Path:
    """The absolute path of the workspace root (``MLCYCLE_WORKSPACE``).

    The command runs with this folder as its working directory.

    Raises:
        NotInStageError: not run by mlcycle (``MLCYCLE_STAGE`` or
            ``MLCYCLE_WORKSPACE`` is not set).
    """
    _require_stage("workspace()")
    root = os.environ.get("MLCYCLE_WORKSPACE")
    if root is None:
        raise _not_in_stage("workspace()", "MLCYCLE_WORKSPACE")
    return Path(root)


def env_name(name: str) -> str:
    """The variable suffix mlcycle derives from a dep or output name.

    Letters and digits (ASCII) are upper-cased and every other character
    becomes ``_``, as mlcycle does: ``"train-data"`` → ``"TRAIN_DATA"``, so
    the dep's path is in ``MLCYCLE_IN_TRAIN_DATA``.
    """
    return "".join(c.upper() if c.isascii() and c.isalnum() else "_" for c in name)


def _resolve(value: str) -> Path:
    # Paths are relative to the workspace root (the command's working
    # directory); anchoring them there keeps them valid after an os.chdir.
    path = Path(value)
    root = os.environ.get("MLCYCLE_WORKSPACE")
    if root and not path.is_absolute():
        return Path(root) / path
    return path


def _ports(prefix: str, what: str) -> Dict[str, Path]:
    _require_stage(what)
    return {
        key[len(prefix):].lower(): _resolve(value)
        for key, value in sorted(os.environ.items())
        if key.startswith(prefix) and len(key) > len(prefix)
    }


def inputs() -> Dict[str, Path]:
    """The stage's deps, from the ``MLCYCLE_IN_<NAME>`` variables.

    Returns:
        ``{name: path}``, where ``name`` is the variable's suffix in lower
        case (a dep named ``train-data`` is ``"train_data"``) and ``path`` is
        absolute (a relative path is taken from the workspace root). A gather
        (``train@*.model``) and a name two unnamed deps share set no variable
        and so are not here.

    Raises:
        NotInStageError: not run by mlcycle.
    """
    return _ports(_IN, "inputs()")


def outputs() -> Dict[str, Path]:
    """The stage's declared outputs, from the ``MLCYCLE_OUT_<NAME>`` variables.

    Returns:
        ``{name: path}`` as for :func:`inputs`. mlcycle has deleted each
        output and created the folder a file output lives in before the
        command starts; a folder output must be created by the command.

    Raises:
        NotInStageError: not run by mlcycle.
    """
    return _ports(_OUT, "outputs()")


def _port(prefix: str, kind: str, name: str) -> Path:
    what = f"{kind}({name!r})"
    stage_name = _require_stage(what)
    if not isinstance(name, str):
        raise TypeError(f"mlcycle.{kind}() takes the name as a string, not {type(name).__name__}")
    var = prefix + env_name(name)
    value = os.environ.get(var)
    if value is not None and name:
        return _resolve(value)
    there = _ports(prefix, what)
    msg = f"stage `{stage_name}` has no {kind} `{name}` ({var} is not set)."
    guess = did_you_mean(env_name(name).lower(), there)
    if guess is not None:
        msg += f" Did you mean `{guess}`?"
    if there:
        msg += f" Its {kind}s are: {listing(there)}."
    else:
        msg += f" It has no {kind}s."
    if kind == "input":
        msg += (
            " A `run:` stage sees the deps listed in its `deps:`; a dep is named by "
            "`- NAME: path`, else by its port (`stage.port`) or its file name up to the "
            "first dot. Two unnamed deps with the same name get no variable: name them."
        )
    else:
        msg += (
            " A `run:` stage sees the outputs listed in its `outs:`; an output is named by "
            "`- NAME: path`, else by its file name up to the first dot."
        )
    raise UnknownNameError(msg, name)


def input(name: str) -> Path:  # noqa: A001 - the natural name, mirrors ${inputs.NAME}
    """The path of the dep ``name``, as ``${inputs.NAME}`` gives it.

    ``name`` is written as in the pipeline (``"train-data"``, ``"train_data"``
    or ``"TRAIN_DATA"`` all find ``MLCYCLE_IN_TRAIN_DATA``). The path is
    absolute (see :func:`inputs`).

    Raises:
        NotInStageError: not run by mlcycle.
        UnknownNameError: (a KeyError) the stage has no such dep; the message
            lists the names it has and suggests the closest one.
    """
    return _port(_IN, "input", name)


def output(name: str) -> Path:
    """The path of the output ``name``, as ``${outputs.NAME}`` gives it.

    ``name`` is written as in the pipeline (``"gb_metrics"``, ``"gb-metrics"``).

    Raises:
        NotInStageError: not run by mlcycle.
        UnknownNameError: (a KeyError) the stage has no such output; the
            message lists the names it has and suggests the closest one.
    """
    return _port(_OUT, "output", name)
