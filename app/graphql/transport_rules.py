"""Operations a transport cannot carry are refused with a coded error, not executed."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from app.errors import ErrorCode


class SubscriptionsNeedWebSocket(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.SUBSCRIPTION and not isinstance(
            getattr(context.context, "request", None), WebSocket
        ):
            # A result set before execution makes Strawberry skip executing the operation.
            context.result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        "Subscriptions run over WebSocket (graphql-transport-ws) at /graphql",
                        extensions={"code": ErrorCode.BAD_REQUEST.value},
                    )
                ],
            )
        yield
