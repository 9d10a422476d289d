"""Who is in which room: in memory (one process) or in Redis (shared by every API process).

Redis layout (prefixed with the deployment namespace):
  presence:room:{room}     hash  entry id -> entry JSON (user, info, status, metadata, process, last_seen)
  presence:leaving:{room}  hash  user id -> an entry of theirs in its grace period (to take over)
  presence:rooms           set   rooms that have entries (for the reaper)
  presence:proc:{id}       key   a process's heartbeat, with a TTL: gone means the process died
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import redis.asyncio as aioredis


@dataclass(slots=True)
class PresenceEntry:
    entry_id: str  # stable across a reconnect within the grace period
    user_id: str
    info: dict[str, Any]
    status: str
    presence: dict[str, Any]
    joined_at: float
    process_id: str
    last_seen: float = field(default_factory=time.time)
    ttl_s: float = 30.0
    leaving_at: float | None = None
    version: int = 0  # bumped by each published change: feeds ignore what is older than they hold

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> PresenceEntry:
        return cls(**json.loads(raw))


class PresenceRegistry(Protocol):
    async def put(self, room: str, entry: PresenceEntry) -> None: ...
    async def get(self, room: str, entry_id: str) -> PresenceEntry | None: ...
    async def remove(
        self, room: str, entry_id: str, *, only_leaving: bool = False
    ) -> PresenceEntry | None: ...
    async def mark_leaving(self, room: str, entry: PresenceEntry) -> None: ...
    async def take_leaving(self, room: str, user_id: str) -> PresenceEntry | None: ...
    async def has_leaving(self, room: str, user_id: str) -> bool: ...
    async def entries(self, room: str) -> list[PresenceEntry]: ...
    async def count(self, room: str) -> int: ...
    async def rooms(self) -> list[str]: ...
    async def heartbeat(self, process_id: str, ttl_s: float) -> None: ...
    async def live_processes(self, process_ids: set[str]) -> set[str]: ...
    async def acquire_reaper(self, process_id: str, ttl_s: float) -> bool: ...


class MemoryPresenceRegistry:
    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, PresenceEntry]] = {}
        self._leaving: dict[str, dict[str, str]] = {}

    async def put(self, room: str, entry: PresenceEntry) -> None:
        # A copy: what callers change later is not what others read until they put it again.
        self._rooms.setdefault(room, {})[entry.entry_id] = replace(entry)

    async def mark_leaving(self, room: str, entry: PresenceEntry) -> None:
        await self.put(room, entry)
        self._leaving.setdefault(room, {})[entry.user_id] = entry.entry_id

    async def take_leaving(self, room: str, user_id: str) -> PresenceEntry | None:
        entry_id = self._leaving.get(room, {}).pop(user_id, None)
        entry = self._rooms.get(room, {}).get(entry_id) if entry_id else None
        return replace(entry) if entry is not None and entry.leaving_at is not None else None

    async def has_leaving(self, room: str, user_id: str) -> bool:
        return user_id in self._leaving.get(room, {})

    async def get(self, room: str, entry_id: str) -> PresenceEntry | None:
        entry = self._rooms.get(room, {}).get(entry_id)
        return replace(entry) if entry is not None else None

    async def remove(self, room: str, entry_id: str, *, only_leaving: bool = False) -> PresenceEntry | None:
        entries = self._rooms.get(room, {})
        found = entries.get(entry_id)
        if found is None or (only_leaving and found.leaving_at is None):
            return None
        entry = entries.pop(entry_id)
        if not entries:
            self._rooms.pop(room, None)
        leaving = self._leaving.get(room)
        if entry is not None and leaving is not None and leaving.get(entry.user_id) == entry_id:
            del leaving[entry.user_id]
            if not leaving:
                del self._leaving[room]
        return entry

    async def entries(self, room: str) -> list[PresenceEntry]:
        # Not copies: these are read (by feeds and the reaper), and `put` stores copies anyway.
        return list(self._rooms.get(room, {}).values())

    async def count(self, room: str) -> int:
        return len(self._rooms.get(room, {}))

    async def rooms(self) -> list[str]:
        return list(self._rooms)

    async def heartbeat(self, process_id: str, ttl_s: float) -> None:
        return None

    async def live_processes(self, process_ids: set[str]) -> set[str]:
        return set(process_ids)  # one process: it is alive

    async def acquire_reaper(self, process_id: str, ttl_s: float) -> bool:
        return True


# Remove an entry (only if leaving, with ARGV[2] = "1"), its grace-period pointer, and the room
# from the set of rooms once empty, in one round trip and atomically. KEYS: room, leaving, rooms.
_REMOVE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local entry = cjson.decode(raw)
if ARGV[2] == '1' and entry.leaving_at == cjson.null then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], entry.user_id) == ARGV[1] then redis.call('HDEL', KEYS[2], entry.user_id) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[3]) end
return raw
"""


class RedisPresenceRegistry:
    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self._redis = client
        self._ns = f"{namespace}:presence"
        self._remove = client.register_script(_REMOVE)

    def _room_key(self, room: str) -> str:
        return f"{self._ns}:room:{room}"

    def _leaving_key(self, room: str) -> str:
        return f"{self._ns}:leaving:{room}"

    async def mark_leaving(self, room: str, entry: PresenceEntry) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._room_key(room), entry.entry_id, entry.to_json())
            pipe.hset(self._leaving_key(room), entry.user_id, entry.entry_id)
            await pipe.execute()

    async def take_leaving(self, room: str, user_id: str) -> PresenceEntry | None:
        # HGET + HDEL in one transaction: of two processes taking the same entry over, one wins.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._leaving_key(room), user_id)
            pipe.hdel(self._leaving_key(room), user_id)
            entry_id, taken = await pipe.execute()
        if not entry_id or not taken:
            return None
        entry = await self.get(room, entry_id.decode())
        return entry if entry is not None and entry.leaving_at is not None else None

    async def has_leaving(self, room: str, user_id: str) -> bool:
        return bool(await self._redis.hexists(self._leaving_key(room), user_id))

    async def put(self, room: str, entry: PresenceEntry) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._room_key(room), entry.entry_id, entry.to_json())
            pipe.sadd(f"{self._ns}:rooms", room)
            await pipe.execute()

    async def get(self, room: str, entry_id: str) -> PresenceEntry | None:
        raw = await self._redis.hget(self._room_key(room), entry_id)
        return PresenceEntry.from_json(raw) if raw else None

    async def remove(self, room: str, entry_id: str, *, only_leaving: bool = False) -> PresenceEntry | None:
        keys = [self._room_key(room), self._leaving_key(room), f"{self._ns}:rooms"]
        raw = await self._remove(keys=keys, args=[entry_id, "1" if only_leaving else "0", room])
        # None: another process removed it first (and publishes the leave), or it was taken over.
        return PresenceEntry.from_json(raw) if raw else None

    async def entries(self, room: str) -> list[PresenceEntry]:
        raw = await self._redis.hvals(self._room_key(room))
        return [PresenceEntry.from_json(value) for value in raw]

    async def count(self, room: str) -> int:
        return int(await self._redis.hlen(self._room_key(room)))

    async def rooms(self) -> list[str]:
        return [room.decode() for room in await self._redis.smembers(f"{self._ns}:rooms")]

    async def heartbeat(self, process_id: str, ttl_s: float) -> None:
        await self._redis.set(f"{self._ns}:proc:{process_id}", "1", px=int(ttl_s * 1000))

    async def live_processes(self, process_ids: set[str]) -> set[str]:
        ids = sorted(process_ids)
        if not ids:
            return set()
        alive = await self._redis.mget([f"{self._ns}:proc:{pid}" for pid in ids])
        return {pid for pid, value in zip(ids, alive, strict=True) if value is not None}

    async def acquire_reaper(self, process_id: str, ttl_s: float) -> bool:
        # One reaper at a time across processes; the lock expires by itself.
        return bool(await self._redis.set(f"{self._ns}:reaper", process_id, nx=True, px=int(ttl_s * 1000)))
