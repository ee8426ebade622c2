"""Exceptions raised by the helper, and the "did you mean" suggestion."""

from __future__ import annotations

import difflib
from typing import Iterable, List, Optional

__all__ = [
    "NotInStageError",
    "ParamNotFoundError",
    "UnknownNameError",
    "TableTypeError",
]


class NotInStageError(RuntimeError):
    """The script is not running as an mlcycle ``run:`` stage.

    Raised by :func:`mlcycle.stage`, :func:`mlcycle.workspace`,
    :func:`mlcycle.params`, :func:`mlcycle.inputs` and friends when the
    variables mlcycle sets for a command (``MLCYCLE_STAGE``, ...) are absent.
    """


class _MessageKeyError(KeyError):
    # KeyError's str() is the repr of its argument ("'...'"), which quotes a
    # long message and escapes its newlines; show the message as written.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ParamNotFoundError(_MessageKeyError, AttributeError):
    """A param the stage did not receive.

    A :class:`KeyError` (``p["x"]``) that is also an :class:`AttributeError`
    (``p.x``), so that ``hasattr(p, "x")`` and ``getattr(p, "x", default)``
    behave as usual. ``key`` is the full dotted key that was asked for.
    """

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class UnknownNameError(_MessageKeyError):
    """An input or output name the stage does not have (a :class:`KeyError`).

    ``name`` is the name as it was asked for.
    """

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class TableTypeError(TypeError):
    """A column that a ``table`` artifact cannot hold (a :class:`TypeError`).

    ``column`` is the column's name.
    """

    def __init__(self, message: str, column: Optional[str] = None) -> None:
        super().__init__(message)
        self.column = column


def did_you_mean(word: str, choices: Iterable[str]) -> Optional[str]:
    """The choice closest to ``word`` (difflib), or None when none is close."""
    matches: List[str] = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def listing(names: Iterable[str], limit: int = 30) -> str:
    """``a``, ``b``, ``c`` (and N more) for an error message."""
    names = list(names)
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown


class ModelSaveError(ValueError):
    """:func:`mlcycle.save_model` was given something it cannot save."""
