"""The one schema: every domain's queries, mutations and subscriptions merged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from app.accounts.graphql import AccountsMutation, AccountsQuery
from app.accounts.graphql import organizations as organizations_graphql
from app.cursors import graphql as cursors
from app.cursors.graphql import CursorsMutation, CursorsSubscription
from app.documents import awareness_graphql
from app.documents import graphql as documents
from app.documents.awareness_graphql import AwarenessMutation, AwarenessSubscription
from app.documents.graphql import DocumentsMutation, DocumentsQuery, DocumentsSubscription
from app.documents.versions_graphql import VersionsMutation, VersionsQuery
from app.graphql.errors import CodedErrors
from app.graphql.gates import Gates
from app.graphql.system import SystemQuery, SystemSubscription
from app.graphql.validation_cache import ValidatedQueries
from app.graphql.ws.fast import FastFields
from app.presence import broadcast
from app.presence import graphql as presence
from app.presence.broadcast import BroadcastMutation, BroadcastSubscription
from app.presence.graphql import PresenceMutation, PresenceSubscription
from app.rooms.graphql import RoomsMutation, RoomsQuery
from app.settings import Settings


@strawberry.type
class Query(SystemQuery, AccountsQuery, RoomsQuery, DocumentsQuery, VersionsQuery):
    pass


@strawberry.type
class Mutation(
    AccountsMutation,
    RoomsMutation,
    PresenceMutation,
    CursorsMutation,
    BroadcastMutation,
    DocumentsMutation,
    VersionsMutation,
    AwarenessMutation,
):
    pass


@strawberry.type
class Subscription(
    SystemSubscription,
    PresenceSubscription,
    CursorsSubscription,
    BroadcastSubscription,
    DocumentsSubscription,
    AwarenessSubscription,
):
    pass


class SyncForgeSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # CodedErrors logs unexpected errors with their request id; domain errors are not logged.
        return None


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    extensions: list[Callable[[], SchemaExtension]] = [
        CodedErrors,
        Gates,
        # Clients send the same few operations again and again (cursor moves 20 times a second):
        # validate each distinct document once. (ParserCache would also help, but it bypasses the
        # coding of syntax errors; see the realtime issue's note.)
        ValidatedQueries(),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_query_aliases),
    ]
    if not settings.introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return SyncForgeSchema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)


def hot_fields() -> FastFields:
    """The operations the WebSocket handler serves without executing GraphQL (see app/graphql/ws)."""
    return FastFields.of(
        *organizations_graphql.FAST_FIELDS,
        *cursors.FAST_FIELDS,
        *broadcast.FAST_FIELDS,
        *presence.FAST_FIELDS,
        *documents.FAST_FIELDS,
        *awareness_graphql.FAST_FIELDS,
    )


def export_sdl() -> str:
    """The SDL committed as schema.graphql (settings do not change it)."""
    return build_schema().as_str().rstrip() + "\n"
