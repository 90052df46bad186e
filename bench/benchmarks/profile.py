"""Profile of one workflow's execution on the worker's path, with pyinstrument.

No cluster runs: this process does what the django-q2 processes do for a task, through the same
functions: the pusher's `broker.dequeue()`, the worker's `close_old_connections()` and
`durable.tasks.advance_task` (located from the task's signed payload, as django-q2 does), the
monitor's `broker.acknowledge()`. The purchases (zero window) are started beforehand through
`purchases.services.buy` and are not profiled. The full profile is kept in bench/out/.
"""

from __future__ import annotations

import pydoc
import time
from collections import defaultdict
from pathlib import Path

from bench.lib import workload
from bench.lib.context import BenchContext, settings_override
from bench.lib.machine import ROOT
from bench.lib.results import Table

INTERVAL = 0.0005
TOP = 20


def _worker_path() -> None:
    from django.db import close_old_connections
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker = get_broker()
    tasks = broker.dequeue()
    assert tasks, "the queue is empty"
    ack_id, payload = tasks[0]
    task = SignedPackage.loads(payload)
    close_old_connections()
    pydoc.locate(task["func"])(*task["args"], **task["kwargs"])
    broker.acknowledge(ack_id)


def _prepare(ctx: BenchContext, prefix: str, count: int) -> None:
    with settings_override(ONECLICK_CANCEL_WINDOW_SECONDS=0.0, ONECLICK_EAGER_START=False):
        for i in range(count):
            workload.buy(ctx.seed, f"{prefix}{i}")


def _where(frame: object) -> str:
    path = getattr(frame, "file_path", None) or ""
    for marker in ("site-packages/", str(ROOT) + "/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{frame.function} ({path}:{frame.line_no})"  # type: ignore[attr-defined]


_AREAS = (
    ("/durable/", "durable (engine code)"),
    ("/purchases/", "purchases (workflow steps)"),
    ("/django_q/", "django-q2"),
    ("/django/db/models/", "Django ORM: building and compiling queries, making objects"),
    ("/django/db/backends/", "Django database backend wrappers"),
    ("/django/", "Django, other"),
    ("/psycopg/", "psycopg, other (adapting parameters, reading results)"),
    ("/logging/", "logging"),
    ("/json/", "json"),
)
_DRIVER_CALLS = {"execute", "executemany", "commit", "fetchone", "fetchall", "fetchmany"}


def area(frame: object) -> str:
    """Which part of the stack a frame's own time belongs to."""
    path = getattr(frame, "file_path", None) or ""
    if "bench/" in path:
        return "bench harness"
    if "/psycopg/" in path:
        if frame.function.startswith("wait"):  # type: ignore[attr-defined]
            return "psycopg wait(): waiting for PostgreSQL's answers (round trips, commits)"
        if frame.function == "_execute_send":  # type: ignore[attr-defined]
            return "psycopg _execute_send: handing each query to libpq (per round trip)"
    for marker, name in _AREAS:
        if marker in path:
            return name
    if not path or path.startswith("<"):
        if frame.function.rsplit(".", 1)[-1] in _DRIVER_CALLS:  # type: ignore[attr-defined]
            return "database driver calls (C: sqlite3 / libpq round trips)"
        return "Python built-ins"
    return "other Python"


def _aggregate(root: object) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Self and inclusive seconds per function (inclusive counted once per stack, the bench
    harness left out) and self seconds per area."""
    own: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    areas: dict[str, float] = defaultdict(float)

    def visit(frame: object, on_stack: frozenset[str]) -> None:
        name = _where(frame)
        if not frame.is_synthetic:  # type: ignore[attr-defined]
            own[name] += frame.total_self_time  # type: ignore[attr-defined]
            areas[area(frame)] += frame.total_self_time  # type: ignore[attr-defined]
            if name not in on_stack and not name.split(" (", 1)[1].startswith("bench/"):
                inclusive[name] += frame.time  # type: ignore[attr-defined]
        for child in frame.children:  # type: ignore[attr-defined]
            visit(child, on_stack | {name})

    visit(root, frozenset())
    return own, inclusive, areas


def run(ctx: BenchContext) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        ctx.result.note(
            "pyinstrument is not installed: .venv/bin/pip install -r bench/requirements.txt"
        )
        return
    res = ctx.result
    count = ctx.size(600, 150)
    res.settings["workflows"] = f"{count} per round (zero window), sampling every {INTERVAL}s"
    _prepare(ctx, "warm-", 20)
    for _ in range(20):
        _worker_path()
    for n in range(ctx.rounds):
        _prepare(ctx, f"plain{n}-", count)
        began = time.perf_counter()
        for _ in range(count):
            _worker_path()
        res.add(
            "worker path per workflow (dequeue + advance + ack), no profiler",
            "ms",
            (time.perf_counter() - began) / count * 1000,
        )
    _prepare(ctx, "prof-", count)
    profiler = Profiler(interval=INTERVAL)
    profiler.start()
    for _ in range(count):
        _worker_path()
    profiler.stop()
    out = Path(ctx.log_dir)
    (out / "profile.txt").write_text(profiler.output_text(unicode=False, color=False))
    (out / "profile.html").write_text(profiler.output_html())
    session = profiler.last_session
    root = session.root_frame() if session else None
    if root is None:
        res.note("the profile recorded no samples")
        return
    total = root.time
    own, inclusive, areas = _aggregate(root)
    res.note(
        f"profiled {count} workflows in {total:.2f} s of samples; full tree in "
        f"{out / 'profile.txt'} and profile.html"
    )
    by_area = Table(
        f"self time by area ({count} workflows)",
        ["area", "ms per workflow", "% of the worker path"],
    )
    for name, seconds in sorted(areas.items(), key=lambda kv: -kv[1]):
        by_area.rows.append(
            [name, round(seconds / count * 1000, 3), round(100 * seconds / total, 1)]
        )
    res.tables.append(by_area)
    for row in by_area.rows:
        print("   ", " | ".join(str(c) for c in row))
    for title, values in (("self time", own), ("inclusive time", inclusive)):
        table = Table(
            f"top {TOP} functions by {title} ({count} workflows)",
            ["function (file:line)", "ms per workflow", "% of the worker path"],
        )
        for name, seconds in sorted(values.items(), key=lambda kv: -kv[1])[:TOP]:
            table.rows.append(
                [name, round(seconds / count * 1000, 3), round(100 * seconds / total, 1)]
            )
        res.tables.append(table)
        print(f"  {table.title}")
        for row in table.rows:
            print("   ", " | ".join(str(c) for c in row))
