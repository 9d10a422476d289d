"""Rooms: realtime limits and activity; participants and connection logs of end-users.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:30:08.878519
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the tables; PostgreSQL gets plain ALTERs.
    with op.batch_alter_table("connection_logs") as batch:
        batch.add_column(sa.Column("end_user_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_connection_logs_end_user_id_end_users"),
            "end_users",
            ["end_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("end_user_id", sa.Uuid(), nullable=True))
        batch.alter_column("user_id", existing_type=sa.Uuid(), nullable=True)
        batch.drop_constraint(op.f("fk_participants_user_id_users"), type_="foreignkey")
        batch.create_foreign_key(
            op.f("fk_participants_end_user_id_end_users"),
            "end_users",
            ["end_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            op.f("fk_participants_user_id_users"), "users", ["user_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("idx_participants_end_user_id", ["end_user_id"], unique=False)
    with op.batch_alter_table("rooms") as batch:
        # Existing rooms get the model defaults.
        batch.add_column(sa.Column("max_participants", sa.Integer(), nullable=False, server_default="100"))
        batch.add_column(sa.Column("presence_ttl_s", sa.Integer(), nullable=False, server_default="30"))
        batch.add_column(sa.Column("cursor_tick_ms", sa.Integer(), nullable=False, server_default="50"))
        batch.add_column(sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("rooms") as batch:
        for column in ("max_participants", "presence_ttl_s", "cursor_tick_ms"):
            batch.alter_column(column, existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        for column in ("last_active_at", "cursor_tick_ms", "presence_ttl_s", "max_participants"):
            batch.drop_column(column)
    op.execute("DELETE FROM participants WHERE user_id IS NULL")
    with op.batch_alter_table("participants") as batch:
        batch.drop_index("idx_participants_end_user_id")
        batch.drop_constraint(op.f("fk_participants_user_id_users"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_participants_end_user_id_end_users"), type_="foreignkey")
        batch.create_foreign_key(
            op.f("fk_participants_user_id_users"), "users", ["user_id"], ["id"], ondelete="CASCADE"
        )
        batch.alter_column("user_id", existing_type=sa.Uuid(), nullable=False)
        batch.drop_column("end_user_id")
    with op.batch_alter_table("connection_logs") as batch:
        batch.drop_constraint(op.f("fk_connection_logs_end_user_id_end_users"), type_="foreignkey")
        batch.drop_column("end_user_id")
