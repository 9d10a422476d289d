"""Coded domain errors. Their code reaches GraphQL clients as `extensions.code`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    PLAN_LIMIT_EXCEEDED = "PLAN_LIMIT_EXCEEDED"
    CONFLICT = "CONFLICT"
    ROOM_FULL = "ROOM_FULL"
    SUBSCRIBER_LAGGING = "SUBSCRIBER_LAGGING"
    PRESENCE_EXPIRED = "PRESENCE_EXPIRED"
    DOCUMENT_UNAVAILABLE = "DOCUMENT_UNAVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"  # a dependency (the pub/sub transport) is down: retry shortly
    INTERNAL_ERROR = "INTERNAL_ERROR"
    # GraphQL-level failures: the document does not parse or does not validate against the schema.
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_REQUEST = "BAD_REQUEST"


class DomainError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class Unauthorized(DomainError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, entity: str, **extensions: Any) -> None:
        super().__init__(f"{entity} not found", **extensions)


class ValidationFailed(DomainError):
    code = ErrorCode.VALIDATION_ERROR

    def __init__(self, message: str, *, field: str | None = None, **extensions: Any) -> None:
        if field is not None:
            extensions["field"] = field
        super().__init__(message, **extensions)


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float, **extensions: Any) -> None:
        super().__init__(message, retryAfter=retry_after, **extensions)


class PlanLimitExceeded(DomainError):
    code = ErrorCode.PLAN_LIMIT_EXCEEDED


class BadRequest(DomainError):
    """The operation cannot be carried by this transport or in this state of the connection."""

    code = ErrorCode.BAD_REQUEST


class RoomFull(DomainError):
    code = ErrorCode.ROOM_FULL


class SubscriberLagging(DomainError):
    """A subscription fell so far behind that events were dropped and cannot be resent."""

    code = ErrorCode.SUBSCRIBER_LAGGING


class PresenceExpired(DomainError):
    """A connection's presence was removed by the server (its socket went silent for the room's
    TTL): its `roomPresence` ends with this code, never silently; joining again restores it."""

    code = ErrorCode.PRESENCE_EXPIRED


class DocumentUnavailable(DomainError):
    """A document's stored state does not load: it is not served (never as a blank document,
    which the next edit would then overwrite real data with)."""

    code = ErrorCode.DOCUMENT_UNAVAILABLE


class Unavailable(DomainError):
    """Something the operation needs is down for now (Redis): nothing was done; retry."""

    code = ErrorCode.UNAVAILABLE

    def __init__(self, message: str, *, retry_after: float = 1.0, **extensions: Any) -> None:
        super().__init__(message, retryAfter=retry_after, **extensions)
