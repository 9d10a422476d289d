"""The local subscribers of one feed, grouped by what they selected.

Streams sharing a renderer (the same document, and the same directive variables) share every
rendered payload: an event is rendered once per group, and each stream only costs its write.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

from app.realtime.rendering import PayloadRenderer
from app.realtime.stream import Stream


class Audience:
    __slots__ = ("groups",)

    def __init__(self) -> None:
        # renderer -> its streams (a dict as an ordered set); renderers hash by identity
        self.groups: dict[PayloadRenderer, dict[Stream, None]] = {}

    def add(self, stream: Stream) -> None:
        self.groups.setdefault(stream.renderer, {})[stream] = None

    def remove(self, stream: Stream) -> None:
        streams = self.groups.get(stream.renderer)
        if streams is not None:
            streams.pop(stream, None)
            if not streams:
                del self.groups[stream.renderer]

    def __bool__(self) -> bool:
        return bool(self.groups)

    def streams(self) -> Iterator[Stream]:
        for streams in self.groups.values():
            yield from streams

    def broadcast(self, event: Any, exclude: Hashable | None = None) -> None:
        """Render `event` once per group; send it to every stream whose key is not `exclude`."""
        for renderer, streams in self.groups.items():
            payload = renderer.render(event)
            if exclude is None:
                for stream in streams:
                    stream.send(payload)
            else:
                for stream in streams:
                    if stream.key != exclude:
                        stream.send(payload)
