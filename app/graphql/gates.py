"""Checks before execution: a failed credential, or an operation the transport cannot carry,
answers with a coded error instead of running the operation."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from app.errors import ErrorCode


class Gates(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        error: GraphQLError | None = None
        auth_error = getattr(context, "auth_error", None)
        if auth_error is not None:
            error = GraphQLError(
                auth_error.message,
                original_error=auth_error,
                extensions={**auth_error.extensions, "code": auth_error.code.value},
            )
        elif execution.operation_type is OperationType.SUBSCRIPTION and not isinstance(
            getattr(context, "request", None), WebSocket
        ):
            error = GraphQLError(
                "Subscriptions run over WebSocket (graphql-transport-ws) at /graphql",
                extensions={"code": ErrorCode.BAD_REQUEST.value},
            )
        if error is not None:
            # A result set before execution makes Strawberry skip executing the operation.
            execution.result = ExecutionResult(data=None, errors=[error])
        yield
