"""The one-click workflow on DBOS Transact 3.4: wait for a "cancel" message for the window with
`DBOS.recv`, then, in one datasource transaction, decrement the stock if any is left and insert
the order. Shared by the throughput driver (bench/peers/dbos_driver.py) and the FastAPI peer
(bench/peers/dbos_http.py). Its tables live in an application database of their own, beside
DBOS's system database.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, SetWorkflowID, SQLAlchemyDatasource, WorkflowHandle

ITEM_ID = "bench-item-001"
STOCK = 1_000_000_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bench_product ("
    " item_id VARCHAR(64) PRIMARY KEY, stock INTEGER NOT NULL)",
    # confirmed_ms: when the order was inserted (the database's clock, ms since the epoch), for
    # the lateness of the confirmations; the workflow does not write it itself.
    "CREATE TABLE IF NOT EXISTS bench_order ("
    " id {serial}, item_id VARCHAR(64) NOT NULL, purchase_key VARCHAR(128) NOT NULL UNIQUE,"
    " confirmed_ms BIGINT NOT NULL DEFAULT {now_ms})",
    "CREATE TABLE IF NOT EXISTS bench_token ("
    " token VARCHAR(40) PRIMARY KEY, username VARCHAR(150) NOT NULL)",
)

_datasource: SQLAlchemyDatasource | None = None


def _dialect_words(url: str) -> dict[str, str]:
    if url.startswith("sqlite"):
        return {
            "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
            "now_ms": "(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
        }
    return {
        "serial": "SERIAL PRIMARY KEY",
        "now_ms": "(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
    }


def create_schema(app_url: str) -> str:
    """Create the application tables with one product in stock and one API token; returns the
    token (idempotent: an existing token is returned)."""
    engine = sa.create_engine(app_url)
    with engine.begin() as conn:
        for statement in _SCHEMA:
            conn.execute(sa.text(statement.format(**_dialect_words(app_url))))
        if conn.execute(sa.text("SELECT 1 FROM bench_product")).first() is None:
            conn.execute(
                sa.text("INSERT INTO bench_product (item_id, stock) VALUES (:i, :s)"),
                {"i": ITEM_ID, "s": STOCK},
            )
        token = conn.execute(sa.text("SELECT token FROM bench_token")).scalar()
        if token is None:
            token = secrets.token_hex(20)
            conn.execute(
                sa.text("INSERT INTO bench_token (token, username) VALUES (:t, 'bench')"),
                {"t": token},
            )
    engine.dispose()
    return str(token)


def launch(app_url: str, sys_url: str, name: str = "oneclick-bench") -> SQLAlchemyDatasource:
    """Configure and launch DBOS in this process, with the application datasource; returns it.
    Pools keep DBOS's and SQLAlchemy's defaults: the PostgreSQL server is shared (pools of 40
    per process ran it out of connections, "too many clients", on 2026-11-29)."""
    global _datasource
    config: DBOSConfig = {
        "name": name,
        "system_database_url": sys_url,
        "executor_id": os.environ.get("DBOS_BENCH_EXECUTOR", f"bench-{os.getpid()}"),
        "log_level": "WARNING",
    }
    DBOS(config=config)
    _datasource = SQLAlchemyDatasource.create(app_url)
    _register_transaction(_datasource)
    DBOS.launch()
    return _datasource


def datasource() -> SQLAlchemyDatasource:
    assert _datasource is not None, "launch() first"
    return _datasource


def place_order(item_id: str, key: str) -> int | None:
    """Decrement the item's stock if any is left and insert the order, in one transaction;
    the order's id, or None when out of stock."""
    session = datasource().sql_session()
    updated = session.execute(
        sa.text("UPDATE bench_product SET stock = stock - 1 WHERE item_id = :i AND stock > 0"),
        {"i": item_id},
    )
    if updated.rowcount != 1:
        return None
    return session.execute(
        sa.text("INSERT INTO bench_order (item_id, purchase_key) VALUES (:i, :k) RETURNING id"),
        {"i": item_id, "k": key},
    ).scalar_one()


_place_order_tx: Any = None


@DBOS.workflow(name="one_click")
def one_click(item_id: str, key: str, window: float) -> dict[str, Any]:
    """Wait up to `window` seconds for a "cancel" message, then confirm (decrement and insert
    the order) or end cancelled. The workflow id is the purchase key (idempotent starts)."""
    if DBOS.recv("cancel", timeout_seconds=window) is not None:
        return {"state": "PURCHASE_CANCELLED", "item_id": item_id}
    order_id = _place_order_tx(item_id, key)
    if order_id is None:
        return {"state": "OUT_OF_STOCK", "item_id": item_id}
    return {"state": "PURCHASE_CONFIRMED", "item_id": item_id, "order_id": order_id}


def _register_transaction(ds: SQLAlchemyDatasource) -> None:
    """Wrap place_order as a transaction step of the datasource `ds`."""
    global _place_order_tx
    # SQLite has one level (SERIALIZABLE); on PostgreSQL READ COMMITTED suffices for a
    # conditional UPDATE and spares DBOS's default SERIALIZABLE its retries on the hot row.
    level = "SERIALIZABLE" if ds.dialect.__name__.endswith("sqlite") else "READ COMMITTED"
    _place_order_tx = ds.transaction(name="place_order", isolation_level=level)(place_order)


@DBOS.step(name="outside_call")
def outside_call(seconds: float) -> str:
    """A call to the outside world that answers after `seconds` (the GIL is free meanwhile)."""
    time.sleep(seconds)
    return "answered"


@DBOS.workflow(name="slow_step")
def slow_step(seconds: float) -> dict[str, Any]:
    """One step that waits `seconds`, as bench/workflows.py's `bench_slow_step`; returns when it
    ended (this process's clock), for the end-to-end latency."""
    answer = outside_call(seconds)
    return {"answer": answer, "ended": time.time()}


def start_slow_step(key: str, seconds: float) -> WorkflowHandle[dict[str, Any]]:
    """Start the slow-step workflow whose id is `key`, in a thread of this process."""
    with SetWorkflowID(key):
        return DBOS.start_workflow(slow_step, seconds)


def start(key: str, window: float, item_id: str = ITEM_ID) -> WorkflowHandle[dict[str, Any]]:
    """Start (or, for a key already started, reconnect to) the purchase whose workflow id is
    `key`, in a thread of this process."""
    with SetWorkflowID(key):
        return DBOS.start_workflow(one_click, item_id, key, window)


def confirmed_ms(prefix: str) -> dict[str, int]:
    """Purchase key -> when its order was inserted (ms since the epoch), for keys starting with
    `prefix`."""
    with datasource().engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT purchase_key, confirmed_ms FROM bench_order WHERE purchase_key LIKE :p"
            ),
            {"p": prefix + "%"},
        )
        return {key: int(ms) for key, ms in rows}
