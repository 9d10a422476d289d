"""Documents: durable log positions, size, trash; snapshots record their log position.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DOCUMENT_COUNTERS = ("last_seq", "compacted_seq", "size_bytes")


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        for column in _DOCUMENT_COUNTERS:
            batch.add_column(sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("documents") as batch:
        for column in _DOCUMENT_COUNTERS:
            batch.alter_column(column, existing_type=sa.BigInteger(), server_default=None)
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("snapshots") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("deleted_at")
        for column in reversed(_DOCUMENT_COUNTERS):
            batch.drop_column(column)
