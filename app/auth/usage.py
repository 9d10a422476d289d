"""API key usage (last_used_at, usage_count) counted in memory and written in batches.

A request never writes: it bumps a counter. A background task (and shutdown) writes one UPDATE per
key that was used since the last flush.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import ApiKey
from app.db.types import utcnow
from app.periodic_flush import PeriodicFlush

log = logging.getLogger(__name__)


class UsageRecorder(PeriodicFlush):
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        super().__init__(interval_s, "api-key-usage-flush")
        self._session_factory = session_factory
        self._pending: dict[uuid.UUID, tuple[int, datetime]] = {}

    def record(self, api_key_id: uuid.UUID) -> None:
        count, _ = self._pending.get(api_key_id, (0, utcnow()))
        self._pending[api_key_id] = (count + 1, utcnow())

    async def flush(self) -> int:
        """Write what was counted; returns the number of keys updated."""
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            table = ApiKey.__table__  # type: ignore[attr-defined]
            statement = (
                update(table)
                .where(table.c.id == bindparam("key"))
                .values(usage_count=table.c.usage_count + bindparam("count"), last_used_at=bindparam("used"))
            )
            async with self._session_factory() as session:
                # One executemany, in Core: ORM-enabled updates cost more than the writes themselves.
                await session.execute(
                    statement, [{"key": k, "count": c, "used": used} for k, (c, used) in pending.items()]
                )
                await session.commit()
        except Exception:
            # Put the counts back so the next flush retries them.
            for api_key_id, (count, last_used) in pending.items():
                now_count, _ = self._pending.get(api_key_id, (0, last_used))
                self._pending[api_key_id] = (now_count + count, last_used)
            log.exception("flushing API key usage failed")
            return 0
        return len(pending)
