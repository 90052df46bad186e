"""Lateness of purchases: when their run finished against the deadline fixed at acceptance."""

from __future__ import annotations

from collections import Counter

from bench.lib.results import BenchResult
from bench.lib.stats import summary
from bench.lib.workload import RunRow


def record(
    res: BenchResult, label: str, rows: list[RunRow], expected: int, *, goal: bool = True
) -> None:
    """Figures: lateness p50/p99/max (finished_at - cancel_until), how many finished more than
    1 s late, how many never finished, and the final states. `goal`: hold p99 to 500 ms and the
    max to 1 s (not when the scenario itself keeps the workers away past the deadlines)."""
    finished = [r for r in rows if r.finished_at is not None]
    late_ms = [(r.finished_at - r.cancel_until).total_seconds() * 1000 for r in finished]
    stats = summary(late_ms)
    half_second: dict = {"goal": "<= 500", "goal_max": 500.0}
    one_second: dict = {"goal": "<= 1000 (within 1 s of the deadline)", "goal_max": 1000.0}
    if not goal:
        half_second = one_second = {}
    res.add(f"{label}: lateness p50", "ms", stats["p50"])
    res.add(f"{label}: lateness p99", "ms", stats["p99"], **half_second)
    res.add(f"{label}: lateness max", "ms", stats["max"], **one_second)
    res.add(f"{label}: finished more than 1 s late", "runs", sum(1 for v in late_ms if v > 1000))
    res.add(
        f"{label}: confirmed before the deadline",
        "runs",
        sum(1 for v in late_ms if v < 0),
        goal="0",
        goal_max=0,
    )
    res.add(
        f"{label}: not finished at the end", "runs", expected - len(finished), goal="0", goal_max=0
    )
    if finished:
        span = max(r.finished_at for r in finished) - min(r.created_at for r in rows)
        res.add(f"{label}: first start to last finish", "s", span.total_seconds())
    states = Counter(r.state or r.status for r in rows)
    res.note(f"{label}: {expected} expected, {len(rows)} purchases, final states {dict(states)}")
