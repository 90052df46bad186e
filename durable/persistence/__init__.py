"""The engine's tables: queries on them, and what a database error means."""
