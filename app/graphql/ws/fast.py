"""Hot operations served over graphql-transport-ws without executing GraphQL per message.

A domain declares its hot root fields here: mutations sent many times a second on a socket
(cursor moves, broadcast events, presence updates) and subscriptions fanned out to many
receivers (cursors, presence, room events). The WebSocket handler recognises documents whose
single root field is one of them (see plans.py) and calls these directly, with the arguments
coerced by graphql-core once per message; the Strawberry resolvers of the same fields call the
same functions, so both paths behave alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.errors import BadRequest

if TYPE_CHECKING:
    from app.graphql.context import Context
    from app.realtime.stream import Stream

# Hot operations are one root field with a small selection: the largest a client sends (presence
# with its users, joins, leaves and updates) is ~0.5 KiB. Larger documents are not planned.
MAX_PLAN_QUERY_BYTES = 8 << 10


@dataclass(frozen=True)
class FastMutation:
    """`counts_as_request`: whether each call counts against the IP and API key limits, like a
    request over HTTP. Continuous streams of updates (cursor moves, presence, document and
    awareness updates) do not (a per-minute request budget cannot carry them): those that fan out
    to a room spend the connection's own limits instead (app/realtime/connection_limits.py).
    `http`: also served this way over HTTP POST (app/graphql/view.py), for mutations backends
    call at a high rate (end-user tokens)."""

    field: str  # the root field's GraphQL name
    run: Callable[[Context, dict[str, Any]], Awaitable[Any]]  # arguments by GraphQL name
    counts_as_request: bool = True
    http: bool = False


@dataclass(frozen=True)
class FastSubscription:
    """`open` authorizes, registers the stream with its feed and sends any first event; it
    raises a DomainError to refuse. The feed renders `event_type` through the stream's renderer.
    `authorize` is the check `open` starts with, on its own: it runs again whenever a right the
    stream may depend on changes (membership, room access, key scopes), and a refusal ends the
    stream with its error. `splice`: list fields of the event type from which each receiver's
    own items are left out."""

    field: str
    event_type: str
    open: Callable[[Context, dict[str, Any], Stream], Awaitable[None]]
    authorize: Callable[[Context, dict[str, Any]], Awaitable[object]]
    splice: tuple[str, ...] = ()


@dataclass
class FastFields:
    mutations: dict[str, FastMutation]
    subscriptions: dict[str, FastSubscription]

    @classmethod
    def of(cls, *fields: FastMutation | FastSubscription) -> FastFields:
        return cls(
            mutations={f.field: f for f in fields if isinstance(f, FastMutation)},
            subscriptions={f.field: f for f in fields if isinstance(f, FastSubscription)},
        )


def unserved(context: Context, over_http: str) -> Exception:
    """What the schema's stand-in resolver of a hot subscription raises: hot subscriptions are
    only served by the WebSocket handler, from a planned document (see plans.py)."""
    if context.websocket_or_none is None:
        return BadRequest(over_http)
    return BadRequest(
        "this subscription is served from a document with this one root field (no @skip or"
        f" @include on it) of at most {MAX_PLAN_QUERY_BYTES} bytes",
        reason="NOT_PLANNED",
    )
