"""GraphQL of the email flows (being written)."""

import strawberry


@strawberry.type
class EmailMutation:
    pass


@strawberry.type
class EmailQuery:
    pass
