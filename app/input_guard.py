"""Everything a client sends is checked once, where it comes in, so no resolver, renderer or
database ever meets a value it cannot carry.

- JSON bodies and WebSocket messages are decoded by `decode`: what does not parse (invalid
  UTF-8, nesting past the parser's recursion limit) is malformed (BAD_REQUEST, or close 4400).
- `check` walks decoded variables (and any JSON taken from a client) without recursion: numbers
  that JSON cannot carry (NaN, Infinity, 1e400, which Python's decoder accepts), integers of more
  than MAX_INT_DIGITS digits, text holding U+0000 (PostgreSQL stores neither it in text nor in
  jsonb) or an unpaired surrogate (no UTF-8 encoding exists), and values nested deeper than
  MAX_DEPTH are VALIDATION_ERROR, naming the path of the value.
- app/graphql/literals.py applies the same limits to literals written in a GraphQL document.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from app.errors import BadRequest, ValidationFailed

MAX_DEPTH = 32  # of lists and objects in one value: real inputs (metadata, presence) nest a few levels
MAX_INT_DIGITS = 100  # graphql Int is 32-bit; JSON values carry no meaningful integer this long
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


NOT_FINITE = "numbers must be finite (no NaN or Infinity)"
TOO_LONG = f"integers may be at most {MAX_INT_DIGITS} digits long"
UNSTORABLE_TEXT = "text may not contain U+0000 or unpaired surrogates"
TOO_DEEP = f"values may be nested at most {MAX_DEPTH} levels deep"


class _Unrepresentable:
    """What the decoder puts where a number JSON cannot carry was written; `check` refuses it
    (so the refusal names the variable, rather than the whole request failing to parse)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_int(text: str) -> int | _Unrepresentable:
    # Python refuses to convert more than 4,300 digits (a ValueError mid-decode): stop far earlier.
    return int(text) if len(text) <= MAX_INT_DIGITS + 1 else _Unrepresentable(TOO_LONG)


# (1e400 decodes to an infinite float, which `check` refuses like NaN)
_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_constant=lambda _: _Unrepresentable(NOT_FINITE))


def decode(data: str | bytes) -> Any:
    """A JSON text as Python values (numbers JSON cannot carry are left for `check` to refuse);
    BAD_REQUEST if it is not JSON."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return _DECODER.decode(text)
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    except RecursionError:
        raise BadRequest("the JSON is nested too deeply") from None
    except ValueError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None


def problem(value: Any) -> str | None:
    """Why `value` may not come in, or None. One pass over it, without recursion."""
    # Most values are one scalar (a cursor move's id and coordinates): answered without the walk.
    kind = type(value)
    if kind is str:
        return UNSTORABLE_TEXT if UNSTORABLE.search(value) is not None else None
    if kind is float:
        return None if math.isfinite(value) else NOT_FINITE
    if value is None or kind is int or kind is bool:
        return None
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item) is not None:
                return UNSTORABLE_TEXT
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return TOO_DEEP
            if isinstance(item, dict):
                for key, child in item.items():
                    if UNSTORABLE.search(key) is not None:
                        return UNSTORABLE_TEXT
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return NOT_FINITE
        elif isinstance(item, _Unrepresentable):
            return item.reason
    return None


def check(value: Any, field: str) -> None:
    """Raise VALIDATION_ERROR (with `field`) if `value` may not come in."""
    reason = problem(value)
    if reason is not None:
        raise ValidationFailed(f"{field}: {reason}", field=field)


def check_variables(variables: Any) -> None:
    """Check each variable of an operation; the error names the first bad one."""
    if isinstance(variables, dict):
        for name, value in variables.items():
            if UNSTORABLE.search(name) is not None:  # (a name that is not text cannot be quoted back)
                raise ValidationFailed(f"variables: {UNSTORABLE_TEXT}", field="variables")
            reason = problem(value)
            if reason is not None:
                raise ValidationFailed(f"{name}: {reason}", field=name)


def check_request(variables: Any, operation_name: Any, extensions: Any) -> None:
    """Everything of an operation request besides its document (whose literals the GraphQL
    validation checks, see app/graphql/literals.py)."""
    check_variables(variables)
    if operation_name is not None:
        check(operation_name, "operationName")
    if extensions:
        check(extensions, "extensions")


def loads_checked(text: str | bytes, field: str) -> Any:
    """A JSON text taken from a client inside some other payload (an awareness state):
    VALIDATION_ERROR if it does not parse or holds what `check` refuses."""
    try:
        value = decode(text)
    except BadRequest as error:
        raise ValidationFailed(f"{field}: {error.message}", field=field) from None
    check(value, field)
    return value
