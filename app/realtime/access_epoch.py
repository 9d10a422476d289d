"""Rights held by open connections follow every change made to them.

A WebSocket connection memoizes its room and document authorizations (cursor moves arrive 20
times a second) and its streams were authorized once, when they opened. Every change that may
take a right away (a member removed or demoted, a room's access or password changed, an API
key's scopes narrowed or its origins changed) reaches every process through a hub announcement,
and each process then:

- bumps its `AccessEpoch`: every memoized authorization made before is checked again on its next
  use (one counter, not an index of who holds what: changes are rare, checks cheap);
- re-runs the authorization of each stream the change may concern (`recheck_streams`): a stream
  that is refused now ends with the error a new subscription would get (FORBIDDEN, NOT_FOUND).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from app.errors import DomainError

log = logging.getLogger(__name__)


class AccessEpoch:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1


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
