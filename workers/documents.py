"""Document jobs: compaction of the durable log into the stored state."""

from __future__ import annotations

import asyncio
import logging
import uuid

from app.documents.compaction import Compacted, compact
from workers.registry import job
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

LOCK_RETRIES = 3  # another compaction of the document is running: wait for it, then do the rest


@job(queue="documents", max_retries=5)
async def compact_document(runtime: WorkerRuntime, document_id: str) -> int | None:
    settings = runtime.settings
    for attempt in range(LOCK_RETRIES):
        async with runtime.unit_of_work() as uow:
            done = await compact(
                uow.session,
                uuid.UUID(document_id),
                snapshot_interval_s=settings.document_snapshot_interval_s,
                max_auto_snapshots=settings.document_max_auto_snapshots,
            )
        if done is None:
            return None  # nothing to compact (or the document is gone)
        if isinstance(done, Compacted):
            log.info(
                "document %s: compacted %d updates up to seq %d (version %d, %d bytes)",
                document_id,
                done.merged_updates,
                done.seq,
                done.version,
                done.state_bytes,
            )
            return done.seq
        if attempt + 1 < LOCK_RETRIES:
            await asyncio.sleep(0.5)
    return None
