"""Validation cached by query text, bounded in bytes (replaces Strawberry's ValidationCache).

Strawberry's cache is an lru_cache keyed by (schema, parsed document, rules): by entries, each
holding a whole AST. And here it never hit: QueryDepthLimiter and MaxAliasesLimiter build new rule
classes for every request, so every request added an entry. The rules are fixed per schema, so
the query text is the key, in a cache that belongs to one schema (see `ValidatedQueries`).

Only valid verdicts are kept: a validation error points into its document's AST (it would keep the
AST alive), and clients do not repeat invalid documents; those are validated each time, with the
very errors Strawberry would report.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from app.graphql.byte_lru import ByteLRU
from app.graphql.literals import validate

# Real client operations are a few hundred bytes to a few KiB (GraphiQL's introspection query is
# ~2 KiB, generated documents with fragments a few KiB) and are sent again and again; a larger
# document is validated each time rather than kept.
MAX_QUERY_BYTES = 16 << 10
# Room for thousands of ordinary operations, or 256 at the size limit.
MAX_CACHE_BYTES = 4 << 20


class ValidatedQueries:
    """The extension factory of one schema (`extensions=[ValidatedQueries(), ...]`): the texts of
    the valid documents it has seen, shared by every request's extension."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES, max_query_bytes: int = MAX_QUERY_BYTES) -> None:
        self.cache: ByteLRU[str, bool] = ByteLRU(max_bytes, max_entry_bytes=max_query_bytes)

    def __call__(self) -> SchemaExtension:
        return CachedValidation(self.cache)


class CachedValidation(SchemaExtension):
    def __init__(self, cache: ByteLRU[str, bool]) -> None:
        super().__init__()
        self._cache = cache

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        # Without a text (a document given parsed), or without rules, Strawberry does as usual.
        if query is not None and context.validation_rules and context.pre_execution_errors is None:
            if self._cache.get(query, False):
                context.pre_execution_errors = []
            else:
                assert context.graphql_document is not None
                errors = validate(context.schema._schema, context.graphql_document, context.validation_rules)
                context.pre_execution_errors = errors
                if not errors:
                    self._cache.put(query, True, sys.getsizeof(query))
        yield
