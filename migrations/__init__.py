"""Alembic migrations of the SyncForge database (run by `syncforge migrate`)."""
