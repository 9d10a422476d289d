"""The durable log's writer: every acknowledged update goes through here.

It runs on every edit, so it skips what costs most per statement: it holds one connection of its
own and talks to the driver directly (asyncpg, or aiosqlite), with two hand-written statements.
Measured on this machine, an append through an ORM session cost 1.6 ms of CPU; here 0.3-0.4 ms.
Values are converted with SQLAlchemy's own bind processors, so what is stored is exactly what the
ORM would store. Appends that arrive together are written in one transaction (group commit), in
document order, so two processes never take the same row locks in opposite orders.

Per append: `UPDATE documents ... RETURNING last_seq` takes the next sequence number and checks
that the document exists, is not in the trash and stays within its size limit; the row lock it
takes is held until the commit, so numbers are handed out in commit order in every process.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import Uuid
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.types import UTCDateTime, utcnow
from app.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

MAX_BATCH = 256

_SQL = {
    "postgresql": {
        # One statement per append: the number is taken and the row written in one round trip.
        "append": (
            "WITH taken AS (UPDATE documents SET last_seq = last_seq + 1, size_bytes = size_bytes + $2,"
            " last_modified_at = $3, last_modified_by_id = COALESCE($4, last_modified_by_id)"
            " WHERE id = $1 AND deleted_at IS NULL AND size_bytes + $2 <= $5 RETURNING last_seq)"
            ' INSERT INTO document_updates (id, document_id, seq, "update", origin, created_at)'
            " SELECT $6, $1, last_seq, $7, $8, $3 FROM taken RETURNING seq"
        ),
        "take": (
            "UPDATE documents SET last_seq = last_seq + 1, size_bytes = size_bytes + $2,"
            " last_modified_at = $3, last_modified_by_id = COALESCE($4, last_modified_by_id)"
            " WHERE id = $1 AND deleted_at IS NULL AND size_bytes + $2 <= $5 RETURNING last_seq"
        ),
        "exists": "SELECT 1 FROM documents WHERE id = $1 AND deleted_at IS NULL",
        "insert": (
            'INSERT INTO document_updates (id, document_id, seq, "update", origin, created_at)'
            " VALUES ($1, $2, $3, $4, $5, $6)"
        ),
    },
    "sqlite": {
        "take": (
            "UPDATE documents SET last_seq = last_seq + 1, size_bytes = size_bytes + ?2,"
            " last_modified_at = ?3, last_modified_by_id = COALESCE(?4, last_modified_by_id)"
            " WHERE id = ?1 AND deleted_at IS NULL AND size_bytes + ?2 <= ?5 RETURNING last_seq"
        ),
        "exists": "SELECT 1 FROM documents WHERE id = ?1 AND deleted_at IS NULL",
        "insert": (
            'INSERT INTO document_updates (id, document_id, seq, "update", origin, created_at)'
            " VALUES (?, ?, ?, ?, ?, ?)"
        ),
    },
}


# A row the database (or its driver) refuses: only that append is at fault, the others are
# written without it. Anything else (a lock or statement timeout, a server shutting down) would
# fail each retry as slowly, so the whole batch fails at once.
_ROW_REFUSED = (UnicodeError, asyncpg.DataError, sqlite3.DataError)


def _row_refused(error: Exception) -> bool:
    return isinstance(error, _ROW_REFUSED)


@dataclass
class _Append:
    document_id: uuid.UUID
    data: bytes
    origin: str | None
    modified_by_id: uuid.UUID | None
    max_bytes: int
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class LogWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._sql = _SQL[self._dialect]
        self._uuid = Uuid().bind_processor(engine.dialect) or (lambda value: value)
        self._time = UTCDateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect)
        self._queue: deque[_Append] = deque()
        self._task: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None

    async def append(
        self,
        document_id: uuid.UUID,
        data: bytes,
        *,
        origin: str | None,
        modified_by_id: uuid.UUID | None,
        max_document_bytes: int,
    ) -> int:
        """Store one update; its sequence number once it is committed. NOT_FOUND if the document
        is gone or in the trash; VALIDATION_ERROR (DOCUMENT_TOO_LARGE) past its size limit."""
        item = _Append(document_id, data, origin, modified_by_id, max_document_bytes)
        self._queue.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await asyncio.shield(item.done)

    async def _run(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
            batch.sort(key=lambda item: item.document_id.bytes)
            try:
                outcomes = await self._write_isolated(batch)
            except BaseException:  # cancelled (shutdown): nobody is acknowledged
                await self._drop_connection()
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(RuntimeError("the document log is shutting down"))
                raise
            for item, outcome in outcomes:
                if isinstance(outcome, Exception):
                    item.done.set_exception(outcome)
                else:
                    item.done.set_result(outcome)

    async def _write_isolated(self, batch: list[_Append]) -> list[tuple[_Append, int | Exception]]:
        """Group commit, but one append's failure never fails another's: when a batch fails as a
        whole (one row the database refuses aborts its transaction), each append is retried on
        its own, so only the faulty one fails (a dead database fails each, quickly)."""
        try:
            return await self._write(batch)
        except Exception as error:
            await self._drop_connection()
            if len(batch) == 1 or not _row_refused(error):
                # (a lost connection may have committed the batch: retrying could store it twice)
                return [(item, error) for item in batch]
        log.info("a group commit of %d appends failed; writing them one by one", len(batch))
        outcomes: list[tuple[_Append, int | Exception]] = []
        for item in batch:
            try:
                outcomes += await self._write([item])
            except Exception as error:
                await self._drop_connection()
                outcomes.append((item, error))
        return outcomes

    async def _driver(self) -> Any:
        if self._connection is None:
            self._connection = await self._engine.connect()
        raw = await self._connection.get_raw_connection()
        return raw.driver_connection

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.invalidate()
                await connection.close()
            except Exception:
                log.debug("closing the log writer's connection failed", exc_info=True)

    async def _write(self, batch: list[_Append]) -> list[tuple[_Append, int | Exception]]:
        driver = await self._driver()
        now = self._time(utcnow()) if self._time else utcnow()
        if self._dialect == "postgresql":
            return await self._write_postgresql(driver, batch, now)
        return await self._write_sqlite(driver, batch, now)

    def _refusal(self, item: _Append, exists: bool) -> Exception:
        if not exists:
            return NotFound("document")
        return ValidationFailed(
            f"the document would exceed its size limit of {item.max_bytes} bytes"
            " (compaction may free space: retry in a few seconds)",
            field="update",
            reason="DOCUMENT_TOO_LARGE",
        )

    async def _write_postgresql(
        self, driver: Any, batch: list[_Append], now: Any
    ) -> list[tuple[_Append, int | Exception]]:
        async def append(item: _Append) -> int | Exception:
            seq = await driver.fetchval(
                self._sql["append"],
                item.document_id,
                len(item.data),
                now,
                item.modified_by_id,
                item.max_bytes,
                uuid.uuid4(),
                item.data,
                item.origin,
            )
            if seq is not None:
                return int(seq)
            exists = await driver.fetchval(self._sql["exists"], item.document_id) is not None
            return self._refusal(item, exists)

        if len(batch) == 1:  # a statement on its own commits on its own: one round trip
            return [(batch[0], await append(batch[0]))]
        async with driver.transaction():
            return [(item, await append(item)) for item in batch]

    async def _write_sqlite(
        self, driver: Any, batch: list[_Append], now: Any
    ) -> list[tuple[_Append, int | Exception]]:
        # Each call crosses to aiosqlite's thread: as few as possible (the UPDATE opens the
        # transaction implicitly; execute_fetchall is execute + fetch + close in one).
        outcomes: list[tuple[_Append, int | Exception]] = []
        rows = []
        to_id = self._uuid
        try:
            if driver.isolation_level is None:  # autocommit: the transaction must be opened by hand
                await driver.execute("BEGIN IMMEDIATE")
            for item in batch:
                document_id = to_id(item.document_id)
                modified_by = to_id(item.modified_by_id) if item.modified_by_id is not None else None
                taken = await driver.execute_fetchall(
                    self._sql["take"], (document_id, len(item.data), now, modified_by, item.max_bytes)
                )
                if not taken:
                    exists = bool(await driver.execute_fetchall(self._sql["exists"], (document_id,)))
                    outcomes.append((item, self._refusal(item, exists)))
                    continue
                seq = int(next(iter(taken))[0])
                rows.append((to_id(uuid.uuid4()), document_id, seq, item.data, item.origin, now))
                outcomes.append((item, seq))
            if rows:
                await driver.executemany(self._sql["insert"], rows)
            await driver.commit()
        except BaseException:
            await driver.rollback()
            raise
        return outcomes

    async def stop(self) -> None:
        if self._task is not None:
            await asyncio.wait([self._task], timeout=10)
        await self._drop_connection()
