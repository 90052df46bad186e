"""Persistence: the queries of a run's life, the heartbeats of the engine's processes, and what a
database error means (transient or a lost connection)."""
