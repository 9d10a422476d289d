"""API key usage (last_used_at, usage_count) counted in memory and written in batches.

A request never writes: it bumps a counter. A background task (and shutdown) writes one UPDATE per
key that was used since the last flush.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import update
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
            async with self._session_factory() as session:
                for api_key_id, (count, last_used) in pending.items():
                    await session.execute(
                        update(ApiKey)
                        .where(ApiKey.id == api_key_id)
                        .values(usage_count=ApiKey.usage_count + count, last_used_at=last_used)
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
