"""The graphql-transport-ws side of a hot stream: errors written as an executed operation's."""

from __future__ import annotations

import json

from graphql import FieldNode, GraphQLError

from app.graphql.errors import coded_error
from app.realtime.stream import Stream


def error_payload(error: Exception, nodes: list[FieldNode], path: list[str], request_id: str) -> str:
    """`{"data":null,"errors":[...]}` with the same coded error an executed operation would give."""
    graphql_error = GraphQLError(str(error), nodes=nodes, path=path, original_error=error)
    formatted = coded_error(graphql_error, request_id).formatted
    return json.dumps({"data": None, "errors": [formatted]}, separators=(",", ":"))


class FastStream(Stream):
    __slots__ = ()

    def error_text(self, error: Exception) -> str:
        return error_payload(error, [], [self.response_key], self.request_id)
