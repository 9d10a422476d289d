"""Rights held by open connections follow every change made to them.

A WebSocket connection memoizes its room and document authorizations (cursor moves arrive 20
times a second) and its streams were authorized once, when they opened. Every change that may
take a right away (a member removed or demoted, a room's access or password changed, an API
key's scopes narrowed or its origins changed) reaches every process through a hub announcement,
and each process then:

- bumps its `AccessEpoch`: memoized authorizations made before are checked again on their next
  use. A room's change (its access, its password, even its metadata) only concerns that room's
  authorizations, and rooms change often: each room has its own counter. A member's or a key's
  change is rare and concerns any room: it bumps the counter of all of them.
- re-runs the authorization of each stream the change may concern (`recheck_streams`): a stream
  that is refused now ends with the error a new subscription would get (FORBIDDEN, NOT_FOUND).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from app.errors import DomainError

log = logging.getLogger(__name__)


MAX_ROOM_EPOCHS = 10_000  # rooms changed since the last global bump, remembered at most


class AccessEpoch:
    __slots__ = ("room_changes", "rooms", "value")

    def __init__(self) -> None:
        self.value = 0  # every authorization
        self.rooms: dict[str, int] = {}  # room id -> the authorizations in that room
        self.room_changes = 0  # how many room bumps ever (a check that spans one is not trusted)

    def bump(self) -> None:
        self.value += 1
        self.rooms.clear()  # (all are outdated anyway)

    def bump_room(self, room_id: str) -> None:
        self.room_changes += 1
        if len(self.rooms) >= MAX_ROOM_EPOCHS:
            self.bump()  # bounded memory: forgetting which rooms changed outdates them all
        self.rooms[room_id] = self.rooms.get(room_id, 0) + 1


async def recheck_streams(streams: Iterable[Any]) -> int:
    """Authorize each live stream again; end those refused now. Answers how many ended."""
    ended = 0
    for stream in list(streams):
        if stream.ended or stream.recheck is None:
            continue
        try:
            await stream.recheck()
        except DomainError as error:
            stream.fail(error)
            ended += 1
        except Exception:
            # The check itself failed (the database is down): keep the stream; the next change
            # or reconnect checks again.
            log.warning("rechecking a stream's rights failed", exc_info=True)
    return ended


class Rechecks:
    """Rechecks running in the background (started from announcement callbacks, which must not
    block), stopped with the app."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[int]] = set()

    def spawn(self, streams: Iterable[Any]) -> None:
        chosen = list(streams)
        if chosen:
            task = asyncio.ensure_future(recheck_streams(chosen))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
