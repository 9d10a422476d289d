"""Property-based fuzzing of the whole GraphQL API, shared by tests/test_fuzz.py and bench/fuzz.py.

Operations come from the committed schema.graphql through hypothesis-graphql, for every root field of
Query, Mutation and Subscription: valid ones (UUIDs mostly the real objects' ids, strings often real
slugs, the email, a valid Yjs update), ones with one schema violation, and valid ones whose arguments
are moved into variables, one of which may be replaced by a hostile value (a lone surrogate, NUL, NaN,
1e400, a huge or deeply nested value, a wrong type). Each is sent over HTTP and over graphql-transport-ws
with every credential (developer, secret key, publishable key + end-user token, anonymous). Hand-written
HTTP requests and WebSocket messages that are not even GraphQL, and non-finite numbers that one client
sends to a room's others, complete it.

The oracle: an error coded INTERNAL_ERROR or without a code, HTTP 5xx, a body or frame that is not
JSON (RFC 8259: no NaN), a socket closed with 1006 or 1011, a request left unanswered, /healthz not
answering afterwards. Every failure is collected, deduplicated by field, transport and message, with
the shortest request that showed it, so that one run lists them all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import itertools
import json
import logging
import re
import tempfile
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import graphql
import httpx
import hypothesis_graphql
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import InvalidArgument
from hypothesis_graphql import Mode
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.auth.policy import API_KEY_SCOPES
from tests.documents import YClient, apply_http, create_document
from tests.gql import CREATE_END_USER_TOKEN, GQL, PASSWORD, create_key, create_org, sign_up
from tests.realtime import RoomSetup

# Hypothesis keeps caches (constants found in the source, Unicode tables) even without an example
# database, in ./.hypothesis by default: not in the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "syncforge-hypothesis")

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schema.graphql"
PROTOCOL = "graphql-transport-ws"

HTTP_TIMEOUT_S = 15.0  # a request unanswered this long is a failure
HTTP_CONCURRENCY = 4  # requests in flight at once
WS_ANSWER_TIMEOUT_S = 15.0  # a query or mutation over the socket unanswered this long is a failure
WS_SUBSCRIPTION_WAIT_S = 1.0  # a subscription still silent after this is completed (not a failure)
WS_BATCH = 20  # operations pipelined on one socket before waiting for their answers
WS_PROBE_TIMEOUT_S = 5.0  # after a malformed message, the answers to our probes must come by then
WS_PROBE_GRACE_S = 0.05  # and then whatever else the server still says
PROBE_ID = "fuzz-probe"
PROBE = {"query": "{ __typename }"}
HEALTH_TIMEOUT_S = 5.0  # GET /healthz after a run
CREDENTIAL_MAX_AGE_S = 600.0  # access tokens live 15 minutes: long runs sign in again before that
ABNORMAL_CLOSES = {1006: "abnormal closure", 1011: "internal error"}
OVERSAMPLING = 3  # examples drawn per example kept (see draw_examples)

# Fields that would spoil the shared objects for every later example: they revoke the credentials
# being fuzzed with (revokeApiKey, rotateApiKey, logOutEverywhere, changePassword: strings are
# sometimes the real password), remove the room or document the real ids point at (deleteRoom,
# archiveRoom, trashDocument), lock the room behind a password or a participant limit (updateRoom),
# or change who belongs to the organization (changeMemberRole, removeMember, leaveOrganization).
# They are fuzzed in a throwaway pass instead: each against its own freshly created developer,
# organization, keys, room and document, so that their examples still hit real ids with real
# credentials while the main pass's objects stay intact for all of its examples.
DESTRUCTIVE_FIELDS = frozenset(
    {
        "Mutation.revokeApiKey",
        "Mutation.rotateApiKey",
        "Mutation.logOutEverywhere",
        "Mutation.deleteRoom",
        "Mutation.archiveRoom",
        "Mutation.trashDocument",
        "Mutation.updateRoom",
        "Mutation.changeMemberRole",
        "Mutation.removeMember",
        "Mutation.leaveOrganization",
        "Mutation.changePassword",
    }
)


# ---------------------------------------------------------------------------------------------
# Real objects and the credentials that reach them


@dataclass
class Credential:
    name: str
    headers: dict[str, str]  # over HTTP
    init: dict[str, Any]  # the connection_init payload


@dataclass
class Target:
    """A developer, an organization, keys, a room, a document with a snapshot, an invitation."""

    ids: dict[str, str]
    credentials: list[Credential]
    email: str
    strings: list[str]  # real slugs, the email, the password, a valid Yjs update...: as String values
    created_at: float = field(default_factory=time.monotonic)


CREATE_ROOM = """mutation($org: UUID!, $input: CreateRoomInput!) {
  createRoom(organizationId: $org, input: $input) { id } }"""
SNAPSHOT = """mutation($id: UUID!) { createDocumentSnapshot(documentId: $id, name: "fuzz") { id } }"""
INVITE = """mutation($org: UUID!, $email: String!) {
  inviteMember(organizationId: $org, email: $email) { id } }"""
LOG_IN = """mutation($input: LogInInput!) { logIn(input: $input) { accessToken } }"""


async def create_target(http: httpx.AsyncClient, ws_url: str) -> Target:
    """Everything through the public API, so that it works against any server."""
    anon = GQL(http)
    dev = await sign_up(anon, name="Fuzz")
    org_id = await create_org(dev)
    unlimited = {"rateLimit": 1_000_000}
    secret, secret_id = await create_key(dev, org_id, "SECRET", scopes=list(API_KEY_SCOPES), **unlimited)
    publishable, publishable_id = await create_key(dev, org_id, "PUBLISHABLE", **unlimited)
    slug = f"fuzz-{uuid.uuid4().hex[:8]}"
    room_id = (await dev.gql.data(CREATE_ROOM, org=org_id, input={"name": "Fuzz", "slug": slug}))[
        "createRoom"
    ]["id"]
    backend = anon.bearer(secret)
    token, end_user_id = await _end_user_token(backend, room_id)
    room = RoomSetup(
        SimpleNamespace(url=str(http.base_url), ws_url=ws_url), dev, org_id, room_id, backend, ""
    )
    document_id = await create_document(room, name="Fuzz notes", slug="notes")
    await apply_http(backend, document_id, YClient().append("hello, fuzz"))
    snapshot_id = (await backend.data(SNAPSHOT, id=document_id))["createDocumentSnapshot"]["id"]
    invitation_id = (await dev.gql.data(INVITE, org=org_id, email=f"invitee-{slug}@example.com"))[
        "inviteMember"
    ]["id"]
    ids = {
        "organization": org_id,
        "room": room_id,
        "document": document_id,
        "snapshot": snapshot_id,
        "invitation": invitation_id,
        "developer": dev.user_id,
        "secret key": secret_id,
        "publishable key": publishable_id,
        "end-user": end_user_id,
    }
    credentials = [
        Credential(
            "developer", {"authorization": f"Bearer {dev.access_token}"}, {"accessToken": dev.access_token}
        ),
        Credential("secret key", {"authorization": f"Bearer {secret}"}, {"apiKey": secret}),
        Credential(
            "end-user",
            {"x-api-key": publishable, "authorization": f"Bearer {token}"},
            {"apiKey": publishable, "token": token},
        ),
        Credential("anonymous", {}, {}),
    ]
    strings = [
        slug,
        "notes",
        f"{slug[:5]}*",
        dev.email,
        PASSWORD,
        "fuzz-user",
        "content",
        YClient().append("fuzz"),  # a valid Yjs update
        YClient().state_vector(),
        awareness_update(),
        "#ff8800",
        "https://example.com/avatar.png",
        *API_KEY_SCOPES[:3],
        "read",
        "write",
    ]
    return Target(ids, credentials, dev.email, strings)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def awareness_update(client_id: int = 4242, clock: int = 1) -> str:
    """A y-protocols awareness update (base64) with one client's state."""
    state = json.dumps({"user": {"name": "fuzz"}, "cursor": None}).encode()
    raw = _varint(1) + _varint(client_id) + _varint(clock) + _varint(len(state)) + state
    return base64.b64encode(raw).decode()


async def _end_user_token(backend: GQL, room_id: str, user_id: str = "fuzz-user") -> tuple[str, str]:
    grants = [{"room": room_id, "access": ["read", "write", "presence", "comment"]}]
    minted = await backend.data(
        CREATE_END_USER_TOKEN,
        input={"userId": user_id, "userInfo": {"name": "Fuzz"}, "permissions": grants},
    )
    return minted["createEndUserToken"]["token"], minted["createEndUserToken"]["endUserId"]


async def refresh_target(http: httpx.AsyncClient, target: Target) -> None:
    """New developer access token and end-user token, for runs longer than their lifetime."""
    anon = GQL(http)
    access = (await anon.data(LOG_IN, input={"email": target.email, "password": PASSWORD}))["logIn"]
    developer, secret, end_user, _ = target.credentials
    developer.headers = {"authorization": f"Bearer {access['accessToken']}"}
    developer.init = {"accessToken": access["accessToken"]}
    token, _ = await _end_user_token(anon.bearer(secret.init["apiKey"]), target.ids["room"])
    end_user.headers = {**end_user.headers, "authorization": f"Bearer {token}"}
    end_user.init = {**end_user.init, "token": token}
    target.created_at = time.monotonic()


# ---------------------------------------------------------------------------------------------
# Values: custom scalars as GraphQL literals, and hostile variable values


@dataclass(frozen=True)
class Raw:
    """JSON text written as it is (what json.dumps refuses or cannot write)."""

    text: str

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r}{'…' if len(self.text) > 40 else ''})"


def dump_json(value: Any) -> str:
    """JSON text of `value`; NaN and Infinity as such, lone surrogates as \\ud800 escapes, Raw as is."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dump_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dump_json(v) for v in value) + "]"
    return json.dumps(value)


DEEP = 100_000  # nesting far past any recursion limit, still well under the 1 MB request limit
HOSTILE_VALUES: tuple[Any, ...] = (
    "\ud800",
    "lone \udfff surrogate",
    "\u0000",
    "nul\u0000byte",
    "\ufffe\uffff",
    "x" * 100_000,
    "",
    " ",
    "-1",
    "not-a-uuid",
    "00000000-0000-0000-0000-000000000000",
    "2024-02-30T25:61:00",
    "9999-12-31T23:59:59.999999+23:59",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%s%n%x",
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1" + "0" * 5000),
    Raw("[" * DEEP + "]" * DEEP),
    Raw('{"a": ' * (DEEP // 6) + "1" + "}" * (DEEP // 6)),
    2**31,
    -(2**31) - 1,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    10**300,
    1.5,
    -0.0,
    1e308,
    5e-324,
    True,
    False,
    None,
    0,
    [],
    {},
    [None],
    [[[]]],
    {"": None},
    {"nested": {"deeper": [1, "two", {"three": 3.0}]}},
    [{"room": "*", "access": ["read", "write", "admin"]}],
)

_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)
# Small JSON values; object keys are GraphQL names, so that they also make valid literals.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_names, children, max_size=3),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(_names, JSON_VALUES, max_size=4)
HOSTILE = st.sampled_from(HOSTILE_VALUES) | JSON_VALUES


def literal(value: Any) -> graphql.ValueNode:
    """A GraphQL literal of a JSON value."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))  # finite floats: 1.5, -0.0, 1e+16
    if isinstance(value, str):
        return graphql.StringValueNode(value=value)
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(literal(v) for v in value))
    return graphql.ObjectValueNode(
        fields=tuple(
            graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=literal(v))
            for k, v in value.items()
        )
    )


def plausible_scalars(real_strings: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Strings and ints that get past the first checks more often than uniform ones (valid mode only:
    the invalid mode needs the built-in scalars to itself, to put wrong types in their place)."""
    strings = (
        st.sampled_from(real_strings)
        | st.from_regex(r"[a-z0-9][a-z0-9:_.-]{0,20}", fullmatch=True)
        | st.emails().map(str.lower)
        | st.text()
    )
    ints = (
        st.integers(-2, 120)
        | st.sampled_from([2**31 - 1, -(2**31), 3600, 10_000])
        | st.integers(-(2**31), 2**31 - 1)
    )
    return {"String": strings.map(literal), "Int": ints.map(literal)}


def scalar_strategies(real_ids: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Literals of the schema's custom scalars. UUIDs are the real objects' ids half of the time."""
    uuids = st.sampled_from(real_ids) | st.uuids().map(str) | st.sampled_from(["", "not-a-uuid"])
    datetimes = st.datetimes(timezones=st.sampled_from([UTC, None])).map(
        datetime.isoformat
    ) | st.sampled_from(["", "yesterday", "2024-02-30T00:00:00", "9999-12-31T23:59:59+23:59"])
    return {
        "UUID": uuids.map(literal),
        "JSON": (JSON_OBJECTS | JSON_VALUES).map(literal),
        "DateTime": datetimes.map(literal),
    }


# ---------------------------------------------------------------------------------------------
# Operations


@dataclass(frozen=True)
class Operation:
    field: str  # root type and field: "Mutation.createRoom"
    kind: str  # query, mutation or subscription
    origin: str  # valid, invalid (one schema violation) or variables (maybe with a hostile value)
    query: str
    variables: str | None = None  # JSON text: may hold NaN, lone surrogates, deep nesting...

    def payload(self) -> str:
        text = '{"query": ' + json.dumps(self.query)
        if self.variables is not None:
            text += ', "variables": ' + self.variables
        return text + "}"


def _document(node: graphql.DocumentNode) -> graphql.DocumentNode:
    return node


def _printed(document: graphql.DocumentNode, kind: str) -> str:
    """The document as `kind` (hypothesis-graphql knows no subscriptions: they are drawn as queries)."""
    (operation,) = document.definitions
    if kind == "subscription":
        operation = dataclasses.replace(operation, operation=graphql.OperationType.SUBSCRIPTION)
    return graphql.print_ast(dataclasses.replace(document, definitions=(operation,)))


def _with_unknown_argument(document: graphql.DocumentNode) -> graphql.DocumentNode:
    (operation,) = document.definitions
    root, *others = operation.selection_set.selections
    unknown = graphql.ArgumentNode(
        name=graphql.NameNode(value="fuzz"), value=graphql.StringValueNode(value="x")
    )
    root = dataclasses.replace(root, arguments=(*root.arguments, unknown))
    selection_set = dataclasses.replace(operation.selection_set, selections=(root, *others))
    return dataclasses.replace(
        document, definitions=(dataclasses.replace(operation, selection_set=selection_set),)
    )


def lift_arguments(
    document: graphql.DocumentNode, root: graphql.GraphQLObjectType, kind: str
) -> tuple[str, dict[str, Any]]:
    """The same operation with the root field's literal arguments moved into typed variables."""
    (operation,) = document.definitions
    definitions: list[graphql.VariableDefinitionNode] = []
    variables: dict[str, Any] = {}
    selections = []
    for selection in operation.selection_set.selections:
        spec = root.fields.get(selection.name.value) if isinstance(selection, graphql.FieldNode) else None
        if spec is None:
            selections.append(selection)
            continue
        arguments = []
        for argument in selection.arguments:
            argument_spec = spec.args.get(argument.name.value)
            if argument_spec is None:
                arguments.append(argument)
                continue
            name = argument.name.value
            while name in variables:
                name += "_"
            variable = graphql.VariableNode(name=graphql.NameNode(value=name))
            definitions.append(
                graphql.VariableDefinitionNode(
                    variable=variable, type=graphql.parse_type(str(argument_spec.type)), directives=()
                )
            )
            variables[name] = graphql.value_from_ast_untyped(argument.value)
            arguments.append(dataclasses.replace(argument, value=variable))
        selections.append(dataclasses.replace(selection, arguments=tuple(arguments)))
    operation = dataclasses.replace(
        operation,
        variable_definitions=tuple(definitions),
        selection_set=dataclasses.replace(operation.selection_set, selections=tuple(selections)),
    )
    return _printed(dataclasses.replace(document, definitions=(operation,)), kind), variables


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value: the value itself, and every member and item, recursively."""
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], tuple(rest), new)}
    copy = list(value)
    copy[head] = _replaced(copy[head], tuple(rest), new)
    return copy


@st.composite
def _variable_operations(
    draw: st.DrawFn,
    base: st.SearchStrategy[graphql.DocumentNode],
    root: graphql.GraphQLObjectType,
    kind: str,
) -> tuple[str, str]:
    query, variables = lift_arguments(draw(base), root, kind)
    paths = list(_paths(variables))
    if paths and draw(st.integers(0, 3)) > 0:  # three times in four, one hostile value somewhere
        variables = _replaced(variables, draw(st.sampled_from(paths)), draw(HOSTILE))
    return query, dump_json(variables)


def draw_examples(strategy: st.SearchStrategy[Any], count: int, seed: int | None) -> list[Any]:
    """`count` distinct examples of a strategy, reproducibly (derandomized, or from `seed`); no database.
    Hypothesis starts from the simplest examples: three times as many are drawn, and every third kept."""
    drawn: list[Any] = []

    @settings(
        max_examples=count * OVERSAMPLING,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    if seed is not None:
        collect = hypothesis_seed(seed)(collect)
    collect()
    unique: dict[str, Any] = {}
    for value in drawn:
        unique.setdefault(graphql.print_ast(value) if isinstance(value, graphql.Node) else repr(value), value)
    values = list(unique.values())
    return values[:: max(1, len(values) // count)][:count]


def real_id_for(field: str, argument: str, ids: dict[str, str]) -> str | None:
    """The id of the real object a UUID argument most likely names: roomId a room, revokeApiKey's id a key."""
    by_argument = {
        "roomId": "room",
        "documentId": "document",
        "organizationId": "organization",
        "userId": "developer",
    }
    if argument in by_argument:
        return ids.get(by_argument[argument])
    if argument != "id":
        return None
    name = field.lower()
    for word, kind in (
        ("snapshot", "snapshot"),
        ("document", "document"),
        ("room", "room"),
        ("apikey", "secret key"),
        ("invitation", "invitation"),
        ("organization", "organization"),
    ):
        if word in name:
            return ids.get(kind)
    return None


@st.composite
def _with_real_ids(
    draw: st.DrawFn,
    base: st.SearchStrategy[graphql.DocumentNode],
    root: graphql.GraphQLObjectType,
    ids: dict[str, str],
) -> graphql.DocumentNode:
    """Mostly, the root field's UUID arguments name the real object of their kind."""
    document = draw(base)
    if not draw(st.sampled_from([True, True, False])):
        return document
    (operation,) = document.definitions
    selections = []
    for selection in operation.selection_set.selections:
        spec = root.fields.get(selection.name.value) if isinstance(selection, graphql.FieldNode) else None
        if spec is not None:
            arguments = []
            for argument in selection.arguments:
                argument_spec = spec.args.get(argument.name.value)
                is_uuid = (
                    argument_spec is not None and graphql.get_named_type(argument_spec.type).name == "UUID"
                )
                real = real_id_for(selection.name.value, argument.name.value, ids) if is_uuid else None
                if real and not isinstance(argument.value, graphql.NullValueNode):
                    argument = dataclasses.replace(argument, value=graphql.StringValueNode(value=real))
                arguments.append(argument)
            selection = dataclasses.replace(selection, arguments=tuple(arguments))
        selections.append(selection)
    selection_set = dataclasses.replace(operation.selection_set, selections=tuple(selections))
    return dataclasses.replace(
        document, definitions=(dataclasses.replace(operation, selection_set=selection_set),)
    )


class OperationSource:
    """Operations for each root field of schema.graphql."""

    def __init__(self, schema_sdl: str | None = None) -> None:
        self.schema = graphql.build_schema(schema_sdl or SCHEMA_PATH.read_text())
        roots = {
            "query": self.schema.query_type,
            "mutation": self.schema.mutation_type,
            "subscription": self.schema.subscription_type,
        }
        self.roots = {kind: root for kind, root in roots.items() if root is not None}
        # hypothesis-graphql generates queries and mutations: subscriptions come from a schema whose
        # query type is the Subscription type, and are printed as subscriptions.
        self._as_query = {
            "query": self.schema,
            "mutation": self.schema,
            "subscription": graphql.GraphQLSchema(query=self.roots.get("subscription")),
        }

    def fields(self) -> list[tuple[str, str]]:
        """(kind, "Type.field") of every root field."""
        return [(kind, f"{root.name}.{name}") for kind, root in self.roots.items() for name in root.fields]

    def operations(
        self,
        kind: str,
        qualified: str,
        real_ids: dict[str, str],
        examples: int,
        seed: int | None = None,
        real_strings: list[str] | None = None,
    ) -> list[Operation]:
        name = qualified.split(".", 1)[1]
        schema = self._as_query[kind]
        make = hypothesis_graphql.mutations if kind == "mutation" else hypothesis_graphql.queries
        scalars = scalar_strategies(list(real_ids.values()))

        def strategy(mode: Mode, scalars: dict[str, Any]) -> st.SearchStrategy[graphql.DocumentNode]:
            return make(schema, fields=[name], custom_scalars=scalars, print_ast=_document, mode=mode)

        root = self.roots[kind]
        valid_scalars = {**scalars, **plausible_scalars(real_strings or [""])}
        valid = _with_real_ids(strategy(Mode.POSITIVE, valid_scalars), root, real_ids)
        invalid = strategy(Mode.NEGATIVE, scalars)
        operations = [
            Operation(qualified, kind, "valid", _printed(document, kind))
            for document in draw_examples(valid, examples, seed)
        ]
        try:
            invalid_documents = draw_examples(invalid, examples, seed)
        except InvalidArgument:  # a field without arguments has nothing to violate but its name
            invalid_documents = [
                _with_unknown_argument(document) for document in draw_examples(valid, 1, seed)
            ]
        operations += [
            Operation(qualified, kind, "invalid", _printed(document, kind)) for document in invalid_documents
        ]
        operations += [
            Operation(qualified, kind, "variables", query, variables)
            for query, variables in draw_examples(_variable_operations(valid, root, kind), examples, seed)
        ]
        return operations


# ---------------------------------------------------------------------------------------------
# The oracle and the failures it found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str | bytes) -> Any:
    """JSON as RFC 8259 has it: Python's json module would also read NaN and Infinity."""
    return json.loads(text, parse_constant=_no_constant)


def result_problems(body: Any) -> list[tuple[str, str | None]]:
    """What is wrong with a GraphQL response: (problem, request id of an INTERNAL_ERROR)."""
    if not isinstance(body, dict) or not ("data" in body or "errors" in body):
        return [(f"a JSON body that is no GraphQL response: {_short(body)}", None)]
    return error_problems(body.get("errors") or [])


def error_problems(errors: Any) -> list[tuple[str, str | None]]:
    if not isinstance(errors, list):
        return [(f"errors that are not a list: {_short(errors)}", None)]
    problems: list[tuple[str, str | None]] = []
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if code is None:
            problems.append((f"error without extensions.code: {_short(message)}", None))
        elif code == "INTERNAL_ERROR":
            problems.append((f"INTERNAL_ERROR: {_short(message)}", str(extensions.get("requestId"))))
    return problems


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _normalized(problem: str) -> str:
    """Failures that differ only in ids, numbers or quoted values are one failure."""
    problem = _UUID.sub("<id>", problem)
    problem = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", problem)
    return re.sub(r"\d+", "N", problem)[:120]


@dataclass
class Failure:
    field: str
    transport: str
    problem: str
    request: str  # the shortest request seen to reproduce it
    credentials: set[str]
    count: int = 1


@dataclass
class Failures:
    found: dict[tuple[str, str, str], Failure] = field(default_factory=dict)

    def add(self, field: str, transport: str, credential: str, problem: str, request: str) -> None:
        key = (field, transport, _normalized(problem))
        failure = self.found.get(key)
        if failure is None:
            self.found[key] = Failure(field, transport, problem, request, {credential})
            return
        failure.count += 1
        failure.credentials.add(credential)
        if len(request) < len(failure.request):
            failure.request, failure.problem = request, problem

    def __len__(self) -> int:
        return len(self.found)

    def __repr__(self) -> str:  # what pytest prints under the report
        return f"<{len(self)} distinct failures>"

    def __iter__(self) -> Iterator[Failure]:
        return iter(sorted(self.found.values(), key=lambda f: (f.field, f.transport, f.problem)))

    def report(self) -> str:
        lines = [f"{len(self)} distinct failures:"]
        for number, failure in enumerate(self, 1):
            credentials = ", ".join(sorted(failure.credentials))
            lines.append(
                f"{number:3}. {failure.field} over {failure.transport} [{credentials}] x{failure.count}: "
                f"{failure.problem}"
            )
            lines.append(f"       {_short(failure.request, 600)}")
        # Server messages may quote what they were sent: lone surrogates cannot be printed as they are.
        return "\n".join(lines).encode("utf-8", "backslashreplace").decode("utf-8")


class ServerErrors(logging.Handler):
    """Tracebacks the server logged, to tell what an INTERNAL_ERROR's request id hid."""

    LOGGERS = ("syncforge", "app", "uvicorn.error")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @contextlib.contextmanager
    def installed(self) -> Iterator[ServerErrors]:
        loggers = [logging.getLogger(name) for name in self.LOGGERS]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)

    def explain(self, request_id: str) -> str | None:
        for record in self.records:
            if request_id in record.getMessage() and record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                return f"{type(error).__name__}: {_short(str(error), 120)}"
        return None


# ---------------------------------------------------------------------------------------------
# The fuzzer


def _credential_request(credential: Credential, transport: str) -> str:
    return f"as {credential.name}" if transport == "http" else f"connection_init {credential.name}"


@dataclass
class RawRequest:
    """A hand-written HTTP request to /graphql."""

    label: str
    body: bytes | None = None
    content_type: str | None = "application/json"
    method: str = "POST"
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Fuzzer:
    def __init__(
        self,
        url: str,
        ws_url: str,
        *,
        examples: int,
        seed: int | None = None,
        explain: Callable[[str], str | None] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.url, self.ws_url = url, ws_url
        self.examples, self.seed = examples, seed
        self.explain = explain or (lambda _request_id: None)
        self.progress = progress or (lambda _line: None)
        self.source = OperationSource()
        self.failures = Failures()
        self.sent: Counter[str] = Counter()  # operations or messages sent, per transport
        self.closes: Counter[int] = Counter()  # close codes the server chose
        self.outcomes: Counter[str] = Counter()  # "data", or the code of each error answered
        self.covered: dict[str, set[str]] = defaultdict(set)  # field -> transports that carried it
        self.http = httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_S)
        self._limit = asyncio.Semaphore(HTTP_CONCURRENCY)

    async def __aenter__(self) -> Fuzzer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def create_target(self) -> Target:
        return await create_target(self.http, self.ws_url)

    def fail(self, field: str, transport: str, credential: str, problem: str, request: str) -> None:
        self.failures.add(field, transport, credential, problem, request)

    def _tally(self, body: Any, errors: Any = None) -> None:
        if isinstance(body, dict):
            errors = body.get("errors")
            if not errors and body.get("data") is not None:
                self.outcomes["data"] += 1
        for error in errors if isinstance(errors, list) else ():
            extensions = error.get("extensions") if isinstance(error, dict) else None
            self.outcomes[str(extensions.get("code") if isinstance(extensions, dict) else None)] += 1

    def _fail_problems(
        self,
        problems: list[tuple[str, str | None]],
        field: str,
        transport: str,
        credential: str,
        request: str,
    ) -> None:
        for problem, request_id in problems:
            cause = self.explain(request_id) if request_id else None
            detail = (
                f" (server log: {cause})" if cause else (f" (request {request_id})" if request_id else "")
            )
            self.fail(field, transport, credential, problem + detail, request)

    # -- generated operations ----------------------------------------------------------------

    def fields(self, *, destructive: bool | None = None) -> list[tuple[str, str]]:
        every = self.source.fields()
        if destructive is None:
            return every
        return [(kind, name) for kind, name in every if (name in DESTRUCTIVE_FIELDS) == destructive]

    async def fuzz_fields(self, target: Target, fields: list[tuple[str, str]]) -> None:
        """Every field's operations, over HTTP and over each credential's socket."""
        sessions = {c.name: WsSession(self, c) for c in target.credentials}
        try:
            for kind, name in fields:
                if time.monotonic() - target.created_at > CREDENTIAL_MAX_AGE_S:
                    await refresh_target(self.http, target)
                    for session in sessions.values():
                        await session.close()
                operations = self.source.operations(
                    kind, name, target.ids, self.examples, self.seed, target.strings
                )
                started = time.monotonic()
                await asyncio.gather(
                    self._send_http_all(operations, target.credentials),
                    *(session.run(operations) for session in sessions.values()),
                )
                self.progress(f"{name}: {len(operations)} operations in {time.monotonic() - started:.1f} s")
        finally:
            for session in sessions.values():
                await session.close()

    async def fuzz_destructive(self) -> None:
        """The fields that spoil their objects, each against objects of its own (see DESTRUCTIVE_FIELDS)."""
        for kind, name in self.fields(destructive=True):
            await self.fuzz_fields(await self.create_target(), [(kind, name)])

    async def _send_http_all(self, operations: list[Operation], credentials: list[Credential]) -> None:
        await asyncio.gather(*(self._send_http(op, c) for op in operations for c in credentials))

    async def _send_http(self, op: Operation, credential: Credential) -> None:
        body = op.payload().encode("utf-8", "surrogatepass")
        request = f"POST /graphql {_credential_request(credential, 'http')}: {op.payload()}"
        async with self._limit:
            await self.post(op.field, credential, request, body, credential.headers)
        self.covered[op.field].add("http")

    async def post(
        self,
        field: str,
        credential: Credential,
        request: str,
        body: bytes | None,
        headers: dict[str, str],
        *,
        method: str = "POST",
        content_type: str | None = "application/json",
        params: dict[str, str] | None = None,
    ) -> None:
        """Send one request and apply the oracle to its answer."""
        self.sent["http"] += 1
        headers = {"accept": "application/json", **headers}
        if content_type:
            headers["content-type"] = content_type
        try:
            response = await self.http.request(
                method, "/graphql", content=body, headers=headers, params=params
            )
        except httpx.TimeoutException:
            self.fail(field, "http", credential.name, f"no answer within {HTTP_TIMEOUT_S:.0f} s", request)
            return
        except httpx.HTTPError as error:
            problem = f"connection failed without an answer: {type(error).__name__}: {_short(str(error))}"
            self.fail(field, "http", credential.name, problem, request)
            return
        try:
            answer = strict_json(response.content)
        except ValueError:
            kind = response.headers.get("content-type", "no content-type")
            problem = (
                f"HTTP {response.status_code}, a body that is not JSON ({kind}): {_short(response.text, 80)}"
            )
            self.fail(field, "http", credential.name, problem, request)
            return
        if response.status_code >= 500:
            problem = f"HTTP {response.status_code}: {_short(answer, 120)}"
            self.fail(field, "http", credential.name, problem, request)
            return
        self._tally(answer)
        self._fail_problems(result_problems(answer), field, "http", credential.name, request)

    # -- hand-written HTTP requests ----------------------------------------------------------

    async def malformed_http(self, target: Target) -> None:
        requests = malformed_http_requests() + echo_http_requests(target)
        requests += [
            RawRequest("a generated body", body)
            for body in draw_examples(GARBAGE_BODIES, self.examples * 10, self.seed)
        ]
        jobs = [self._send_raw(raw, c) for raw, c in itertools.product(requests, target.credentials)]
        await asyncio.gather(*jobs)

    async def _send_raw(self, raw: RawRequest, credential: Credential) -> None:
        body = raw.body
        shown = body.decode("utf-8", "backslashreplace") if body is not None else ""
        target = "/graphql" + (f"?{httpx.QueryParams(raw.params)}" if raw.params else "")
        request = (
            f"{raw.method} {target} {_credential_request(credential, 'http')}"
            f" content-type={raw.content_type} {raw.headers or ''}: {shown!r}"
        )
        async with self._limit:
            await self.post(
                f"(http: {raw.label})",
                credential,
                request,
                body,
                {**credential.headers, **raw.headers},
                method=raw.method,
                content_type=raw.content_type,
                params=raw.params,
            )

    # -- hand-written WebSocket messages -----------------------------------------------------

    async def malformed_ws(self, target: Target) -> None:
        messages = malformed_ws_messages() + [
            dump_json(message) for message in draw_examples(GARBAGE_MESSAGES, self.examples * 10, self.seed)
        ]
        anonymous = target.credentials[-1]
        jobs = [
            self._probe_ws(message, credential, True)
            for message in messages
            for credential in target.credentials
        ]
        jobs += [self._probe_ws(message, anonymous, False) for message in messages]
        limit = asyncio.Semaphore(4)

        async def limited(job: Any) -> None:
            async with limit:
                await job

        await asyncio.gather(*(limited(job) for job in jobs))
        await self.echo_ws(target)

    async def echo_ws(self, target: Target) -> None:
        """Numbers JSON has no words for, sent by one client (moveCursor, broadcastEvent,
        updatePresence), must not reach another as NaN or Infinity: a frame that is no longer JSON."""
        secret, end_user = target.credentials[1], target.credentials[2]
        token, _ = await _end_user_token(
            GQL(self.http).bearer(secret.init["apiKey"]), target.ids["room"], "fuzz-peer"
        )
        listener = Credential("end-user (listener)", {}, {**end_user.init, "token": token})
        room = json.dumps(target.ids["room"])
        listens = [
            (
                "Subscription.cursors",
                "subscription($r: UUID!) { cursors(roomId: $r) { cursors { x y offset } } }",
            ),
            ("Subscription.roomEvents", "subscription($r: UUID!) { roomEvents(roomId: $r) { payload } }"),
            (
                "Subscription.roomPresence",
                "subscription($r: UUID!) { roomPresence(roomId: $r) { users { connections { presence } } "
                "updates { connections { presence } } } }",
            ),
        ]
        sends = [
            (
                "Mutation.moveCursor",
                "mutation($r: UUID!, $v: Float) { moveCursor(roomId: $r, x: $v, y: 1) }",
                "{v}",
            ),
            (
                "Mutation.moveCursor",
                "mutation($r: UUID!, $v: JSON) { moveCursor(roomId: $r, x: 1, y: 1, offset: $v) }",
                '{{"x": {v}}}',
            ),
            (
                "Mutation.broadcastEvent",
                'mutation($r: UUID!, $v: JSON!) { broadcastEvent(roomId: $r, type: "fuzz", payload: $v) }',
                '{{"x": {v}}}',
            ),
            (
                "Mutation.updatePresence",
                "mutation($r: UUID!, $v: JSON) { updatePresence(roomId: $r, presence: $v) }",
                '{{"x": {v}}}',
            ),
        ]
        for constant in ("NaN", "Infinity", "-Infinity", "1e400"):
            what = f"a client sends {constant} (moveCursor, broadcastEvent, updatePresence) to a room"
            peer = await self._open_ws("(echo)", listener, what, True)
            sender = await self._open_ws("(echo)", end_user, what, True)
            if peer is None or sender is None:
                continue
            try:
                for number, (_field, query) in enumerate(listens):
                    await peer.send(_subscribe(f"l{number}", query, '{"r": ' + room + "}"))
                await sender.send(_subscribe("present", listens[2][1], '{"r": ' + room + "}"))
                await self._drain(peer, "Subscription.*", listener.name, what, 0.3)
                for number, (field, query, value) in enumerate(sends):
                    variables = '{"r": ' + room + ', "v": ' + value.format(v=constant) + "}"
                    request = (
                        f"WS connection_init end-user, then {_subscribe(f's{number}', query, variables)}"
                    )
                    await sender.send(_subscribe(f"s{number}", query, variables))
                    await self._drain(sender, field, end_user.name, request, 0.1)
                self.sent["ws"] += len(sends)
                # What the others receive: blamed on the subscription that carried it.
                request = f"subscribed to cursors, roomEvents and roomPresence while {what}"
                await self._drain(peer, "Subscription.* (relayed)", listener.name, request, 0.5)
            except ConnectionClosed:
                pass
            finally:
                for connection, credential in ((peer, listener), (sender, end_user)):
                    if connection.close_code is not None:  # the server closed it
                        self._closed(connection, "(echo)", credential.name, what)
                    await connection.close()

    async def _drain(
        self, connection: ClientConnection, field: str, credential: str, request: str, seconds: float
    ) -> None:
        """Every frame for `seconds`, through the oracle."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while (left := deadline - time.monotonic()) > 0:
                frame = await asyncio.wait_for(connection.recv(), left)
                message = self._check_frame(frame, field, credential, request)
                if message is not None and message.get("type") == "ping":
                    await connection.send(json.dumps({"type": "pong"}))

    async def _probe_ws(self, message: str | bytes, credential: Credential, init: bool) -> None:
        """One malformed message on a fresh socket (after connection_init, or before it), then probes:
        a ping and (once initialised) a trivial operation. The server must answer them, or close the
        socket with a code of its own; whatever it says about the malformed message comes first."""
        field = f"(ws message: {_message_kind(message)})"
        shown = message if isinstance(message, str) else f"binary {message!r}"
        prefix = f"connection_init {credential.name}, then " if init else "before connection_init: "
        request = f"WS {prefix}{_short(shown, 400)}"
        connection = await self._open_ws(field, credential, request, init)
        if connection is None:
            return
        self.sent["ws"] += 1
        deadline = time.monotonic() + WS_PROBE_TIMEOUT_S
        awaited = {"pong", "complete"} if init else {"pong"}
        try:
            await connection.send(message)
            await connection.send(json.dumps({"type": "ping"}))
            if init:
                await connection.send(json.dumps({"id": PROBE_ID, "type": "subscribe", "payload": PROBE}))
            while awaited:
                frame = await asyncio.wait_for(connection.recv(), max(0.0, deadline - time.monotonic()))
                answer = self._check_frame(frame, field, credential.name, request)
                kind = answer.get("type") if answer is not None else None
                if kind == "pong" or (kind == "complete" and answer.get("id") == PROBE_ID):  # type: ignore[union-attr]
                    awaited.discard(kind)
                if kind == "ping":
                    await connection.send(json.dumps({"type": "pong"}))
            with contextlib.suppress(TimeoutError):  # anything said late about the malformed message
                while True:
                    frame = await asyncio.wait_for(connection.recv(), WS_PROBE_GRACE_S)
                    self._check_frame(frame, field, credential.name, request)
        except ConnectionClosed:
            self._closed(connection, field, credential.name, request)
        except TimeoutError:
            problem = f"neither a pong nor a close within {WS_PROBE_TIMEOUT_S:.0f} s"
            self.fail(field, "ws", credential.name, problem, request)
        finally:
            await connection.close()

    async def _open_ws(
        self, field: str, credential: Credential, request: str, init: bool
    ) -> ClientConnection | None:
        try:
            connection = await connect(
                self.ws_url,
                subprotocols=[PROTOCOL],
                compression=None,
                max_size=None,
                open_timeout=10,  # type: ignore[list-item]
            )
        except InvalidStatus as error:
            status = error.response.status_code
            if status >= 500:
                self.fail(field, "ws", credential.name, f"handshake answered HTTP {status}", request)
            return None
        except (OSError, TimeoutError) as error:
            self.fail(
                field, "ws", credential.name, f"cannot connect: {type(error).__name__}: {error}", request
            )
            return None
        if not init:
            return connection
        try:
            await connection.send(json.dumps({"type": "connection_init", "payload": credential.init}))
            ack = await asyncio.wait_for(_next_frame(connection), WS_ANSWER_TIMEOUT_S)
        except ConnectionClosed:
            self._closed(
                connection, "(connection_init)", credential.name, f"connection_init {credential.name}"
            )
            return None
        except (TimeoutError, ValueError) as error:
            problem = f"no connection_ack ({type(error).__name__})"
            self.fail("(connection_init)", "ws", credential.name, problem, request)
            await connection.close()
            return None
        if ack.get("type") != "connection_ack":
            self.fail("(connection_init)", "ws", credential.name, f"answered {_short(ack)}", request)
            await connection.close()
            return None
        return connection

    def _closed(self, connection: ClientConnection, field: str, credential: str, request: str) -> None:
        code = connection.close_code if connection.close_code is not None else 1006
        self.closes[code] += 1
        if code in ABNORMAL_CLOSES:
            problem = (
                f"socket closed with {code} ({ABNORMAL_CLOSES[code]}) {_short(connection.close_reason or '')}"
            )
            self.fail(field, "ws", credential, problem.strip(), request)

    def _check_frame(
        self, frame: str | bytes, field: str, credential: str, request: str
    ) -> dict[str, Any] | None:
        """The oracle on one frame from the server; the message, if it is a JSON object."""
        try:
            message = strict_json(frame)
        except ValueError:
            self.fail(field, "ws", credential, f"a frame that is not JSON: {_short(frame)}", request)
            return None
        if not isinstance(message, dict):
            self.fail(field, "ws", credential, f"a frame that is no message: {_short(message)}", request)
            return None
        kind = message.get("type")
        if kind == "next":
            self._tally(message.get("payload"))
            self._fail_problems(result_problems(message.get("payload")), field, "ws", credential, request)
        elif kind == "error":
            self._tally(None, message.get("payload"))
            self._fail_problems(error_problems(message.get("payload")), field, "ws", credential, request)
        elif kind not in ("ping", "pong", "complete", "connection_ack"):
            self.fail(field, "ws", credential, f"a message of unknown type: {_short(message)}", request)
        return message

    # -- after a run -------------------------------------------------------------------------

    async def check_health(self) -> None:
        try:
            response = await self.http.get("/healthz", timeout=HEALTH_TIMEOUT_S)
            if response.status_code != 200:
                self.fail("/healthz", "http", "anonymous", f"HTTP {response.status_code}", "GET /healthz")
        except httpx.HTTPError as error:
            problem = f"no answer within {HEALTH_TIMEOUT_S:.0f} s: {type(error).__name__}"
            self.fail("/healthz", "http", "anonymous", problem, "GET /healthz")

    def missing_coverage(self, fields: list[tuple[str, str]] | None = None) -> list[str]:
        """Root fields some transport never carried (queries and mutations: both; subscriptions: ws)."""
        missing = []
        for kind, name in fields if fields is not None else self.fields():
            needed = {"ws"} if kind == "subscription" else {"http", "ws"}
            if not needed <= self.covered.get(name, set()):
                missing.append(f"{name} (sent over {sorted(self.covered.get(name, set())) or 'nothing'})")
        return missing

    def summary(self) -> str:
        sent = ", ".join(f"{transport}: {count}" for transport, count in sorted(self.sent.items()))
        closes = ", ".join(f"{code}: {count}" for code, count in sorted(self.closes.items()))
        outcomes = ", ".join(f"{code}: {count}" for code, count in self.outcomes.most_common())
        return f"sent {sent}; answers {outcomes or 'none'}; socket closes by code {closes or 'none'}"


def _subscribe(op_id: str, query: str, variables: str) -> str:
    payload = '{"query": ' + json.dumps(query) + ', "variables": ' + variables + "}"
    return '{"id": "' + op_id + '", "type": "subscribe", "payload": ' + payload + "}"


def _message_kind(message: str | bytes) -> str:
    if isinstance(message, bytes):
        return "binary frame"
    try:
        value = json.loads(message)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}"
    kind = value.get("type")
    return f"type {kind}" if isinstance(kind, str) and kind.isidentifier() else f"type {_short(kind, 20)}"


async def _next_frame(connection: ClientConnection) -> dict[str, Any]:
    while True:
        message = json.loads(await connection.recv())
        if message.get("type") == "ping":
            await connection.send(json.dumps({"type": "pong"}))
            continue
        return message  # type: ignore[no-any-return]


class WsSession:
    """One credential's graphql-transport-ws socket, reopened whenever the server closes it.

    Operations are pipelined in batches. When the server closes the socket during a batch, each of
    its operations is sent again alone on a fresh socket, so that the close is blamed on the right one.
    """

    def __init__(self, fuzzer: Fuzzer, credential: Credential) -> None:
        self.fuzzer = fuzzer
        self.credential = credential
        self.connection: ClientConnection | None = None
        self.ids = itertools.count(1)
        self.by_id: dict[str, Operation] = {}

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    def _request(self, op: Operation) -> str:
        return f"WS connection_init {self.credential.name}, then subscribe {op.payload()}"

    async def run(self, operations: list[Operation]) -> None:
        batches = deque(operations[i : i + WS_BATCH] for i in range(0, len(operations), WS_BATCH))
        refused = 0
        while batches:
            batch = batches.popleft()
            if self.connection is None:
                self.connection = await self.fuzzer._open_ws(
                    batch[0].field, self.credential, self._request(batch[0]), True
                )
                if self.connection is None:
                    refused += 1
                    if refused > 3:  # the credential no longer works: these operations go unsent
                        return
                    batches.appendleft(batch)
                    continue
            closed = await self._exchange(batch)
            if closed and len(batch) > 1:
                batches.extendleft([op] for op in reversed(batch))

    async def _exchange(self, batch: list[Operation]) -> bool:
        """Send a batch and read its answers; True if the server closed the socket."""
        connection = self.connection
        assert connection is not None
        fuzzer, credential = self.fuzzer, self.credential.name
        waiting: dict[str, Operation] = {}
        loop = asyncio.get_running_loop()
        try:
            for op in batch:
                op_id = str(next(self.ids))
                message = '{"id": "' + op_id + '", "type": "subscribe", "payload": ' + op.payload() + "}"
                await connection.send(message)  # ASCII: json.dumps escapes everything else
                fuzzer.sent["ws"] += 1
                waiting[op_id] = self.by_id[op_id] = op
            silent_until = loop.time() + WS_SUBSCRIPTION_WAIT_S
            answer_until = loop.time() + WS_ANSWER_TIMEOUT_S
            while waiting:
                now = loop.time()
                silent = [i for i, op in waiting.items() if op.kind == "subscription"]
                if silent and now >= silent_until:
                    for op_id in silent:  # no event yet (roomEvents, documentUpdates): not a failure
                        await connection.send(json.dumps({"id": op_id, "type": "complete"}))
                        self._done(waiting.pop(op_id))
                    continue
                if now >= answer_until:
                    for op in waiting.values():
                        problem = f"no answer within {WS_ANSWER_TIMEOUT_S:.0f} s over the WebSocket"
                        fuzzer.fail(op.field, "ws", credential, problem, self._request(op))
                    await self.close()
                    return False
                try:
                    frame = await asyncio.wait_for(
                        connection.recv(), (silent_until if silent else answer_until) - now
                    )
                except TimeoutError:
                    continue
                await self._receive(connection, frame, waiting, batch)
        except ConnectionClosed:
            self.connection = None
            if len(batch) == 1:
                op = batch[0]
                fuzzer._closed(connection, op.field, credential, self._request(op))
                self._done(op)
            return True
        return False

    async def _receive(
        self,
        connection: ClientConnection,
        frame: str | bytes,
        waiting: dict[str, Operation],
        batch: list[Operation],
    ) -> None:
        try:
            peek = json.loads(frame)
        except ValueError:
            peek = None
        op_id = peek.get("id") if isinstance(peek, dict) else None
        op = self.by_id.get(op_id) if isinstance(op_id, str) else None
        blamed = op or (batch[0] if len(batch) == 1 else None)
        field = blamed.field if blamed else "(websocket)"
        request = self._request(blamed) if blamed else f"one of {len(batch)} operations on one socket"
        message = self.fuzzer._check_frame(frame, field, self.credential.name, request)
        if message is None:
            return
        kind = message.get("type")
        if kind == "ping":
            await connection.send(json.dumps({"type": "pong"}))
        elif op is not None and op_id in waiting:
            if kind in ("error", "complete"):
                self._done(waiting.pop(op_id))
            elif kind == "next" and op.kind == "subscription":
                await connection.send(json.dumps({"id": op_id, "type": "complete"}))
                self._done(waiting.pop(op_id))

    def _done(self, op: Operation) -> None:
        self.fuzzer.covered[op.field].add("ws")


# ---------------------------------------------------------------------------------------------
# Requests and messages that are not GraphQL at all

_HEALTH = "{ health { ok } }"
_DEEP_ARRAY = "[" * DEEP + "]" * DEEP


def _body(query: str = _HEALTH, variables: str | None = None, **members: str) -> bytes:
    text = '{"query": ' + json.dumps(query)
    if variables is not None:
        text += ', "variables": ' + variables
    for name, value in members.items():
        text += f', "{name}": {value}'
    return (text + "}").encode()


def malformed_http_requests() -> list[RawRequest]:
    float_query = "query($x: Float) { health { ok } }"
    json_query = "query($x: JSON) { health { ok } }"
    string_query = "query($x: String) { health { ok } }"
    return [
        RawRequest("empty body", b""),
        RawRequest("null", b"null"),
        RawRequest("a number", b"42"),
        RawRequest("a string", b'"str"'),
        RawRequest("true", b"true"),
        RawRequest("a list", b"[]"),
        RawRequest("a batch", b'[{"query": "{ health { ok } }"}]'),
        RawRequest("no query", b"{}"),
        RawRequest("query null", b'{"query": null}'),
        RawRequest("query a number", b'{"query": 42}'),
        RawRequest("query a list", b'{"query": ["{ health { ok } }"]}'),
        RawRequest("query an object", b'{"query": {}}'),
        RawRequest("empty query", b'{"query": ""}'),
        RawRequest("variables a string", _body(variables='"x"')),
        RawRequest("variables a number", _body(variables="42")),
        RawRequest("variables a list", _body(variables="[]")),
        RawRequest("variables true", _body(variables="true")),
        RawRequest("operationName a number", _body(operationName="42")),
        RawRequest("operationName an object", _body(operationName="{}")),
        RawRequest("operationName unknown", _body(operationName='"Nope"')),
        RawRequest("extensions a string", _body(extensions='"x"')),
        RawRequest("extensions a number", _body(extensions="42")),
        RawRequest("invalid UTF-8", b"\xff\xfe\xfd"),
        RawRequest("invalid UTF-8 in the query", b'{"query": "{ health { ok } } \xff"}'),
        RawRequest("truncated JSON", b'{"query": "{ health { ok } }"'),
        RawRequest("not JSON", b"query { health { ok } }"),
        RawRequest("a byte order mark", b"\xef\xbb\xbf" + _body()),
        RawRequest("duplicate keys", b'{"query": 1, "query": "{ health { ok } }"}'),
        RawRequest("NaN variable", _body(float_query, '{"x": NaN}')),
        RawRequest("Infinity variable", _body(float_query, '{"x": Infinity}')),
        RawRequest("1e400 variable", _body(float_query, '{"x": 1e400}')),
        RawRequest("a 5000-digit integer", _body(json_query, '{"x": 1' + "0" * 5000 + "}")),
        RawRequest("a lone surrogate in a variable", _body(string_query, '{"x": "\\ud800"}')),
        RawRequest("NUL in a variable", _body(string_query, '{"x": "\\u0000"}')),
        RawRequest(
            "a lone surrogate as raw bytes",
            '{"query": "{ health { ok } } #\ud800"}'.encode("utf-8", "surrogatepass"),
        ),
        RawRequest("a lone surrogate escaped in the query", b'{"query": "{ health { ok } } #\\ud800"}'),
        RawRequest("NUL in the query", b'{"query": "{ health { ok } }\\u0000"}'),
        RawRequest("deeply nested body", _DEEP_ARRAY.encode()),
        RawRequest("deeply nested variables", _body(json_query, '{"x": ' + _DEEP_ARRAY + "}")),
        RawRequest("deeply nested query", _body("{" * 20_000 + "}" * 20_000)),
        RawRequest("a long chain of fragments", _body(_fragment_chain(3000))),
        RawRequest("2 MB", _body(variables='{"pad": "' + "x" * 2_000_000 + '"}')),
        RawRequest("text/plain", _body(), "text/plain"),
        RawRequest("form-encoded", b"query=%7B+health+%7B+ok+%7D+%7D", "application/x-www-form-urlencoded"),
        RawRequest("broken multipart", b"--x\r\nnope", "multipart/form-data; boundary=x"),
        RawRequest("multipart without boundary", b"nope", "multipart/form-data"),
        RawRequest("application/graphql", b"{ health { ok } }", "application/graphql"),
        RawRequest("no content-type", _body(), None),
        RawRequest("a charset of latin-1", _body(), "application/json; charset=latin-1"),
        RawRequest("an unknown charset", _body(), "application/json; charset=nope"),
        RawRequest("GET", None, None, "GET", {"query": _HEALTH}),
        RawRequest("GET, variables not JSON", None, None, "GET", {"query": _HEALTH, "variables": "{x"}),
        RawRequest(
            "GET, variables NaN", None, None, "GET", {"query": float_query, "variables": '{"x": NaN}'}
        ),
        RawRequest("GET, a mutation", None, None, "GET", {"query": "mutation { logOutEverywhere }"}),
        RawRequest("GET, no query", None, None, "GET", {}),
        RawRequest(
            "GET, a lone surrogate", None, None, "GET", {"query": _HEALTH, "variables": '{"x": "\\ud800"}'}
        ),
        RawRequest("PUT", _body(), method="PUT"),
        RawRequest("DELETE", None, None, "DELETE"),
        RawRequest("PATCH", _body(), method="PATCH"),
        RawRequest("bearer without a token", _body(), headers={"authorization": "Bearer"}),
        RawRequest("basic auth", _body(), headers={"authorization": "Basic Zm9vOmJhcg=="}),
        RawRequest("a broken JWT", _body(), headers={"authorization": "Bearer a.b.c"}),
        RawRequest("an unknown secret key", _body(), headers={"authorization": "Bearer sk_live_nope"}),
        RawRequest("a long token", _body(), headers={"authorization": "Bearer " + "x" * 8000}),
        RawRequest("a publishable key alone", _body(), headers={"x-api-key": "pk_live_nope"}),
        RawRequest("a bad request id", _body(), headers={"x-request-id": "x" * 5000}),
    ]


def echo_http_requests(target: Target) -> list[RawRequest]:
    """Non-finite numbers in JSON inputs that the answer shows again: NaN accepted comes back as NaN,
    and the body is no longer JSON."""
    developer, secret = (c.headers for c in target.credentials[:2])
    room, org = json.dumps(target.ids["room"]), json.dumps(target.ids["organization"])
    requests = []
    for constant in ("NaN", "Infinity", "-Infinity", "1e400"):
        value = '{"x": ' + constant + "}"
        requests += [
            RawRequest(
                f"{constant} in preferences",
                _body(
                    "mutation($v: JSON) { updateProfile(input: {preferences: $v}) { preferences } }",
                    '{"v": ' + value + "}",
                ),
                headers=developer,
            ),
            RawRequest(
                f"{constant} in organization settings",
                _body(
                    "mutation($o: UUID!, $v: JSON) { updateOrganization(id: $o, input: {settings: $v}) "
                    "{ settings } }",
                    '{"o": ' + org + ', "v": ' + value + "}",
                ),
                headers=developer,
            ),
            RawRequest(
                f"{constant} in document metadata",
                _body(
                    "mutation($r: UUID!, $v: JSON) { createDocument(roomId: $r, "
                    'input: {name: "n", metadata: $v}) { metadata } }',
                    '{"r": ' + room + ', "v": ' + value + "}",
                ),
                headers=secret,
            ),
            RawRequest(
                f"{constant} in end-user info",
                _body(
                    'mutation($v: JSON) { createEndUserToken(input: {userId: "u", userInfo: {extra: $v}, '
                    "permissions: []}) { token } }",
                    '{"v": ' + value + "}",
                ),
                headers=secret,
            ),
        ]
    return requests


def _fragment_chain(length: int) -> str:
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(length))
    return f"{{ ...F0 }} {fragments} fragment F{length} on Query {{ health {{ ok }} }}"


GARBAGE_BODIES = st.one_of(
    st.binary(max_size=64),
    JSON_VALUES.map(dump_json).map(str.encode),
    st.fixed_dictionaries(
        {}, optional={"query": st.text(max_size=40) | JSON_VALUES, "variables": JSON_VALUES | HOSTILE}
    ).map(lambda body: dump_json(body).encode()),
)

GARBAGE_MESSAGES = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["subscribe", "complete", "ping", "pong", "connection_init", "next", "error"])
        | JSON_VALUES,
        "id": st.text(max_size=8) | JSON_VALUES,
        "payload": st.fixed_dictionaries(
            {}, optional={"query": st.sampled_from([_HEALTH, "{", ""]) | JSON_VALUES, "variables": HOSTILE}
        )
        | JSON_VALUES,
    },
)


def malformed_ws_messages() -> list[str | bytes]:
    health = json.dumps(_HEALTH)

    def subscribe(payload: str, op_id: str = '"1"') -> str:
        return '{"id": ' + op_id + ', "type": "subscribe", "payload": ' + payload + "}"

    return [
        "not json",
        "",
        "{",
        "[]",
        "null",
        "42",
        '"str"',
        "{}",
        '{"id": "1"}',
        '{"type": "unknown"}',
        '{"type": 42}',
        '{"type": null}',
        '{"type": ["subscribe"]}',
        '{"type": "complete", "id": {"a": 1}}',
        '{"type": "complete", "id": 1}',
        '{"type": "complete", "id": null}',
        '{"type": "complete"}',
        '{"type": "complete", "id": "never-subscribed"}',
        '{"type": "connection_init", "payload": "x"}',
        '{"type": "connection_init", "payload": []}',
        '{"type": "connection_init", "payload": 42}',
        '{"type": "connection_init", "payload": {"apiKey": 42, "token": ["x"]}}',
        '{"type": "connection_init", "payload": {"accessToken": "\\ud800"}}',
        '{"type": "ping", "payload": "x"}',
        '{"type": "pong", "payload": 42}',
        '{"type": "next", "id": "1", "payload": {}}',
        subscribe('{"query": ' + health + ', "variables": "x"}'),
        subscribe('{"query": ' + health + ', "variables": 42}'),
        subscribe('{"query": ' + health + ', "variables": []}'),
        subscribe('{"query": ' + health + ', "extensions": "x"}'),
        subscribe('{"query": ' + health + ', "operationName": 42}'),
        subscribe('"x"'),
        subscribe("null"),
        subscribe("[]"),
        subscribe("{}"),
        subscribe('{"query": 42}'),
        subscribe('{"query": null}'),
        subscribe('{"query": ""}'),
        subscribe('{"query": "{"}'),
        subscribe('{"query": ' + health + "}", "1"),
        subscribe('{"query": ' + health + "}", "null"),
        subscribe('{"query": ' + health + "}", "{}"),
        subscribe('{"query": ' + health + "}", '""'),
        subscribe('{"query": ' + health + "}", json.dumps("x" * 10_000)),
        subscribe('{"query": ' + health + "}", '"\\ud800"'),
        subscribe('{"query": ' + health + "}", "1" + "0" * 5000),
        subscribe('{"query": "query($x: Float) { health { ok } }", "variables": {"x": NaN}}'),
        subscribe('{"query": "query($x: String) { health { ok } }", "variables": {"x": "\\ud800"}}'),
        subscribe('{"query": "query($x: String) { health { ok } }", "variables": {"x": "\\u0000"}}'),
        subscribe('{"query": "query($x: JSON) { health { ok } }", "variables": {"x": ' + _DEEP_ARRAY + "}}"),
        subscribe('{"query": "subscription { health(intervalMs: -1) { ok } }"}'),
        subscribe('{"query": "subscription { health(intervalMs: 2147483647) { ok } }"}'),
        subscribe('{"query": ' + json.dumps(_fragment_chain(3000)) + "}"),
        '{"type": "subscribe", "payload": {"query": ' + health + "}}",
        _DEEP_ARRAY,
        '{"type": "\\ud800"}',
        b"\xff\xfe\xfd",
        b'{"type": "ping"}',
    ]
