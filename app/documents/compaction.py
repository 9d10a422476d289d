"""Compaction: the durable log of a document merged into its stored state.

A job (workers/documents.py) runs it a debounce after the last edit. It reads the stored state
and the log after it, merges them, writes the new state with the log position it includes, bumps
the version and deletes the merged rows, in one transaction. At most one runs per document at a
time: a PostgreSQL advisory lock across processes, a lock per process on SQLite (one process).
The lock lasts until the caller's transaction ends; the write is also guarded by the old log
position, so even a lost race only wastes work.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pycrdt
from pycrdt import Doc
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.types import utcnow
from app.documents import service, yjs
from app.documents.models import Document, Snapshot, SnapshotType

_local_locks: set[uuid.UUID] = set()
_local_guard = threading.Lock()


class Busy:
    """Another compaction of the document holds its lock."""


BUSY = Busy()


@dataclass(frozen=True)
class Compacted:
    seq: int
    version: int
    merged_updates: int
    state_bytes: int
    snapshot_taken: bool


def merge(state: bytes | None, updates: list[bytes]) -> bytes:
    """One update equal to `state` followed by `updates`. Encoded from a Doc (deleted content
    garbage-collected) unless some update waits for one that is missing: pycrdt leaves those out
    of the Doc's encoding, and a merge of the raw updates keeps them."""
    parts = [state, *updates] if state is not None else updates
    doc = Doc()
    for part in parts:
        doc.apply_update(part)
    encoded = doc.get_update()
    doc_state = doc.get_state()
    if all(yjs.integrated(doc_state, part) for part in parts):
        return encoded
    return pycrdt.merge_updates(*parts)


async def _try_lock(session: AsyncSession, document_id: uuid.UUID) -> bool:
    """Held until the caller's transaction ends (commit or rollback)."""
    if session.bind.dialect.name == "postgresql":
        key = document_id.int & ((1 << 63) - 1)
        return bool(
            (await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})).scalar()
        )
    with _local_guard:
        if document_id in _local_locks:
            return False
        _local_locks.add(document_id)

    def release(*_: object) -> None:
        with _local_guard:
            _local_locks.discard(document_id)

    event.listen(session.sync_session, "after_transaction_end", release, once=True)
    return True


async def compact(
    session: AsyncSession,
    document_id: uuid.UUID,
    *,
    snapshot_interval_s: float,
    max_auto_snapshots: int,
) -> Compacted | Busy | None:
    """Compact in the caller's transaction; None if there was nothing to do, BUSY if another
    compaction of this document is running."""
    if not await _try_lock(session, document_id):
        return BUSY
    return await _compact(session, document_id, snapshot_interval_s, max_auto_snapshots)


async def _compact(
    session: AsyncSession, document_id: uuid.UUID, snapshot_interval_s: float, max_auto_snapshots: int
) -> Compacted | None:
    row = (
        await session.execute(
            select(Document.yjs_state, Document.compacted_seq, Document.last_seq, Document.version).where(
                Document.id == document_id
            )
        )
    ).one_or_none()
    if row is None or row.last_seq <= row.compacted_seq:
        return None
    old_state = bytes(row.yjs_state) if row.yjs_state is not None else None
    log = await service.read_log(session, document_id, after=row.compacted_seq, upto=row.last_seq)
    if not log:
        return None
    new_state = merge(old_state, [entry.update for entry in log])
    new_seq = log[-1].seq
    removed = sum(len(entry.update) for entry in log) + len(old_state or b"")
    written = await session.execute(
        update(Document)
        .where(Document.id == document_id, Document.compacted_seq == row.compacted_seq)
        .values(
            yjs_state=new_state,
            yjs_state_vector=pycrdt.get_state(new_state),
            compacted_seq=new_seq,
            version=Document.version + 1,
            size_bytes=Document.size_bytes - removed + len(new_state),
        )
    )
    if not written.rowcount:  # type: ignore[attr-defined]
        return None  # another compaction got there first
    await service.drop_log(session, document_id, upto=new_seq)
    version = row.version + 1
    snapshot = await _auto_snapshot(
        session, document_id, new_state, new_seq, version, snapshot_interval_s, max_auto_snapshots
    )
    return Compacted(new_seq, version, len(log), len(new_state), snapshot)


async def _auto_snapshot(
    session: AsyncSession,
    document_id: uuid.UUID,
    state: bytes,
    seq: int,
    version: int,
    interval_s: float,
    keep: int,
) -> bool:
    """While a document is edited, a snapshot at most every `interval_s`; the oldest automatic
    snapshots beyond `keep` are deleted."""
    if keep <= 0:
        return False
    latest = (
        await session.execute(
            select(func.max(Snapshot.inserted_at)).where(
                Snapshot.document_id == document_id, Snapshot.type == SnapshotType.AUTO
            )
        )
    ).scalar_one_or_none()
    if latest is not None and latest > utcnow() - timedelta(seconds=interval_s):
        return False
    session.add(
        Snapshot(
            document_id=document_id,
            version=version,
            seq=seq,
            yjs_state=state,
            type=SnapshotType.AUTO,
            size_bytes=len(state),
        )
    )
    await session.flush()
    await prune_auto_snapshots(session, document_id, keep)
    return True


async def prune_auto_snapshots(session: AsyncSession, document_id: uuid.UUID, keep: int) -> None:
    ids = (
        await session.execute(
            select(Snapshot.id)
            .where(Snapshot.document_id == document_id, Snapshot.type == SnapshotType.AUTO)
            .order_by(Snapshot.inserted_at.desc(), Snapshot.id.desc())  # type: ignore[attr-defined]
            .offset(keep)
        )
    ).scalars()
    stale = list(ids)
    if stale:
        await session.execute(delete(Snapshot).where(Snapshot.id.in_(stale)))  # type: ignore[attr-defined]
