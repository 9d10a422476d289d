"""One room's presence as this process knows it, shared by all its local subscribers.

State: loaded from the registry when the room's first local subscriber arrives, then kept by
applying each change once: this process's own changes directly (PresenceService calls `apply`),
other processes' from their per-tick batches on the hub. Entries carry a version bumped by each
published change, so a change that arrives twice or late (a snapshot racing a batch) is ignored.

Delivery is batched per tick (the cursor path is the model). The changes applied since the last
tick are merged per entry (a join then an update is one join; a join then a leave is nothing)
into ONE diff, rendered once per distinct subscription document with every user in spliced
lists; each subscriber gets at most one frame per tick, the same text, with (under `others`) its
own user's items cut out by slicing. Subscribers that are new, or that lost frames because their
socket backed up, get a SYNC at the tick instead of the diff, assembled once per document from
per-user text cached across ticks. A storm of N joins into a room of M thus costs about M frames
per tick, not M * N renders and writes. After a transport reconnect every subscriber gets a SYNC.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.errors import PresenceExpired
from app.realtime.audience import Audience
from app.realtime.presence_registry import PresenceEntry
from app.realtime.redis_backend import RESYNC
from app.realtime.rendering import Items, PayloadRenderer, Template
from app.realtime.stream import Stream
from app.realtime.ticker import Ticker

if TYPE_CHECKING:
    from app.presence.service import PresenceService

log = logging.getLogger(__name__)

MAX_TOMBSTONES = 10_000
# Stands for the receiver's own connection id in a SYNC shared by every new subscriber.
_OWN = "\x00own\x00"
_OWN_JSON = json.dumps(_OWN)
_LISTS = {"join": "joins", "leave": "leaves", "update": "updates"}


@dataclass(slots=True)
class ConnectionView:
    """A PresenceConnection's fields."""

    connection_id: str
    status: str
    presence: dict[str, Any]
    joined_at: datetime


@dataclass(slots=True)
class UserView:
    """A PresenceUser's fields."""

    user_id: str
    info: dict[str, Any]
    connections: list[ConnectionView]


@dataclass(slots=True)
class PresenceEventData:
    """A PresenceEvent's fields."""

    kind: str  # "sync" | "diff"
    connection_id: str | None = None  # the subscriber's own entry (SYNC only)
    users: list[UserView] = field(default_factory=list)
    joins: list[UserView] = field(default_factory=list)
    leaves: list[UserView] = field(default_factory=list)
    updates: list[UserView] = field(default_factory=list)


@dataclass(slots=True)
class _Known:
    version: int
    visible: tuple[str, str, str]
    user_id: str
    info: dict[str, Any]
    view: ConnectionView


@dataclass(slots=True)
class _Change:
    """An entry's net change since the last tick."""

    kind: str  # "join" | "leave" | "update"
    user_id: str
    info: dict[str, Any]
    view: ConnectionView


def _visible(entry: PresenceEntry) -> tuple[str, str, str]:
    """What others see of an entry: a change to none of it is not news."""
    return entry.status, json.dumps(entry.presence, sort_keys=True), json.dumps(entry.info, sort_keys=True)


def _view(entry: PresenceEntry) -> ConnectionView:
    joined = datetime.fromtimestamp(entry.joined_at, UTC)
    return ConnectionView(entry.entry_id, entry.status, entry.presence, joined)


def _merge(previous: _Change | None, change: _Change) -> _Change | None:
    """Two changes of one entry within a tick, as one (None: they cancel out)."""
    if previous is None:
        return change
    if change.kind == "leave":
        return None if previous.kind == "join" else change  # came and went: nobody needs to know
    if previous.kind == "join":
        change.kind = "join"  # joined, then changed: a join with the latest state
    elif previous.kind == "leave":
        change.kind = "update"  # it was there at the last tick, and is again
    return change


class PresenceFeed:
    def __init__(self, service: PresenceService, room_id: str) -> None:
        self.service = service
        self.room_id = room_id
        self.channel = f"presence:{room_id}"
        self.audience = Audience()
        self.entries: dict[str, _Known] = {}
        self.users: dict[str, dict[str, None]] = {}  # user -> their entries, in order of arrival
        self.gone: dict[str, int] = {}  # removed entry -> its last version
        self.owners: dict[str, Stream] = {}  # a local subscriber's own entry -> its stream
        self.pending: dict[str, _Change] = {}  # entry -> its change since the last tick
        self.syncing: dict[Stream, None] = {}  # streams to send a SYNC at the next tick
        self.frames = 0  # presence frames sent (for tests and benchmarks)
        self._texts: dict[str, dict[PayloadRenderer, tuple[str, ...]]] = {}  # user -> rendered
        self._ticker = Ticker(service.tick_s, self.tick)
        self._ready = False
        self._early: list[str] = []
        self._resyncing: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.service.hub.listen(self.channel, self._on_message)
        try:
            snapshot = await self.service.registry.entries(self.room_id)
        except BaseException:
            await self.service.hub.unlisten(self.channel, self._on_message)
            raise
        for entry in snapshot:
            self.apply("join", entry)
        self._ready = True
        early, self._early = self._early, []
        for message in early:
            self._on_message(message)

    async def stop(self) -> None:
        self._ticker.cancel()
        if self._resyncing is not None:
            self._resyncing.cancel()
        await self.service.hub.unlisten(self.channel, self._on_message)

    # ------------------------------------------------------------------ subscribers

    def add(self, stream: Stream, own_entry: str) -> None:
        """`stream.key` is its user with `others`, else None. Its SYNC comes with the next tick."""
        self.owners[own_entry] = stream
        stream.view = own_entry
        stream.on_resync = self.resync_stream
        self.audience.add(stream)
        self.resync_stream(stream)

    def remove(self, stream: Stream) -> None:
        self.audience.remove(stream)
        self.syncing.pop(stream, None)
        if self.owners.get(stream.view) is stream:
            del self.owners[stream.view]

    def resync_stream(self, stream: Stream) -> None:
        """Send `stream` the whole state at the next tick (it skips that tick's diff)."""
        self.syncing[stream] = None
        self._ticker.poke()

    # ------------------------------------------------------------------ changes

    def apply(self, op: str, entry: PresenceEntry) -> None:
        """Apply one change (from this process or another); subscribers hear it at the tick."""
        entry_id = entry.entry_id
        known = self.entries.get(entry_id)
        if op == "leave":
            if known is None:
                self._tombstone(entry_id, entry.version)  # a late join must not bring it back
                return
            self._forget(entry_id, known, max(known.version, entry.version))
            self._pend(entry_id, _Change("leave", known.user_id, known.info, known.view))
            expired = self.owners.pop(entry_id, None)  # its own entry went: the server ended it
            if expired is not None:
                self.remove(expired)
                expired.fail(
                    PresenceExpired(
                        "your presence in this room ended (the connection was silent); join again"
                    )
                )
            return
        if known is not None and entry.version <= known.version:
            return  # an echo, or older than what we have
        if known is None and self.gone.get(entry_id, -1) >= entry.version:
            return  # it left already
        stored = self._store(entry)
        if known is None:
            self._pend(entry_id, _Change("join", entry.user_id, entry.info, stored.view))
        elif known.visible != stored.visible:
            self._pend(entry_id, _Change("update", entry.user_id, entry.info, stored.view))

    def _pend(self, entry_id: str, change: _Change) -> None:
        merged = _merge(self.pending.get(entry_id), change)
        if merged is None:
            del self.pending[entry_id]
        else:
            self.pending[entry_id] = merged  # in its first change's place: joins keep their order
        if self.audience:
            self._ticker.poke()

    def _store(self, entry: PresenceEntry) -> _Known:
        stored = _Known(entry.version, _visible(entry), entry.user_id, entry.info, _view(entry))
        if self.entries.get(entry.entry_id) is None:
            self.users.setdefault(entry.user_id, {})[entry.entry_id] = None
        self.entries[entry.entry_id] = stored
        self._texts.pop(entry.user_id, None)
        return stored

    def _forget(self, entry_id: str, known: _Known, version: int) -> None:
        del self.entries[entry_id]
        entries = self.users.get(known.user_id)
        if entries is not None:
            entries.pop(entry_id, None)
            if not entries:
                del self.users[known.user_id]
        self._texts.pop(known.user_id, None)
        self._tombstone(entry_id, version)

    def _tombstone(self, entry_id: str, version: int) -> None:
        self.gone[entry_id] = max(version, self.gone.get(entry_id, -1))
        if len(self.gone) > MAX_TOMBSTONES:
            del self.gone[next(iter(self.gone))]

    # ------------------------------------------------------------------ ticks

    def tick(self) -> None:
        """Send the SYNCs that are due, then this tick's one diff to every other subscriber (a
        newcomer has its SYNC before the others hear of its join, as it would alone)."""
        changes, self.pending = self.pending, {}
        syncing, self.syncing = self.syncing, {}
        if syncing:
            self._deliver_syncs(syncing)
        if changes and self.audience:
            self._deliver_diff(changes, syncing)

    def _deliver_diff(self, changes: dict[str, _Change], synced: dict[Stream, None]) -> None:
        lists: dict[str, dict[str, UserView]] = {"joins": {}, "leaves": {}, "updates": {}}
        for change in changes.values():
            users = lists[_LISTS[change.kind]]
            user = users.get(change.user_id)
            if user is None:
                users[change.user_id] = UserView(change.user_id, change.info, [change.view])
            else:
                user.info = change.info
                user.connections.append(change.view)
        about = {user_id for users in lists.values() for user_id in users}
        only = next(iter(about)) if len(about) == 1 else None
        event = PresenceEventData("diff")
        for renderer, streams in self.audience.groups.items():
            template: Template | None = None
            for stream in streams:
                if stream in synced or (only is not None and stream.key == only):
                    continue  # its SYNC holds this tick's changes; or they are all about itself
                if template is None:
                    template = renderer.assemble(event, self._items(renderer, lists))
                stream.send(template.text(stream.key))
                self.frames += 1

    @staticmethod
    def _items(renderer: PayloadRenderer, lists: dict[str, dict[str, UserView]]) -> dict[str, Items]:
        return {
            name: [(user_id, renderer.item_texts(user, name)) for user_id, user in users.items()]
            for name, users in lists.items()
        }

    def _deliver_syncs(self, streams: dict[Stream, None]) -> None:
        templates: dict[PayloadRenderer, Template] = {}
        for stream in streams:
            if stream.ended:
                continue
            renderer = stream.renderer
            template = templates.get(renderer)
            if template is None:
                users = [(user_id, self._user_texts(user_id, renderer)) for user_id in self.users]
                event = PresenceEventData("sync", connection_id=_OWN)
                template = templates[renderer] = renderer.assemble(event, {"users": users})
            stream.send(template.text(stream.key).replace(_OWN_JSON, json.dumps(stream.view), 1))
            self.frames += 1

    def _user_texts(self, user_id: str, renderer: PayloadRenderer) -> tuple[str, ...]:
        cached = self._texts.setdefault(user_id, {})
        texts = cached.get(renderer)
        if texts is None:
            texts = cached[renderer] = renderer.item_texts(self._user_view(user_id), "users")
        return texts

    def _user_view(self, user_id: str) -> UserView:
        known = [self.entries[entry_id] for entry_id in self.users[user_id]]
        return UserView(user_id, known[-1].info, [k.view for k in known])

    # ------------------------------------------------------------------ other processes

    def _on_message(self, message: str) -> None:
        if not self._ready:
            self._early.append(message)
            return
        if message == RESYNC:
            if self._resyncing is None or self._resyncing.done():
                self._resyncing = asyncio.ensure_future(self._resync())
            return
        batch = json.loads(message)
        if batch["process"] == self.service.process_id:
            return  # applied already, when this process made the changes
        for op, entry in batch["ops"]:
            self.apply(op, PresenceEntry(**entry))

    async def _resync(self) -> None:
        """The transport reconnected: messages may be lost. Reload, and SYNC everyone."""
        try:
            snapshot = {entry.entry_id: entry for entry in await self.service.registry.entries(self.room_id)}
        except Exception:
            log.warning("presence resync of room %s failed", self.room_id, exc_info=True)
            return
        for entry_id, known in list(self.entries.items()):
            if entry_id not in snapshot:
                self._forget(entry_id, known, known.version)
        for entry in snapshot.values():
            known = self.entries.get(entry.entry_id)
            if known is None or entry.version > known.version:
                self._store(entry)
        self.pending.clear()  # everyone gets the whole state instead
        for stream in list(self.audience.streams()):
            self.resync_stream(stream)
