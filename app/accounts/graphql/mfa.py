"""GraphQL of the mfa flows (being written)."""

import strawberry


@strawberry.type
class MfaMutation:
    pass


@strawberry.type
class MfaQuery:
    pass
