"""One room's presence as this process knows it, shared by all its local subscribers.

The state is loaded from the registry when the room's first local subscriber arrives, then kept
by applying each change once: this process's own changes directly (PresenceService calls
`apply`), other processes' through the hub. Entries carry a version bumped by each published
change, so a change that arrives twice or late (a hub echo, a snapshot racing a message) is
ignored. Each applied change is rendered once per distinct subscription document as a DIFF and
sent to every subscriber (but, with `others`, not to the user it is about). A new subscriber gets
a SYNC assembled from per-user text cached per document, so a thousand joins do not re-render a
thousand users each. A subscriber whose socket backs up past its limit loses its queued diffs and
gets a fresh SYNC once it drains; after a transport reconnect, every subscriber gets one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.graphql.ws.selection import PayloadRenderer
from app.graphql.ws.stream import FastStream
from app.realtime.audience import Audience
from app.realtime.presence_registry import PresenceEntry
from app.realtime.redis_backend import RESYNC

if TYPE_CHECKING:
    from app.presence.service import PresenceService

log = logging.getLogger(__name__)

MAX_TOMBSTONES = 10_000


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


def _visible(entry: PresenceEntry) -> tuple[str, str, str]:
    """What others see of an entry: a change to none of it is not news."""
    return entry.status, json.dumps(entry.presence, sort_keys=True), json.dumps(entry.info, sort_keys=True)


def _view(entry: PresenceEntry) -> ConnectionView:
    joined = datetime.fromtimestamp(entry.joined_at, UTC)
    return ConnectionView(entry.entry_id, entry.status, entry.presence, joined)


class PresenceFeed:
    def __init__(self, service: PresenceService, room_id: str) -> None:
        self.service = service
        self.room_id = room_id
        self.channel = f"presence:{room_id}"
        self.audience = Audience()
        self.entries: dict[str, _Known] = {}
        self.users: dict[str, dict[str, None]] = {}  # user -> their entries, in order of arrival
        self.gone: dict[str, int] = {}  # removed entry -> its last version
        self.owners: dict[str, FastStream] = {}  # a local subscriber's own entry -> its stream
        self._texts: dict[str, dict[PayloadRenderer, tuple[str, ...]]] = {}  # user -> rendered
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
        if self._resyncing is not None:
            self._resyncing.cancel()
        await self.service.hub.unlisten(self.channel, self._on_message)

    # ------------------------------------------------------------------ subscribers

    def add(self, stream: FastStream, own_entry: str) -> None:
        """`stream.key` is its user with `others`, else None."""
        self.owners[own_entry] = stream
        stream.view = own_entry
        stream.on_resync = self.send_sync
        self.audience.add(stream)
        self.send_sync(stream)

    def remove(self, stream: FastStream) -> None:
        self.audience.remove(stream)
        if self.owners.get(stream.view) is stream:
            del self.owners[stream.view]

    def send_sync(self, stream: FastStream) -> None:
        renderer = stream.renderer
        items = [(user_id, self._user_texts(user_id, renderer)) for user_id in self.users]
        frame = PresenceEventData("sync", connection_id=stream.view)
        stream.send(renderer.assemble(frame, items).text(stream.key))

    def _user_texts(self, user_id: str, renderer: PayloadRenderer) -> tuple[str, ...]:
        cached = self._texts.setdefault(user_id, {})
        texts = cached.get(renderer)
        if texts is None:
            texts = cached[renderer] = renderer.item_texts(self._user_view(user_id))
        return texts

    def _user_view(self, user_id: str) -> UserView:
        known = [self.entries[entry_id] for entry_id in self.users[user_id]]
        return UserView(user_id, known[-1].info, [k.view for k in known])

    # ------------------------------------------------------------------ changes

    def apply(self, op: str, entry: PresenceEntry) -> None:
        """Apply one change (from this process or another) and tell the subscribers."""
        entry_id = entry.entry_id
        known = self.entries.get(entry_id)
        if op == "leave":
            if known is None:
                self._tombstone(entry_id, entry.version)  # a late join must not bring it back
                return
            self._forget(entry_id, known, max(known.version, entry.version))
            reaped = self.owners.pop(entry_id, None)  # its own entry went (the connection was silent)
            if reaped is not None:
                self.audience.remove(reaped)
            self._diff("leaves", entry, known.view)
            if reaped is not None:
                reaped.finish()
            return
        if known is not None and entry.version <= known.version:
            return  # an echo, or older than what we have
        if known is None and self.gone.get(entry_id, -1) >= entry.version:
            return  # it left already
        stored = self._store(entry)
        if known is None:
            self._diff("joins", entry, stored.view)
        elif known.visible != stored.visible:
            self._diff("updates", entry, stored.view)

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

    def _diff(self, kind: str, entry: PresenceEntry, view: ConnectionView) -> None:
        if not self.audience:
            return
        event = PresenceEventData("diff")
        getattr(event, kind).append(UserView(entry.user_id, entry.info, [view]))
        self.audience.broadcast(event, exclude=entry.user_id)

    def _on_message(self, message: str) -> None:
        if not self._ready:
            self._early.append(message)
            return
        if message == RESYNC:
            if self._resyncing is None or self._resyncing.done():
                self._resyncing = asyncio.ensure_future(self._resync())
            return
        data = json.loads(message)
        self.apply(data["op"], PresenceEntry.from_json(data["entry"]))

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
        for stream in list(self.audience.streams()):
            self.send_sync(stream)
