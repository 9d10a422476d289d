"""The one GraphQL schema: domains' types merged, context, error masking and the ASGI view."""
