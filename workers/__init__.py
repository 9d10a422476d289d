"""Background jobs: Dramatiq actors shared by the in-process worker and `syncforge worker`."""
