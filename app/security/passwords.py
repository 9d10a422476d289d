"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106).

A hash or a verification costs tens of milliseconds of CPU and 64 MiB: never on the event loop
(it would stall every socket of the process for that long: a burst of sign-ins from anywhere froze
the realtime streams of everyone), and at most HASHING_CONCURRENCY at once (a burst queues rather
than taking every thread and that much memory each).
"""

from __future__ import annotations

import asyncio
import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHING_CONCURRENCY = max(1, os.cpu_count() or 1)

_hasher = PasswordHasher()
# Verified against when no account matches, so a miss costs as much time as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-same-cost")
_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        for closed in [other for other in _slots if other.is_closed()]:
            del _slots[closed]
        slot = _slots[loop] = asyncio.Semaphore(HASHING_CONCURRENCY)
    return slot


async def hash_password(password: str) -> str:
    async with _slot():
        return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    async with _slot():
        return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
