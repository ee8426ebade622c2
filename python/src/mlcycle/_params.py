"""``MLCYCLE_PARAMS``: the params a ``run:`` stage reads."""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from ._env import _not_in_stage
from ._errors import ParamNotFoundError, did_you_mean, listing

__all__ = ["Params", "params"]


class _Root:
    """What every view of one params object shares: the tree, for messages."""

    __slots__ = ("tree", "stage")

    def __init__(self, tree: Dict[str, Any], stage: Optional[str]) -> None:
        self.tree = tree
        self.stage = stage


def _merge(into: Dict[str, Any], path: List[str], value: Any) -> None:
    """Put ``value`` at ``path`` (a dotted key split) into the tree ``into``."""
    node = into
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    last = path[-1]
    if isinstance(value, dict):
        old = node.get(last)
        if not isinstance(old, dict):
            old = {}
            node[last] = old
        for k, v in value.items():
            _merge(old, [str(k)], v)
    else:
        node[last] = value


def _walk(tree: Mapping[str, Any], prefix: str = "") -> Iterator[Tuple[str, bool]]:
    """Every dotted key of ``tree``: ``(key, is_subtree)``, depth first."""
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield key, True
            yield from _walk(v, key + ".")
        else:
            yield key, False


class Params(Mapping[str, Any]):
    """The params of a stage: a read-only mapping with dotted access.

    Built by :func:`params` from ``MLCYCLE_PARAMS``. Flat dotted keys and
    nested mappings are merged into one tree, so with
    ``MLCYCLE_PARAMS={"seed": 7, "train": {"lr": 0.01}}`` or
    ``{"seed": 7, "train.lr": 0.01}`` alike::

        p["train.lr"]        # 0.01
        p["train"]["lr"]     # 0.01 (p["train"] is a Params too)
        p.train.lr           # 0.01
        p.get("train.momentum", 0.9)
        "train.lr" in p      # True
        list(p)              # ["seed", "train"]: the top-level keys

    A subtree is returned as a :class:`Params`; leaves as the JSON value
    (``int``, ``float``, ``str``, ``bool``, ``None`` or a fresh ``list``).
    Keys that are not Python identifiers, or that clash with mapping
    methods (``items``, ``keys``, ``get``, ...), are read with ``p["..."]``.

    A missing key raises :class:`ParamNotFoundError` (a ``KeyError``, and an
    ``AttributeError`` for ``p.name``) naming the key, the keys there are and
    the closest one, and recalling that a ``run:`` stage receives only the
    params it declares.
    """

    __slots__ = ("_tree", "_prefix", "_root")

    def __init__(
        self,
        data: Optional[Mapping[str, Any]] = None,
        *,
        stage: Optional[str] = None,
    ) -> None:
        """Build params from ``data``: ``{dotted key or name: value}``.

        Values that are mappings are merged as subtrees; a later key
        overrides an earlier leaf at the same place.
        """
        tree: Dict[str, Any] = {}
        for key, value in (data or {}).items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"param keys must be non-empty strings, not {key!r}")
            _merge(tree, key.split("."), copy.deepcopy(value))
        self._tree = tree
        self._prefix = ""
        self._root = _Root(tree, stage)

    @classmethod
    def _view(cls, tree: Dict[str, Any], prefix: str, root: _Root) -> "Params":
        p = cls.__new__(cls)
        p._tree = tree
        p._prefix = prefix
        p._root = root
        return p

    # -- the mapping -------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str):
            raise self._missing(repr(key))
        node: Any = self._tree
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise self._missing(key)
        if isinstance(node, dict):
            return Params._view(node, f"{self._prefix}{key}.", self._root)
        return copy.deepcopy(node) if isinstance(node, list) else node

    def __iter__(self) -> Iterator[str]:
        return iter(self._tree)

    def __len__(self) -> int:
        return len(self._tree)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in Params.__slots__:
            object.__setattr__(self, name, value)
        else:
            raise AttributeError("Params are read-only")

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | {k for k in self._tree if k.isidentifier()})

    def __repr__(self) -> str:
        return f"Params({self.to_dict()!r})"

    def __getstate__(self) -> Dict[str, Any]:
        return {"tree": self._tree, "prefix": self._prefix, "stage": self._root.stage}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        object.__setattr__(self, "_tree", state["tree"])
        object.__setattr__(self, "_prefix", state["prefix"])
        object.__setattr__(self, "_root", _Root(state["tree"], state["stage"]))

    # -- conversions -------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        """A plain nested ``dict`` (a deep copy): ``{"train": {"lr": 0.01}}``."""
        return copy.deepcopy(self._tree)

    def flat(self) -> Dict[str, Any]:
        """Every leaf by its dotted key, relative to this view:
        ``{"seed": 7, "train.lr": 0.01}``."""
        out: Dict[str, Any] = {}
        for key, is_tree in _walk(self._tree):
            if not is_tree:
                node: Any = self._tree
                for part in key.split("."):
                    node = node[part]
                out[key] = copy.deepcopy(node)
        return out

    # -- errors ------------------------------------------------------------

    def _missing(self, key: str) -> ParamNotFoundError:
        full = f"{self._prefix}{key}"
        root = self._root
        where = f"stage `{root.stage}`" if root.stage else "this stage"
        msg = f"param `{full}` is not in the params of {where} (MLCYCLE_PARAMS)."
        everything = [k for k, _ in _walk(root.tree)]
        guess = did_you_mean(full, everything)
        if guess is not None:
            msg += f" Did you mean `{guess}`?"
        leaves = [k for k, is_tree in _walk(root.tree) if not is_tree]
        if leaves:
            msg += f" The params there are: {listing(leaves)}."
        else:
            msg += " The stage received no params."
        msg += (
            " A `run:` stage receives only the params it declares: list the key under "
            f"`params:` in the stage (`params: [{full}]`; a key may name a whole subtree), "
            f"or use `${{params.{full}}}` in its `run:` or `env:`."
        )
        return ParamNotFoundError(msg, full)


def params() -> Params:
    """The stage's params, from ``MLCYCLE_PARAMS``.

    mlcycle passes only the params the stage reads (those named in
    ``${params.…}`` in ``run:`` / ``env:`` and those listed under
    ``params:``), as a JSON object by dotted key; a key naming a subtree
    holds a nested object: ``{"seed": 7, "train": {"lr": 0.01, "epochs": 5}}``
    or ``{"train.lr": 0.01}``. See :class:`Params` for how to read them.

    Raises:
        NotInStageError: neither ``MLCYCLE_PARAMS`` nor ``MLCYCLE_STAGE`` is
            set (the script is not run by mlcycle).
        ValueError: ``MLCYCLE_PARAMS`` is not a JSON object.
    """
    raw = os.environ.get("MLCYCLE_PARAMS")
    stage = os.environ.get("MLCYCLE_STAGE")
    if raw is None:
        if stage is None:
            raise _not_in_stage("params()", "MLCYCLE_PARAMS")
        raw = "{}"
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"MLCYCLE_PARAMS is not valid JSON ({e}): {raw[:200]!r}") from None
    if not isinstance(data, dict):
        raise ValueError(f"MLCYCLE_PARAMS must hold a JSON object, not {type(data).__name__}")
    return Params(data, stage=stage)
