"""The one schema: every domain's queries, mutations and subscriptions merged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, SchemaExtension

from app.accounts.graphql import AccountsQuery
from app.graphql.errors import CodedErrors
from app.graphql.system import SystemQuery, SystemSubscription
from app.graphql.transport_rules import SubscriptionsNeedWebSocket
from app.rooms.graphql import RoomsQuery


@strawberry.type
class Query(SystemQuery, AccountsQuery, RoomsQuery):
    pass


@strawberry.type
class Subscription(SystemSubscription):
    pass


class SyncForgeSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # CodedErrors logs unexpected errors with their request id; domain errors are not logged.
        return None


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    extensions: list[Callable[[], SchemaExtension]] = [CodedErrors, SubscriptionsNeedWebSocket]
    if not introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return SyncForgeSchema(query=Query, subscription=Subscription, extensions=extensions)


def export_sdl() -> str:
    """The SDL committed as schema.graphql (settings do not change it)."""
    return build_schema().as_str().rstrip() + "\n"
