"""SyncForgeError: every failure of a call, with the server's `extensions.code`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .generated.exceptions import GraphQLClientError

__all__ = ["SyncForgeError"]


def _number(value: Any) -> float | None:
    """A retry delay as a number of seconds, if `value` holds one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class SyncForgeError(GraphQLClientError):
    """A SyncForge call that failed.

    `code` is the server's `extensions.code` (UNAUTHORIZED, FORBIDDEN, NOT_FOUND, VALIDATION_ERROR,
    RATE_LIMITED, CONFLICT, UNAVAILABLE, INTERNAL_ERROR, BAD_REQUEST, ...) or one the client sets itself:
    NETWORK_ERROR (the server could not be reached), HTTP_ERROR (an HTTP error without a GraphQL answer)
    and INVALID_RESPONSE (an answer that is not GraphQL). `field` names the input at fault
    (VALIDATION_ERROR, CONFLICT), `retry_after` is in seconds (RATE_LIMITED, UNAVAILABLE), `reason`
    details some codes (e.g. FORBIDDEN: ARCHIVED) and `request_id` is the server's log reference.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        extensions: Mapping[str, Any] | None = None,
        path: Sequence[str | int] | None = None,
        status_code: int | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        retry_after: float | str | None = None,
    ) -> None:
        """An error with a code and a message; the rest is what the server said, if anything.

        `retry_after` (seconds, or an HTTP Retry-After value) is used when the extensions give none.
        """
        super().__init__(f"{code}: {message}")
        self.code: str = code
        self.message: str = message
        self.extensions: dict[str, Any] = dict(extensions or {})
        self.path: list[str | int] | None = list(path) if path is not None else None
        self.status_code: int | None = status_code
        # Every error of the answer (the first is this one), as the server sent them.
        self.errors: list[dict[str, Any]] = [dict(error) for error in errors]
        field = self.extensions.get("field")
        self.field: str | None = field if isinstance(field, str) else None
        reason = self.extensions.get("reason")
        self.reason: str | None = reason if isinstance(reason, str) else None
        request_id = self.extensions.get("requestId")
        self.request_id: str | None = request_id if isinstance(request_id, str) else None
        from_extensions = _number(self.extensions.get("retryAfter"))
        self.retry_after: float | None = (
            from_extensions if from_extensions is not None else _number(retry_after)
        )

    @classmethod
    def from_errors(
        cls,
        errors: Sequence[Mapping[str, Any]],
        *,
        status_code: int | None = None,
        retry_after_header: str | None = None,
    ) -> SyncForgeError:
        """The first of a GraphQL answer's `errors` as a SyncForgeError (all of them in `errors`)."""
        first: Mapping[str, Any] = errors[0] if errors and isinstance(errors[0], Mapping) else {}
        extensions = first.get("extensions")
        extensions = extensions if isinstance(extensions, Mapping) else {}
        code = extensions.get("code")
        message = first.get("message")
        path = first.get("path")
        return cls(
            code if isinstance(code, str) else "INTERNAL_ERROR",
            message if isinstance(message, str) else "unknown error",
            extensions=extensions,
            path=path if isinstance(path, list) else None,
            status_code=status_code,
            errors=[error for error in errors if isinstance(error, Mapping)],
            retry_after=retry_after_header,
        )

    def __repr__(self) -> str:
        """The code and message, plus field or retry_after when the server gave them."""
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (("field", self.field), ("retry_after", self.retry_after))
            if value is not None
        )
        return f"SyncForgeError(code={self.code!r}, message={self.message!r}{extra})"
