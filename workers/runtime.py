"""What a job needs at run time: settings and a database engine owned by the worker's event loop."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import UnitOfWork, create_engine, create_session_factory
from app.settings import Settings


class WorkerRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: AsyncEngine | None = None
        self._session_factory: async_sessionmaker[AsyncSession] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def unit_of_work(self) -> UnitOfWork:
        # Dramatiq runs async actors on its own event-loop thread; connections must be made there.
        loop = asyncio.get_running_loop()
        if self._session_factory is None or self._loop is not loop:
            self._engine = create_engine(self.settings)
            self._session_factory = create_session_factory(self._engine)
            self._loop = loop
        return UnitOfWork(self._session_factory)

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._session_factory = None
