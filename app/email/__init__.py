"""Outgoing email: queued in the database in the caller's transaction, delivered by a job."""
