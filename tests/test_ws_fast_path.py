"""The WebSocket fast path (app/graphql/ws): which documents take it, and that what it renders
and coerces is exactly what graphql-core would produce for the same document and event."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from graphql import execute, parse
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from app.cursors.feed import CursorBatchData, CursorState
from app.graphql.schema import build_schema, hot_fields
from app.graphql.ws.plans import PlanCache
from app.graphql.ws.selection import Compiler, NotCompilable, collect_fields
from app.presence.event_feed import RoomEventData
from app.presence.feed import ConnectionView, PresenceEventData, UserView
from app.presence.graphql import PresenceEventKind, PresenceStatus
from app.settings import Settings

SCHEMA = build_schema()
ROOM = str(uuid.uuid4())


@pytest.fixture(scope="module")
def plans() -> PlanCache:
    return PlanCache(SCHEMA, hot_fields(), Settings())


HOT = {
    "plain mutation": "mutation($r: UUID!) { moveCursor(roomId: $r, x: 1) }",
    "aliased mutation": "mutation($r: UUID!) { moved: moveCursor(roomId: $r, x: 1, y: 2.5) }",
    "subscription": "subscription($r: UUID!) { cursors(roomId: $r) { removed } }",
    "root fragment": (
        "subscription($r: UUID!) { ...F } fragment F on Subscription { roomEvents(roomId: $r) { type } }"
    ),
    "inline fragment": (
        "subscription($r: UUID!) { ... on Subscription { roomPresence(roomId: $r) { kind } } }"
    ),
    "nested directives": (
        "subscription($r: UUID!, $i: Boolean!) { roomPresence(roomId: $r) { kind users @include(if: $i) "
        "{ userId } } }"
    ),
    "named operation": 'mutation A { a: leaveRoom(roomId: "' + ROOM + '") } query B { health { ok } }',
}
NOT_HOT = {
    "query": "{ health { ok } }",
    "other mutation": 'mutation { createOrganization(input: {name: "x", slug: "x"}) { id } }',
    "two root fields": f'mutation {{ a: leaveRoom(roomId: "{ROOM}") b: leaveRoom(roomId: "{ROOM}") }}',
    "root __typename": f'mutation {{ leaveRoom(roomId: "{ROOM}") __typename }}',
    "root directive": f'mutation($i: Boolean!) {{ leaveRoom(roomId: "{ROOM}") @include(if: $i) }}',
    "syntax error": "subscription { cursors(",
    "unknown field": "subscription($r: UUID!) { cursors(roomId: $r) { nope } }",
    "too deep": "subscription($r: UUID!) { cursors(roomId: $r) { " + "cursors { " * 12 + "x" + " }" * 13,
}


@pytest.mark.parametrize("name", list(HOT))
def test_hot_documents_take_the_fast_path(plans: PlanCache, name: str) -> None:
    operation = "A" if name == "named operation" else None
    plan = plans.get(HOT[name], operation)
    assert plan is not None
    assert plans.get(HOT[name], operation) is plan  # parsed and validated once


@pytest.mark.parametrize("name", list(NOT_HOT))
def test_other_documents_are_left_to_strawberry(plans: PlanCache, name: str) -> None:
    assert plans.get(NOT_HOT[name], None) is None


def _executed(document: str, event: Any, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    result = execute(SCHEMA._schema, parse(document), root_value=event, variable_values=variables)
    assert result.errors is None, result.errors
    return {"data": result.data}


def _rendered(plans: PlanCache, document: str, event: Any, variables: dict[str, Any] | None = None) -> Any:
    plan = plans.get(document, None)
    assert plan is not None
    coerced, _ = plan.arguments(variables or {})  # type: ignore[misc]
    return json.loads(plan.payload_renderer(coerced).render(event))


def _user(user_id: str, *connections: str) -> UserView:
    joined = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    return UserView(
        user_id,
        {"name": user_id, "color": "#ff0000"},
        [ConnectionView(c, PresenceStatus.AWAY, {"page": 2, "é": [1, None]}, joined) for c in connections],
    )


PRESENCE_DOCUMENTS = [
    """subscription($r: UUID!) { roomPresence(roomId: $r) { kind users { userId info
       connections { connectionId status presence joinedAt } } joins { userId } } }""",
    """subscription($r: UUID!) { p: roomPresence(roomId: $r) { __typename k: kind ...U
       leaves { ... on PresenceUser { userId } } } }
       fragment U on PresenceEvent { users { userId connections { id: connectionId } } }""",
    """subscription($r: UUID!, $withUsers: Boolean!) { roomPresence(roomId: $r) { kind
       users @include(if: $withUsers) { userId } updates @skip(if: $withUsers) { userId } } }""",
]


@pytest.mark.parametrize("document", PRESENCE_DOCUMENTS)
@pytest.mark.parametrize("with_users", [True, False])
def test_presence_payloads_match_graphql_execution(plans: PlanCache, document: str, with_users: bool) -> None:
    event = PresenceEventData(
        PresenceEventKind.SYNC,
        users=[_user("ada", "c1", "c2"), _user("bob", "c3")],
        leaves=[_user("cy", "c4")],
    )
    variables = {"r": ROOM, "withUsers": with_users} if "withUsers" in document else {"r": ROOM}
    assert _rendered(plans, document, event, variables) == _executed(document, event, variables)


def test_cursor_and_event_payloads_match_graphql_execution(plans: PlanCache) -> None:
    cursors = """subscription($r: UUID!) { cursors(roomId: $r) { full removed cursors { connectionId
        userId info x y elementId offset selection idle movedAt } } }"""
    batch = CursorBatchData(
        [
            CursorState("c1", "ada", {"name": "Ada"}, 1.5, None, "canvas", {"dx": 3}, {"a": [1, 2]}, 1e9),
            CursorState("c2", "bob", {}, -2.0, 3.25, None, None, None, 1e9 + 0.5, idle=True),
        ],
        ["c9"],
        full=True,
    )
    assert _rendered(plans, cursors, batch, {"r": ROOM}) == _executed(cursors, batch, {"r": ROOM})
    events = (
        "subscription($r: UUID!) { roomEvents(roomId: $r) { type payload userId senderConnectionId sentAt } }"
    )
    event = RoomEventData("emoji", {"text": '🎉 "quoted"', "n": [1, 2.5, None]}, "ada", None, 12.5)
    assert _rendered(plans, events, event, {"r": ROOM}) == _executed(events, event, {"r": ROOM})


def test_a_receivers_own_item_is_cut_out_of_the_shared_text(plans: PlanCache) -> None:
    document = """subscription($r: UUID!) { cursors(roomId: $r) { removed a: cursors { connectionId x }
        b: cursors { userId } } }"""
    renderer = plans.get(document, None).payload_renderer({})  # type: ignore[union-attr]
    states = [CursorState(f"c{i}", f"u{i}", {}, float(i), 0.0, None, None, None, 0.0) for i in range(4)]
    items = [(s.connection_id, renderer.item_texts(s, "cursors")) for s in states]
    template = renderer.assemble(CursorBatchData([], ["gone"]), {"cursors": items})
    for exclude in [None, "c0", "c2", "c3", "unknown"]:
        others = [s for s in states if s.connection_id != exclude]
        expected = json.loads(renderer.render(CursorBatchData(others, ["gone"])))
        assert json.loads(template.text(exclude)) == expected
    lonely = renderer.assemble(
        CursorBatchData([], []), {"cursors": [("c0", renderer.item_texts(states[0], "cursors"))]}
    )
    assert json.loads(lonely.text("c0"))["data"]["cursors"]["a"] == []


def test_a_field_with_a_resolver_cannot_be_compiled() -> None:
    document = parse('{ room(id: "' + ROOM + '") { id participantCount } }')
    (field,) = collect_fields("Query", [document.definitions[0].selection_set], {}, {})["room"]
    compiler = Compiler(PlanCache(SCHEMA, hot_fields(), Settings())._attributes, {}, {})
    with pytest.raises(NotCompilable):
        compiler.object(SCHEMA._schema.type_map["Room"], [field])


def test_every_field_of_the_hot_event_types_is_plain_data(plans: PlanCache) -> None:
    # A resolver field added to these types would silently push their documents off the fast path.
    for type_name in (
        "CursorBatch",
        "Cursor",
        "PresenceEvent",
        "PresenceUser",
        "PresenceConnection",
        "RoomEvent",
    ):
        graphql_type = SCHEMA._schema.type_map[type_name]
        for field in graphql_type.fields:
            assert (type_name, field) in plans._attributes, f"{type_name}.{field} has a resolver"


MOVE = """mutation($r: UUID!, $x: Float, $y: Float = 2.5, $el: String, $sel: JSON) {
  moveCursor(roomId: $r, x: $x, y: $y, elementId: $el, selection: $sel, offset: {dx: 1}) }"""
PRESENCE = """subscription($r: UUID!, $p: JSON, $others: Boolean! = false, $s: PresenceStatus) {
  roomPresence(roomId: $r, presence: $p, others: $others, status: $s) { kind } }"""


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (MOVE, {"r": ROOM, "x": 1}),
        (MOVE, {"r": ROOM, "x": None, "y": None, "el": "canvas", "sel": {"a": [1]}}),
        (MOVE, {"r": ROOM, "extra": "ignored"}),
        (MOVE, {"r": "not a uuid"}),
        (MOVE, {"r": ROOM, "x": "1"}),
        (MOVE, {"x": 1.0}),
        (MOVE, {"r": None}),
        (PRESENCE, {"r": ROOM}),
        (PRESENCE, {"r": ROOM, "others": True, "s": "BUSY", "p": {"tab": 1}}),
        (PRESENCE, {"r": ROOM, "s": "NOPE"}),
        (PRESENCE, {"r": ROOM, "others": None}),
    ],
)
def test_quick_coercion_matches_graphql_core(
    plans: PlanCache, document: str, variables: dict[str, Any]
) -> None:
    plan = plans.get(document, None)
    assert plan is not None and plan.quick is not None
    quick = plan.arguments(variables)
    coerced = get_variable_values(SCHEMA._schema, plan.operation.variable_definitions, variables)
    if not isinstance(coerced, VariableValues):
        assert quick is None  # then Strawberry runs it, and reports graphql-core's error
        return
    assert quick is not None
    assert quick[1] == get_argument_values(plan.field_def, plan.nodes[0], coerced)
