"""Realtime plumbing: the pub/sub hub shared by every API process."""
