"""One transaction per mutation, job or websocket message, with callbacks that run after commit.

Services flush and never commit; the caller owns the transaction. Publishing to the hub and enqueueing
jobs are registered with `on_commit`, so nothing is announced that was rolled back. A unique constraint
violated at a flush or at the commit (a concurrent writer took the value after a service checked it)
leaves as CONFLICT naming the field, like the service's own check would have answered.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.unique import unique_conflict

log = logging.getLogger(__name__)

CommitCallback = Callable[[], Awaitable[None] | None]


class UnitOfWork:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._callbacks: list[CommitCallback] = []
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    def on_commit(self, callback: CommitCallback) -> None:
        self._callbacks.append(callback)

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._session_factory()
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
            await self.session.close()
            self._session = None

    async def commit(self) -> None:
        try:
            await self.session.commit()
        except IntegrityError as error:
            conflict = unique_conflict(error)
            if conflict is None:
                raise
            raise conflict from error
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            # A failing callback must not undo or hide the commit that already happened.
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_commit callback failed")
