"""GraphQL of the accounts domain, merged into the schema as AccountsQuery and AccountsMutation."""

import strawberry

from app.accounts.graphql.auth import AuthMutation, AuthQuery
from app.accounts.graphql.email import EmailMutation, EmailQuery
from app.accounts.graphql.mfa import MfaMutation, MfaQuery
from app.accounts.graphql.oauth import OauthMutation, OauthQuery
from app.accounts.graphql.organizations import OrganizationsMutation, OrganizationsQuery
from app.accounts.graphql.types import OrganizationType

__all__ = ["AccountsMutation", "AccountsQuery", "OrganizationType"]


@strawberry.type
class AccountsQuery(AuthQuery, OrganizationsQuery, EmailQuery, MfaQuery, OauthQuery):
    pass


@strawberry.type
class AccountsMutation(AuthMutation, OrganizationsMutation, EmailMutation, MfaMutation, OauthMutation):
    pass
