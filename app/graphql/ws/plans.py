"""Operations parsed and validated once, then recognised as hot (see fast.py) or not.

`PlanCache.get(query, operation_name)` answers a Plan when the document is valid and its only
root field is a hot field, else None (Strawberry executes it as usual, and reports any error in
the document with its usual coded errors). Both answers are cached: clients send the same few
documents again and again. The cache is bounded in bytes: a plan keeps its document's AST and
compiled renderers (about 150 times its text), and a document larger than hot operations ever
are is not planned at all (Strawberry serves it, exactly as it would serve a plan).
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    VariableNode,
    get_operation_ast,
    parse,
    specified_rules,
    type_from_ast,
    value_from_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from app.graphql.byte_lru import ByteLRU
from app.graphql.literals import validate
from app.graphql.ws.fast import MAX_PLAN_QUERY_BYTES, FastFields, FastMutation, FastSubscription
from app.graphql.ws.selection import (
    Compiler,
    NotCompilable,
    PayloadRenderer,
    Render,
    collect_fields,
    payload_renderer,
)
from app.settings import Settings

# What a plan keeps, estimated from its text (measured with tracemalloc: ~15 KB for a 56-byte
# cursor move, ~73 KB for the 457-byte presence subscription); a non-hot answer keeps its text.
PLAN_BASE_BYTES = 16 << 10
PLAN_BYTES_PER_QUERY_BYTE = 160
# Hundreds of ordinary plans (the 512 entries of before), a dozen of the largest.
MAX_PLAN_CACHE_BYTES = 16 << 20
MAX_RENDERERS_PER_PLAN = 32

_UNCACHED = object()


@dataclass
class Plan:
    schema: Any  # graphql-core schema
    attributes: dict[tuple[str, str], str]
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    field_def: GraphQLField
    nodes: list[FieldNode]  # the root field, as selected (merged under one response key)
    response_key: str
    mutation: FastMutation | None = None
    subscription: FastSubscription | None = None
    # Whether directives inside the selection make its shape depend on the variables.
    depends_on_variables: bool = False
    # Variables and arguments of plain scalar types are coerced without graphql-core's machinery.
    quick: QuickArguments | None = None
    _renderers: OrderedDict[Any, Any] = field(default_factory=OrderedDict)

    def arguments(self, raw_variables: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(coerced variables, root field arguments by GraphQL name), or None when a variable
        is wrong (Strawberry then answers with its usual error)."""
        if raw_variables is not None and not isinstance(raw_variables, dict):
            return None
        if self.quick is not None:
            return self.quick(raw_variables or {})
        coerced = get_variable_values(
            self.schema, self.operation.variable_definitions or (), raw_variables or {}
        )
        if not isinstance(coerced, VariableValues):
            return None
        try:
            arguments = get_argument_values(self.field_def, self.nodes[0], coerced)
        except GraphQLError:
            return None
        return coerced.coerced, arguments

    def _compiler(self, variables: dict[str, Any]) -> Compiler:
        return Compiler(self.attributes, self.fragments, variables if self.depends_on_variables else {})

    def _cached(self, kind: str, variables: dict[str, Any], build: Any) -> Any:
        key = (kind, _freeze(variables) if self.depends_on_variables else None)
        found = self._renderers.get(key)
        if found is None:
            found = self._renderers[key] = build(self._compiler(variables))
            if len(self._renderers) > MAX_RENDERERS_PER_PLAN:
                self._renderers.popitem(last=False)
        return found

    def payload_renderer(self, variables: dict[str, Any]) -> PayloadRenderer:
        """One renderer per document (and directive variables): streams that share it share
        every rendered payload."""
        assert self.subscription is not None
        event_type = self.schema.type_map[self.subscription.event_type]
        splice = self.subscription.splice
        return self._cached(  # type: ignore[no-any-return]
            "payload",
            variables,
            lambda compiler: payload_renderer(compiler, event_type, self.response_key, self.nodes, splice),
        )

    def result_renderer(self, variables: dict[str, Any]) -> Render:
        """Renders a mutation's whole payload from its resolver's return value."""
        return self._cached("result", variables, self._build_result_renderer)  # type: ignore[no-any-return]

    def _build_result_renderer(self, compiler: Compiler) -> Render:
        prefix = '{"data":{' + json.dumps(self.response_key) + ":"
        value = compiler.value(self.field_def.type, self.nodes)
        return lambda result: prefix + value(result) + "}}"


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class QuickArguments:
    """Coerces variables of scalar and enum types, and the root field's arguments, directly:
    graphql-core's general coercion was a seventh of the CPU of a cursor move. Anything it does
    not handle (input objects, lists, a wrong value) goes the general way."""

    def __init__(self, variables: list[tuple[str, bool, Any, Any]], arguments: list[tuple[str, Any]]) -> None:
        self._variables = variables  # (name, non-null, parse, default or Undefined)
        self._arguments = arguments  # (name, ("literal", value) | ("variable", name, non-null, default))

    @classmethod
    def compile(
        cls, schema: Any, operation: OperationDefinitionNode, field: GraphQLField, node: FieldNode
    ) -> QuickArguments | None:
        variables = []
        for definition in operation.variable_definitions or ():
            type_ = type_from_ast(schema, definition.type)
            non_null = isinstance(type_, GraphQLNonNull)
            named = type_.of_type if non_null else type_
            if not isinstance(named, GraphQLScalarType | GraphQLEnumType):
                return None
            default: Any = Undefined
            if definition.default_value is not None:
                default = value_from_ast(definition.default_value, type_)
                if default is Undefined:
                    return None
            variables.append((definition.variable.name.value, non_null, named.parse_value, default))
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        arguments: list[tuple[str, Any]] = []
        for name, definition in field.args.items():
            value = given.get(name)
            non_null = isinstance(definition.type, GraphQLNonNull)
            if value is None:
                if definition.default_value is not Undefined:
                    arguments.append((name, ("literal", definition.default_value)))
                continue
            if isinstance(value, VariableNode):
                arguments.append((name, ("variable", value.name.value, non_null, definition.default_value)))
                continue
            literal = value_from_ast(value, definition.type)
            if literal is Undefined:
                return None
            arguments.append((name, ("literal", literal)))
        return cls(variables, arguments)

    def __call__(self, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        coerced: dict[str, Any] = {}
        for name, non_null, parse_value, default in self._variables:
            if name in raw:
                value = raw[name]
                if value is None:
                    if non_null:
                        return None
                    coerced[name] = None
                    continue
                try:
                    coerced[name] = parse_value(value)
                except Exception:
                    return None
                if coerced[name] is Undefined:
                    return None
            elif default is not Undefined:
                coerced[name] = default
            elif non_null:
                return None
        arguments: dict[str, Any] = {}
        for name, source in self._arguments:
            if source[0] == "literal":
                arguments[name] = source[1]
                continue
            _, variable, non_null, default = source
            if variable in coerced:
                value = coerced[variable]
                if value is None and non_null:
                    return None
                arguments[name] = value
            elif default is not Undefined:
                arguments[name] = default
            elif non_null:
                return None
        return coerced, arguments


class PlanCache:
    def __init__(self, schema: strawberry.Schema, fast: FastFields, settings: Settings) -> None:
        self._schema = schema._schema
        self.fast = fast
        self._max_tokens = settings.max_query_tokens
        # The same rules as the schema's extensions apply (depth, aliases, introspection switch).
        rules: list[Any] = list(specified_rules)
        rules += QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules
        rules += MaxAliasesLimiter(max_alias_count=settings.max_query_aliases).validation_rules
        if not settings.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self._rules = tuple(rules)
        self._attributes = _plain_attributes(schema)
        self.cache: ByteLRU[tuple[str, str | None], Plan | None] = ByteLRU(MAX_PLAN_CACHE_BYTES)

    def get(self, query: str, operation_name: str | None) -> Plan | None:
        key = (query, operation_name)
        found = self.cache.get(key, _UNCACHED)
        if found is not _UNCACHED:
            return found  # type: ignore[return-value]
        size = sys.getsizeof(query) + sys.getsizeof(operation_name)
        if size > MAX_PLAN_QUERY_BYTES:
            return None  # not a hot operation anyone sends: neither planned nor cached
        plan = self._compile(query, operation_name)
        self.cache.put(
            key, plan, size if plan is None else PLAN_BASE_BYTES + size * PLAN_BYTES_PER_QUERY_BYTE
        )
        return plan

    def _compile(self, query: str, operation_name: str | None) -> Plan | None:
        try:
            document = parse(query, max_tokens=self._max_tokens)
            if validate(self._schema, document, self._rules):
                return None
        except (GraphQLError, RecursionError):
            return None  # Strawberry answers it, with its coded error
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation == OperationType.QUERY:
            return None
        fragments = _fragments(document)
        root_type: GraphQLObjectType = (
            self._schema.mutation_type
            if operation.operation == OperationType.MUTATION
            else self._schema.subscription_type
        )
        if _has_directives(operation.selection_set, fragments):
            return None  # a root field present or not depending on variables: leave it to Strawberry
        root_fields = collect_fields(root_type.name, [operation.selection_set], fragments, {})
        if len(root_fields) != 1:
            return None
        ((response_key, nodes),) = root_fields.items()
        name = nodes[0].name.value
        if operation.operation == OperationType.MUTATION:
            mutation, subscription = self.fast.mutations.get(name), None
        else:
            mutation, subscription = None, self.fast.subscriptions.get(name)
        if mutation is None and subscription is None:
            return None
        plan = Plan(
            quick=QuickArguments.compile(self._schema, operation, root_type.fields[name], nodes[0]),
            schema=self._schema,
            attributes=self._attributes,
            operation=operation,
            fragments=fragments,
            field_def=root_type.fields[name],
            nodes=nodes,
            response_key=response_key,
            mutation=mutation,
            subscription=subscription,
            depends_on_variables=any(
                node.selection_set is not None and _has_directives(node.selection_set, fragments, deep=True)
                for node in nodes
            ),
        )
        try:  # compile once now: a document these renderers cannot serve goes to Strawberry
            if subscription is not None:
                plan.payload_renderer({})
            else:
                plan.result_renderer({})
        except (NotCompilable, KeyError):
            return None
        return plan


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _has_directives(
    selection_set: Any, fragments: dict[str, FragmentDefinitionNode], deep: bool = False
) -> bool:
    """Whether @skip/@include appear in this selection set (through its fragments; with `deep`,
    at any depth)."""
    seen: set[str] = set()

    def visit(selection_set: Any, top: bool) -> bool:
        for selection in selection_set.selections:
            if any(d.name.value in ("skip", "include") for d in selection.directives or ()):
                return True
            child = getattr(selection, "selection_set", None)
            kind = selection.kind
            if kind == "fragment_spread":
                name = selection.name.value
                if name in seen or name not in fragments:
                    continue
                seen.add(name)
                if visit(fragments[name].selection_set, top):
                    return True
            elif kind == "inline_fragment":
                if visit(child, top):
                    return True
            elif child is not None and deep and visit(child, False):
                return True
        return False

    return visit(selection_set, True)


def _plain_attributes(schema: strawberry.Schema) -> dict[tuple[str, str], str]:
    """(type, GraphQL field) -> Python attribute, for the fields that just read an attribute."""
    converter = schema.config.name_converter
    attributes: dict[tuple[str, str], str] = {}
    for type_name, graphql_type in schema._schema.type_map.items():
        definition = (getattr(graphql_type, "extensions", None) or {}).get("strawberry-definition")
        for strawberry_field in getattr(definition, "fields", None) or ():
            if strawberry_field.base_resolver is None:
                attributes[(type_name, converter.get_graphql_name(strawberry_field))] = (
                    strawberry_field.python_name
                )
    return attributes
