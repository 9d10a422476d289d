"""Literals written in a GraphQL document meet the limits of app/input_guard.py too.

`validate` checks them first, on their own: the schema's own rules would otherwise convert a
5,000-digit integer literal (Python refuses: a ValueError) or recurse through a deeply nested one
before any refusal is reported. Every document is validated through it (the validation cache and
the WebSocket plan cache).
"""

from __future__ import annotations

import math
from typing import Any

from graphql import (
    SKIP,
    DocumentNode,
    FloatValueNode,
    GraphQLError,
    GraphQLSchema,
    IntValueNode,
    Node,
    StringValueNode,
    ValidationContext,
    ValidationRule,
)
from graphql import validate as graphql_validate
from strawberry.schema.schema import validate_document

from app.errors import ErrorCode
from app.graphql.errors import TOO_DEEP_MESSAGE
from app.input_guard import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    NOT_FINITE,
    TOO_DEEP,
    TOO_LONG,
    UNSTORABLE,
    UNSTORABLE_TEXT,
)


class SafeLiterals(ValidationRule):
    """The same limits for literals written in the document (`moveCursor(x: 1e400)`)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._depth = 0  # of list and object literals around the current node

    def _refuse(self, node: Node, reason: str) -> None:
        self.report_error(GraphQLError(f"invalid literal: {reason}", node))

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if UNSTORABLE.search(node.value) is not None:
            self._refuse(node, UNSTORABLE_TEXT)

    def enter_int_value(self, node: IntValueNode, *_: Any) -> None:
        if len(node.value.lstrip("-")) > MAX_INT_DIGITS:
            self._refuse(node, TOO_LONG)

    def enter_float_value(self, node: FloatValueNode, *_: Any) -> None:
        if not math.isfinite(float(node.value)):
            self._refuse(node, NOT_FINITE)

    def enter_list_value(self, node: Node, *_: Any) -> Any:
        return self._enter_composite(node)

    def enter_object_value(self, node: Node, *_: Any) -> Any:
        return self._enter_composite(node)

    def leave_list_value(self, *_: Any) -> None:
        self._depth -= 1

    def leave_object_value(self, *_: Any) -> None:
        self._depth -= 1

    def _enter_composite(self, node: Node) -> Any:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            self._refuse(node, TOO_DEEP)
            self._depth -= 1
            return SKIP  # its children are not visited, so `leave` is not called for it
        return None


def validate(schema: GraphQLSchema, document: DocumentNode, rules: tuple[Any, ...]) -> list[GraphQLError]:
    """Strawberry's validation (its rules too) once the literals passed; a document nested past
    the interpreter's stack (hundreds of chained fragments) is refused like any invalid one."""
    try:
        errors = graphql_validate(schema, document, [SafeLiterals])
        return errors or validate_document(schema, document, rules)
    except RecursionError:
        return [
            GraphQLError(TOO_DEEP_MESSAGE, extensions={"code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value})
        ]
