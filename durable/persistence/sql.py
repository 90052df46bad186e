"""Plain SQL for the statements every workflow makes, with the ORM's own value adaptation.

Building and compiling an ORM query costs more CPU than the database takes to run it (measured in
bench/RESULTS.md), so the few statements on every run's path are written out here. Values go
through each model field's `get_db_prep_save` and come back through `read_json`/`read_datetime`,
exactly as the ORM would store and load them (`None`, and a `str` for a text column, are passed
as they are: what those fields' adaptation returns for them, checked by tests/durable/test_sql.py);
the SQL is the subset SQLite and PostgreSQL share (RETURNING included). Each statement's text is
built once per shape and kept.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.dateparse import parse_datetime

# Field types whose adaptation returns a value of this Python type unchanged (an integer field's
# does not on PostgreSQL: it marks the value's SQL type).
_PASSED_AS_IS = {str: frozenset({"CharField", "TextField"})}


def _database() -> BaseDatabaseWrapper:
    """The default database's connection of this thread (resolved once per statement: each
    attribute read through `django.db.connection` looks it up again)."""
    return connections[DEFAULT_DB_ALIAS]


@functools.cache
def _field(model: type[models.Model], name: str) -> tuple[models.Field, str]:
    field = model._meta.get_field(name)
    return field, field.get_internal_type()


def _table(model: type[models.Model], db: BaseDatabaseWrapper | None = None) -> str:
    return (db or _database()).ops.quote_name(model._meta.db_table)


def prep(model: type[models.Model], name: str, value: Any, db: Any = None) -> Any:
    """`value` of field `name` as the ORM would send it to `db` (default: the default database)."""
    field, internal_type = _field(model, name)
    if value is None or internal_type in _PASSED_AS_IS.get(type(value), ()):
        return value
    return field.get_db_prep_save(value, db or _database())


@dataclass(frozen=True, slots=True)
class DatabaseClock:
    """A value read from the database's clock by the statement that writes or compares it, plus
    `offset`: one clock for every machine. On PostgreSQL that is the server's `clock_timestamp()`.
    SQLite is shared by the processes of one machine only, which all read that machine's one
    clock: there it is this process's clock when the statement is built."""

    offset: dt.timedelta = dt.timedelta(0)


def placeholder(
    model: type[models.Model], name: str, value: Any, db: Any = None
) -> tuple[str, list[Any]]:
    """The SQL for `value` of field `name` and its parameters: `%s` and the ORM's adaptation of
    the value, or the database's clock for a DatabaseClock."""
    db = db or _database()
    if isinstance(value, DatabaseClock):
        if db.vendor == "postgresql":
            if not value.offset:
                return "clock_timestamp()", []
            return "(clock_timestamp() + %s)", [value.offset]
        value = timezone.now() + value.offset
    return "%s", [prep(model, name, value, db)]


def _render(
    model: type[models.Model], values: dict[str, Any], db: BaseDatabaseWrapper
) -> tuple[tuple[str, ...], list[Any]]:
    marks: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        mark, value_params = placeholder(model, name, value, db)
        marks.append(mark)
        params.extend(value_params)
    return tuple(marks), params


def execute(sql: str, params: Sequence[Any]) -> tuple[int, tuple[Any, ...] | None]:
    """Run one statement; returns the rows it touched and its first returned row, if any."""
    with _database().cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone() if cursor.description else None
        return cursor.rowcount, row


def fetch_all(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with _database().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def update(
    model: type[models.Model],
    values: dict[str, Any],
    where: str,
    where_params: Sequence[Any],
    returning: str = "",
) -> tuple[int, tuple[Any, ...] | None]:
    """UPDATE rows of `model` matching `where` (SQL on column names) with `values`; returns the
    row count and the first row of `returning` (SQL expressions), if asked."""
    db = _database()
    marks, params = _render(model, values, db)
    tail = f" WHERE {where}" + (f" RETURNING {returning}" if returning else "")
    statement = _statement(db.vendor, "UPDATE", model, tuple(values), marks, tail)
    return execute(statement, [*params, *where_params])


@functools.lru_cache(maxsize=512)
def _statement(
    vendor: str,
    verb: str,
    model: type[models.Model],
    columns: tuple[str, ...],
    marks: tuple[str, ...],
    tail: str,
) -> str:
    """The text of an UPDATE or INSERT of `columns` as `marks` on a `vendor` database, then
    `tail`: built once per shape."""
    quote = _database().ops.quote_name
    if verb == "UPDATE":
        assignments = ", ".join(
            f"{quote(name)} = {mark}" for name, mark in zip(columns, marks, strict=True)
        )
        return f"UPDATE {_table(model)} SET {assignments}{tail}"
    names = ", ".join(quote(name) for name in columns)
    return f"INSERT INTO {_table(model)} ({names}) VALUES ({', '.join(marks)}){tail}"


def insert(
    model: type[models.Model], values: dict[str, Any], *, unless_exists: bool = False
) -> bool:
    """INSERT one row of `model` (field names that are also the column names). `unless_exists`:
    a row with the same primary or unique key is left as it is, without an error (and without
    the savepoint an IntegrityError would need); returns whether the row was inserted."""
    inserted, _ = _insert(model, values, unless_exists, "")
    return inserted == 1


def insert_returning(
    model: type[models.Model],
    values: dict[str, Any],
    returning: str,
    *,
    unless_exists: bool = False,
) -> tuple[Any, ...] | None:
    """`insert`, returning the inserted row's `returning` (SQL on its columns), None if none was."""
    _, row = _insert(model, values, unless_exists, returning)
    return row


def _insert(
    model: type[models.Model], values: dict[str, Any], unless_exists: bool, returning: str
) -> tuple[int, tuple[Any, ...] | None]:
    db = _database()
    marks, params = _render(model, values, db)
    tail = (" ON CONFLICT DO NOTHING" if unless_exists else "") + (
        f" RETURNING {returning}" if returning else ""
    )
    return execute(_statement(db.vendor, "INSERT", model, tuple(values), marks, tail), params)


def read_json(value: Any) -> Any:
    """A JSON column's value as loaded by JSONField (both backends hand over the text)."""
    return None if value is None else json.loads(value)


def read_datetime(value: Any) -> dt.datetime | None:
    """A datetime column's value, aware in UTC (SQLite hands over Django's naive UTC value, as a
    datetime where the column's declared type is known, else as text)."""
    if value is None:
        return None
    parsed = value if isinstance(value, dt.datetime) else parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a datetime: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def clock_sql() -> str:
    """An SQL expression for the database's clock where there is one to share (PostgreSQL),
    else NULL (on SQLite every process reads the same machine's clock)."""
    return "clock_timestamp()" if _database().vendor == "postgresql" else "NULL"
