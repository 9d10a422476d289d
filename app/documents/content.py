"""Readable content of Yjs state for GraphQL: a Y.Text root as text, a Y.Map or Y.Array as JSON."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import strawberry

from app.errors import ValidationFailed


@strawberry.enum
class SharedTypeKind(StrEnum):
    MAP = "map"
    ARRAY = "array"


# Strawberry reserves the parameter name `root` (the parent object): the argument is renamed.
RootName = Annotated[str, strawberry.argument(name="root", description="The root type's name in the Y.Doc.")]


def rendered(render: Any, state: bytes, *args: Any) -> Any:
    try:
        return render(state, *args)
    except Exception:
        raise ValidationFailed(
            f"root {args[0]!r} is not of that type in this document", field="root"
        ) from None
