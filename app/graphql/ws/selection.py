"""Compile a selection set over plain-data object types into a function that writes JSON text.

The events of the hot streams (cursors, presence, room events) are plain data: every field of
their GraphQL types reads an attribute of the same name. Executing a selection set with
graphql-core costs tens of microseconds per event per subscriber; a compiled renderer writes the
result's JSON directly, once per event for every subscriber of the same document, and those
subscribers are sent the same text.

Supported: fields, aliases, `__typename`, inline fragments and fragment spreads, and @skip /
@include (their variables are fixed when compiling). A field with a resolver or arguments cannot
be compiled (NotCompilable): such a type is not plain data and must not be declared a hot stream.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)

from app.realtime.rendering import PayloadRenderer, Render, slot_marker

_dumps = json.JSONEncoder(separators=(",", ":")).encode


class NotCompilable(Exception):
    pass


def collect_fields(
    type_name: str,
    selection_sets: Iterable[SelectionSetNode],
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> dict[str, list[FieldNode]]:
    """Response key -> the field nodes merged under it, in document order."""
    fields: dict[str, list[FieldNode]] = {}

    def visit(selection_set: SelectionSetNode, seen: frozenset[str]) -> None:
        for selection in selection_set.selections:
            if not _included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value == type_name:
                    visit(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen or fragment.type_condition.name.value != type_name:
                    continue
                visit(fragment.selection_set, seen | {name})

    for selection_set in selection_sets:
        visit(selection_set, frozenset())
    return fields


def _included(node: Any, variables: dict[str, Any]) -> bool:
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        (argument,) = [a for a in directive.arguments if a.name.value == "if"]
        value = argument.value
        if isinstance(value, VariableNode):
            condition = bool(variables.get(value.name.value))
        elif isinstance(value, BooleanValueNode):
            condition = value.value
        else:
            raise NotCompilable("@skip/@include need a Boolean")
        if condition == (name == "skip"):
            return False
    return True


@dataclass(frozen=True)
class Compiler:
    """Compiles selections against one schema. `attributes` maps (type name, GraphQL field name)
    to the Python attribute that holds the field's value."""

    attributes: dict[tuple[str, str], str]
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]

    def object(
        self,
        type_: GraphQLObjectType,
        nodes: list[FieldNode],
        splice: tuple[str, ...] = (),
        slots: list[tuple[str, Render]] | None = None,
    ) -> Render:
        """With `splice`, each selection of those list fields renders as a slot marker instead, and
        (field, the renderer of its items) is appended to `slots` (see PayloadRenderer.assemble)."""
        selection_sets = [node.selection_set for node in nodes if node.selection_set is not None]
        fields = collect_fields(type_.name, selection_sets, self.fragments, self.variables)
        parts: list[tuple[str, Callable[[Any], Any], Render]] = []
        for index, (key, field_nodes) in enumerate(fields.items()):
            prefix = ("{" if index == 0 else ",") + _dumps(key) + ":"
            name = field_nodes[0].name.value
            if name == "__typename":
                literal = _dumps(type_.name)
                parts.append((prefix, _none, lambda _value, literal=literal: literal))
                continue
            field = type_.fields.get(name)
            attribute = self.attributes.get((type_.name, name))
            if field is None or attribute is None or field.args:
                raise NotCompilable(f"{type_.name}.{name} is not a plain data field")
            if name in splice and slots is not None:
                slots.append((name, self.value(_list_item_type(field.type), field_nodes)))
                parts.append((prefix, _none, slot_marker))
                continue
            parts.append((prefix, attrgetter(attribute), self.value(field.type, field_nodes)))
        if not parts:
            return lambda _value: "{}"

        def render(value: Any) -> str:
            return "".join([prefix + write(read(value)) for prefix, read, write in parts]) + "}"

        return render

    def value(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> Render:
        if isinstance(type_, GraphQLNonNull):
            return self.value(type_.of_type, nodes)
        if isinstance(type_, GraphQLList):
            inner = self.value(type_.of_type, nodes)

            def render_list(value: Any) -> str:
                if value is None:
                    return "null"
                return "[" + ",".join([inner(item) for item in value]) + "]"

            return render_list
        if isinstance(type_, GraphQLObjectType):
            render_object = self.object(type_, nodes)
            return lambda value: "null" if value is None else render_object(value)
        if isinstance(type_, GraphQLEnumType):
            return _enum(type_)
        if isinstance(type_, GraphQLScalarType):
            return _scalar(type_)
        raise NotCompilable(f"{type_} cannot be compiled")


def _none(_value: Any) -> None:
    return None


def _scalar(type_: GraphQLScalarType) -> Render:
    serialize = type_.serialize
    if type_.name in ("String", "Boolean", "ID"):
        return lambda value: "null" if value is None else _dumps(value)
    return lambda value: "null" if value is None else _dumps(serialize(value))


def _enum(type_: GraphQLEnumType) -> Render:
    """Enum values as stored (e.g. "online") or as Python enum members both render as names."""
    names: dict[Any, str] = {}
    for name, definition in type_.values.items():
        names[definition.value] = _dumps(name)
        if isinstance(definition.value, enum.Enum):
            names[definition.value.value] = _dumps(name)

    def render(value: Any) -> str:
        if value is None:
            return "null"
        found = names.get(value)
        if found is None and isinstance(value, enum.Enum):
            found = names.get(value.value)
        if found is None:
            raise ValueError(f"{value!r} is not a value of {type_.name}")
        return found

    return render


def payload_renderer(
    compiler: Compiler,
    event_type: GraphQLObjectType,
    response_key: str,
    nodes: list[FieldNode],
    splice: tuple[str, ...] = (),
) -> PayloadRenderer:
    prefix = '{"data":{' + _dumps(response_key) + ":"
    render_event = compiler.object(event_type, nodes)
    if not splice:
        return PayloadRenderer(prefix, render_event)
    slots: list[tuple[str, Render]] = []
    render_template = compiler.object(event_type, nodes, splice=splice, slots=slots)
    return PayloadRenderer(prefix, render_event, render_template, tuple(slots))


def _list_item_type(type_: GraphQLOutputType) -> GraphQLOutputType:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if not isinstance(type_, GraphQLList):
        raise NotCompilable("a spliced field must be a list")
    return type_.of_type  # type: ignore[no-any-return]
