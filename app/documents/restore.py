"""Restoring a snapshot as a forward update (FR-6.7).

Yjs cannot go back in time, and connected clients must not reload: so the restore is a new
update, computed on a copy of the current document, that makes every root type hold what it held
in the snapshot. Applied like any other update, it reaches every client, who converge on it.

A root's type is not written in Yjs updates; it is recognised by reading the root each way in a
scratch document (a Y.Map has keyed entries, a Y.Text string content, a Y.Array neither, and an
XML fragment refuses to be read as an array). XML roots are not restored yet.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pycrdt import Array, Doc, Map, Text

from app.errors import ValidationFailed


class RootKind(StrEnum):
    TEXT = "text"
    MAP = "map"
    ARRAY = "array"
    XML = "xml"


def _scratch(state: bytes) -> Doc:
    doc = Doc()
    doc.apply_update(state)
    return doc


def root_kinds(state: bytes) -> dict[str, RootKind]:
    kinds: dict[str, RootKind] = {}
    for name in list(_scratch(state).keys()):
        if _scratch(state).get(name, type=Map).to_py():
            kinds[name] = RootKind.MAP
        elif str(_scratch(state).get(name, type=Text)):
            kinds[name] = RootKind.TEXT
        else:
            try:
                items = _scratch(state).get(name, type=Array).to_py()
            except ValueError:
                kinds[name] = RootKind.XML
                continue
            if items:
                kinds[name] = RootKind.ARRAY
    return kinds


def _prelim(value: Any) -> Any:
    """A copy of a value read from a document, with shared types copied as shared types."""
    if isinstance(value, Map):
        return Map({key: _prelim(item) for key, item in value.items()})
    if isinstance(value, Array):
        return Array([_prelim(item) for item in value])
    if isinstance(value, Text):
        return Text(str(value))
    return value


def restore_update(current: bytes | None, target: bytes) -> bytes:
    """The update that turns a document in state `current` into the content of `target`."""
    doc = Doc()
    if current:
        doc.apply_update(current)
    before = doc.get_state()
    kinds = {**(root_kinds(current) if current else {}), **root_kinds(target)}
    if RootKind.XML in kinds.values():
        raise ValidationFailed("documents with XML roots cannot be restored yet", field="snapshotId")
    source = _scratch(target)
    with doc.transaction():
        for name, kind in kinds.items():
            if kind == RootKind.TEXT:
                _restore_text(doc.get(name, type=Text), source.get(name, type=Text))
            elif kind == RootKind.MAP:
                _restore_map(doc.get(name, type=Map), source.get(name, type=Map))
            else:
                _restore_array(doc.get(name, type=Array), source.get(name, type=Array))
    return doc.get_update(before)


def _restore_text(text: Text, source: Text) -> None:
    del text[:]
    position = 0
    active: dict[str, Any] = {}
    for chunk, attrs in source.diff():
        # Inserted text inherits the formatting before it: end what this chunk does not have.
        wanted = {**{key: None for key in active if key not in (attrs or {})}, **(attrs or {})}
        if isinstance(chunk, str):
            text.insert(position, chunk, wanted or None)
            position += len(chunk)
        else:
            text.insert_embed(position, chunk, wanted or None)
            position += 1
        active = dict(attrs or {})


def _restore_map(shared: Map, source: Map) -> None:
    wanted = set(source.keys())
    for key in list(shared.keys()):
        if key not in wanted:
            del shared[key]
    for key in wanted:
        shared[key] = _prelim(source[key])


def _restore_array(shared: Array, source: Array) -> None:
    shared.clear()
    shared.extend([_prelim(item) for item in source])
