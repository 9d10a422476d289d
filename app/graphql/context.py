"""Per-request (HTTP) or per-connection (WebSocket) GraphQL context."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.websockets import WebSocket

from app.accounts.sessions import ClientInfo
from app.auth.policy import Policy
from app.auth.principal import Anonymous, Principal
from app.db import UnitOfWork, reading_session
from app.errors import BadRequest, DomainError
from app.graphql.loaders import Loaders
from app.graphql.ws.keepalive import KeepAlive
from app.realtime.connection_limits import ConnectionLimits
from app.realtime.credential_watch import Watched
from app.realtime.outbox import Outbox
from app.state import AppState


@dataclass
class Context:
    state: AppState
    request: Request | WebSocket
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    principal: Principal = field(default_factory=Anonymous)
    # A credential that failed: every operation of this request answers with this error.
    auth_error: DomainError | None = None
    # Set by Strawberry to the `connection_init` payload on WebSocket connections.
    connection_params: dict[str, Any] | None = None
    # WebSocket only: the rooms this connection is present in (room id -> its presence handle).
    presence: dict[str, Any] = field(default_factory=dict)
    keepalive: KeepAlive | None = None  # WebSocket only: its entry in the pinger
    credential: Watched | None = None  # WebSocket only: closes the connection when it lapses
    outbox: Outbox | None = None  # WebSocket only: every frame the connection sends
    # WebSocket only: rooms already authorized on this connection (see app/realtime/room_access.py).
    room_tickets: dict[Any, Any] = field(default_factory=dict)
    connection_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    cursor_rooms: set[str] | None = None  # rooms this connection moved a cursor in (WebSocket)
    # WebSocket only: documents this connection sent awareness to (removed when it ends).
    awareness_documents: set[str] = field(default_factory=set)
    streams: dict[str, Any] = field(default_factory=dict)  # WebSocket only: its live fast streams
    limits: ConnectionLimits | None = None  # WebSocket only: what it may push into its rooms

    @cached_property
    def loaders(self) -> Loaders:
        # One set per HTTP request. A WebSocket context lives as long as its connection, so
        # subscriptions must build fresh loaders per event rather than use this cache.
        return Loaders(self.state.session_factory)

    @property
    def policy(self) -> Policy:
        # A fresh policy per access on WebSockets: membership changes apply to the next operation.
        if isinstance(self.request, WebSocket):
            return Policy(self.principal, self.state.session_factory)
        return self._request_policy

    @cached_property
    def _request_policy(self) -> Policy:
        return Policy(self.principal, self.state.session_factory)

    def spend(self, kind: str) -> None:
        """One message of `kind` pushed into a room (WebSocket: RATE_LIMITED past the connection's
        limit; over HTTP each request already counts against the IP and key limits)."""
        if self.limits is not None:
            self.limits.take(kind)

    @property
    def client(self) -> ClientInfo:
        return ClientInfo(ip=client_ip(self.request), user_agent=self.request.headers.get("user-agent"))

    @property
    def websocket(self) -> WebSocket:
        """The connection, for operations that only make sense on one (presence, cursors)."""
        if not isinstance(self.request, WebSocket):
            raise BadRequest("this operation runs over the WebSocket connection (graphql-transport-ws)")
        return self.request

    @property
    def websocket_or_none(self) -> WebSocket | None:
        return self.request if isinstance(self.request, WebSocket) else None

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session to read with; use `async with`. Inside a unit of work it is the unit's own
        (no second pooled connection while one is held). Writes go through a UnitOfWork."""
        return reading_session(self.state.session_factory)

    def unit_of_work(self) -> UnitOfWork:
        return self.state.unit_of_work()


def client_ip(request: Request | WebSocket) -> str:
    return request.client.host if request.client else "unknown"


def request_id_for(request: Request | WebSocket) -> str:
    supplied = request.headers.get("x-request-id", "")
    return supplied if 8 <= len(supplied) <= 64 and supplied.isascii() else uuid.uuid4().hex


Info = strawberry.Info[Context, None]
