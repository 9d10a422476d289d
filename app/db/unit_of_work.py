"""One transaction per mutation, job or websocket message, with callbacks that run after commit.

Services flush and never commit; the caller owns the transaction. Publishing to the hub and enqueueing
jobs are registered with `on_commit`, so nothing is announced that was rolled back. A unique constraint
violated at a flush or at the commit (a concurrent writer took the value after a service checked it)
leaves as CONFLICT naming the field, like the service's own check would have answered.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.unique import unique_conflict

log = logging.getLogger(__name__)

CommitCallback = Callable[[], Awaitable[None] | None]

# The session of the unit of work the current task is in. A request that holds a pooled connection
# and waits for a second one (to check a role, read a room) deadlocks the pool once as many
# requests do so at once as it has connections: every request of the process then stalls until the
# pool's timeout. Reads made inside a unit of work go through its session instead (see
# `active_session`). The owning task is kept with it: tasks started meanwhile inherit context
# variables, but must never share a session with it (they may run concurrently, or outlive it).
_ACTIVE: ContextVar[tuple[AsyncSession, asyncio.Task[Any] | None] | None] = ContextVar(
    "syncforge_unit_of_work_session", default=None
)


def active_session() -> AsyncSession | None:
    """The session of the unit of work this task is inside, if any, to read through (it sees the
    unit's own changes; never commit or close it)."""
    active = _ACTIVE.get()
    if active is None or active[1] is not asyncio.current_task():
        return None
    return active[0]


@asynccontextmanager
async def reading_session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session to read with: the current unit of work's, or a short one of its own."""
    active = active_session()
    if active is not None:
        yield active
        return
    async with session_factory() as session:
        yield session


class UnitOfWork:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._callbacks: list[CommitCallback] = []
        self._session: AsyncSession | None = None
        self._token: Token[Any] | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    def on_commit(self, callback: CommitCallback) -> None:
        self._callbacks.append(callback)

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._session_factory()
        self._token = _ACTIVE.set((self._session, asyncio.current_task()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self.commit()
            else:
                await self.session.rollback()
                self._callbacks.clear()
                conflict = unique_conflict(exc) if isinstance(exc, IntegrityError) else None
                if conflict is not None:
                    raise conflict from exc
        finally:
            self._release()
            await self.session.close()
            self._session = None

    def _release(self) -> None:
        """Reads stop borrowing this unit's session (its transaction is over)."""
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None

    async def commit(self) -> None:
        try:
            await self.session.commit()
        except IntegrityError as error:
            conflict = unique_conflict(error)
            if conflict is None:
                raise
            raise conflict from error
        self._release()  # what the callbacks read is read afresh
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            # A failing callback must not undo or hide the commit that already happened.
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_commit callback failed")
