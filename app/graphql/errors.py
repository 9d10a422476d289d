"""Give every GraphQL error an `extensions.code`; mask unexpected ones behind a request id."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from app.errors import DomainError, ErrorCode

log = logging.getLogger("syncforge.graphql")

INTERNAL_MESSAGE = "Internal server error"
REQUEST_ERRORS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)
TOO_DEEP_MESSAGE = "the operation is nested too deeply (fragments or values)"


def has_code(error: GraphQLError) -> bool:
    return bool(error.extensions) and "code" in error.extensions


def code_all(errors: list[GraphQLError], request_id: str) -> list[GraphQLError]:
    """Every error coded; those already coded are kept as they are (and logged only once)."""
    return [error if has_code(error) else coded_error(error, request_id) for error in errors]


def coded_error(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    extensions: dict[str, Any] = dict(error.extensions or {})
    message = error.message
    if "code" in extensions:
        pass
    elif isinstance(original, DomainError):
        extensions.update(original.extensions)
        extensions["code"] = original.code.value
    elif original is None or isinstance(original, GraphQLError):
        # Raised by graphql-core itself: the document, a variable or an argument is wrong.
        extensions["code"] = _request_error_code(message)
    elif isinstance(original, REQUEST_ERRORS):
        # The request names no operation it holds, none at all, or a kind this transport refuses.
        extensions["code"] = ErrorCode.BAD_REQUEST.value
    elif isinstance(original, RecursionError) and not error.path:
        # Parsing or validating a document nested past the interpreter's stack (a long chain of
        # fragments, deeply nested literals): the document is at fault, not the server.
        message = TOO_DEEP_MESSAGE
        extensions["code"] = ErrorCode.GRAPHQL_VALIDATION_FAILED.value
    else:
        log.error(
            "unexpected error in %s (request %s)",
            ".".join(str(p) for p in error.path or ()) or "operation",
            request_id,
            exc_info=original,
        )
        message = INTERNAL_MESSAGE
        extensions["code"] = ErrorCode.INTERNAL_ERROR.value
    extensions["requestId"] = request_id
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original if isinstance(original, DomainError) else None,
        extensions=extensions,
    )


def _request_error_code(message: str) -> str:
    if message.startswith("Syntax Error"):
        return ErrorCode.GRAPHQL_PARSE_FAILED.value
    if message.startswith("Variable "):
        return ErrorCode.VALIDATION_ERROR.value
    return ErrorCode.GRAPHQL_VALIDATION_FAILED.value


class CodedErrors(SchemaExtension):
    """Runs after each operation (and each subscription event) and rewrites its errors."""

    def _request_id(self) -> str:
        context = self.execution_context.context
        return getattr(context, "request_id", None) or "unknown"

    def _process(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = code_all(errors, self._request_id())  # type: ignore[attr-defined]

    def on_stream_result(self, result: object) -> Iterator[None]:
        # Each event of a subscription (and its errors) passes here before it is sent.
        self._process(result)
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        result_errors = list(getattr(execution.result, "errors", None) or ())
        self._process(execution.result)
        if execution.pre_execution_errors:
            # Usually the very errors of the result (Strawberry keeps both): coded once, logged once.
            coded_errors = getattr(execution.result, "errors", None) or ()
            coded = dict(zip(map(id, result_errors), coded_errors, strict=False))
            request_id = self._request_id()
            execution.pre_execution_errors = [
                coded.get(id(error)) or code_all([error], request_id)[0]
                for error in execution.pre_execution_errors
            ]
