"""Payloads rendered once per event for every subscriber of the same document.

A PayloadRenderer (compiled from a subscription's selection by app/graphql/ws/selection.py) turns
an event into the text of `{"data":{<key>:<event>}}`; a Template holds such a text with spliced
lists from which each receiver's own items can be left out by slicing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Render = Callable[[Any], str]

SLOT_MARKER = "\x00slot\x00"

# An item list: (key, the item's texts for each slot of its field) in order.
Items = list[tuple[str, tuple[str, ...]]]


def slot_marker(_value: Any) -> str:
    return "[" + SLOT_MARKER + "]"


@dataclass(frozen=True)
class Template:
    """A payload whose spliced lists can leave out one receiver's own items (cheaply: slices)."""

    parts: tuple[str, ...]  # literal text around the slots
    slots: tuple[tuple[str, dict[str, tuple[int, int]]], ...]  # (joined items, key -> span)

    def text(self, exclude: str | None = None) -> str:
        out = [self.parts[0]]
        for (joined, spans), literal in zip(self.slots, self.parts[1:], strict=True):
            span = spans.get(exclude) if exclude is not None else None
            if span is None:
                out.append(joined)
            else:
                start, end = span
                if start == 0:
                    out.append(joined[end + 1 :])  # and the comma after it
                else:
                    out.append(joined[: start - 1] + joined[end:])  # and the comma before it
            out.append(literal)
        return "".join(out)


@dataclass(frozen=True, eq=False)  # hashed by identity: feeds group streams by renderer
class PayloadRenderer:
    """Renders `{"data":{<key>:<event>}}` for one subscription document.

    With splice fields (lists on the event type whose items carry a key: a user, a connection),
    `item_texts` renders an item once for every place the document selects its list, and
    `assemble` builds a Template in which each receiver's own items can be left out. An item's
    key must be unique within its list (items of one key are grouped into one)."""

    prefix: str
    render_event: Render
    render_template: Render | None = None  # the event with slot markers for the spliced lists
    slots: tuple[tuple[str, Render], ...] = ()  # (list field, its item renderer), in text order

    def render(self, event: Any) -> str:
        return self.prefix + self.render_event(event) + "}}"

    def item_texts(self, item: Any, field: str) -> tuple[str, ...]:
        return tuple(render(item) for name, render in self.slots if name == field)

    def assemble(self, event: Any, lists: dict[str, Items]) -> Template:
        """The payload of `event` (its spliced lists ignored) with `lists[field]` in the slots
        of each spliced field."""
        if self.render_template is None:
            return Template((self.render(event),), ())
        literals = (self.prefix + self.render_template(event) + "}}").split(SLOT_MARKER)
        slots = []
        seen: dict[str, int] = {}  # field -> how many of its slots came before
        for name, _render in self.slots:
            index = seen[name] = seen.get(name, -1) + 1
            spans: dict[str, tuple[int, int]] = {}
            texts = []
            position = 0
            for key, rendered in lists.get(name, ()):
                text = rendered[index]
                spans[key] = (position, position + len(text))
                position += len(text) + 1
                texts.append(text)
            slots.append((",".join(texts), spans))
        return Template(tuple(literals), tuple(slots))
