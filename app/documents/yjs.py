"""Yjs v1 updates as the API carries them: base64 text, checked before anything is stored.

pycrdt (yrs) raises ValueError for most malformed input, but a bug in the decoder surfaces as
pyo3's PanicException, which derives from BaseException: both become VALIDATION_ERROR here.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import pycrdt
from pycrdt import Array, Doc, Map, Text

from app.errors import ValidationFailed


def decode_base64(value: str, *, field: str, max_bytes: int) -> bytes:
    if len(value) > (max_bytes * 4) // 3 + 4:
        raise ValidationFailed(f"{field} is larger than {max_bytes} bytes", field=field)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(f"{field} must be base64", field=field) from None
    if len(raw) > max_bytes:
        raise ValidationFailed(f"{field} is larger than {max_bytes} bytes", field=field)
    return raw


def encode_base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _guarded(call: Any, *args: Any, field: str, what: str) -> Any:
    try:
        return call(*args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # ValueError, or pyo3's PanicException
        raise ValidationFailed(f"{what}: {str(error)[:200] or type(error).__name__}", field=field) from None


def apply(doc: Doc, update: bytes, *, field: str = "update") -> None:
    """Apply a Yjs update; a malformed one raises VALIDATION_ERROR and changes nothing."""
    if not update:
        raise ValidationFailed("the update is empty", field=field)
    _guarded(doc.apply_update, update, field=field, what="not a valid Yjs update")


def state_vector(raw: bytes, *, field: str = "stateVector") -> bytes:
    """Check a client's state vector (by encoding a diff against it on an empty document)."""
    _guarded(Doc().get_update, raw, field=field, what="not a valid Yjs state vector")
    return raw


def integrated(state_vector: bytes, update: bytes) -> bool:
    """Whether a document with `state_vector` holds every struct `update` carries (False: part of
    it waits in the document for updates it depends on). The diff of the update against the state
    vector then starts with zero clients. (Deletes of missing items are not detected: they need an
    update that depends on one not yet stored, which in-order clients never send.)"""
    return pycrdt.get_update(update, state_vector)[:1] == b"\x00"


def render_text(state: bytes, root: str) -> str:
    doc = Doc()
    doc.apply_update(state)
    return str(doc.get(root, type=Text))


def render_json(state: bytes, root: str, kind: str) -> Any:
    doc = Doc()
    doc.apply_update(state)
    shared = doc.get(root, type=Map if kind == "map" else Array)
    return shared.to_py()
