"""Per-request (HTTP) or per-connection (WebSocket) GraphQL context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.websockets import WebSocket

from app.graphql.loaders import Loaders
from app.state import AppState


@dataclass
class Context:
    state: AppState
    request: Request | WebSocket
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @cached_property
    def loaders(self) -> Loaders:
        # One set per HTTP request. A WebSocket context lives as long as its connection, so
        # subscriptions must build fresh loaders per event rather than use this cache.
        return Loaders(self.state.session_factory)

    def session(self) -> AsyncSession:
        """A short read session; use `async with`. Writes go through a UnitOfWork."""
        return self.state.session_factory()


def request_id_for(request: Request | WebSocket) -> str:
    supplied = request.headers.get("x-request-id", "")
    return supplied if 8 <= len(supplied) <= 64 and supplied.isascii() else uuid.uuid4().hex


Info = strawberry.Info[Context, None]
