"""What a benchmark hands back: figures measured over rounds, tables and notes.

Everything here is JSON-serialisable, so a benchmark running in its own process (with its own
database and Django settings) can hand its result to `run_all.py`, which writes the run's
report from exactly the values the benchmark printed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.lib.stats import fmt, median


@dataclass(slots=True)
class Figure:
    """One measured quantity with one value per round. `goal` is a human-readable target and
    `goal_min` / `goal_max` make it checkable (met when the median is within bounds)."""

    name: str
    unit: str
    rounds: list[float] = field(default_factory=list)
    goal: str = ""
    goal_min: float | None = None
    goal_max: float | None = None
    not_run: str = ""  # why it was not measured on this machine

    @property
    def median(self) -> float:
        return median(self.rounds)

    def met(self) -> str:
        """'yes', 'no', 'not run: <why>' or '' (no checkable goal)."""
        if self.not_run:
            return f"not run: {self.not_run}"
        if self.goal_min is None and self.goal_max is None:
            return ""
        value = self.median
        if self.goal_min is not None and not value >= self.goal_min:
            return "no"
        if self.goal_max is not None and not value <= self.goal_max:
            return "no"
        return "yes"

    def low(self) -> str:
        """The smallest round, formatted."""
        values = [v for v in self.rounds if v == v]
        return fmt(min(values)) if values else "-"

    def high(self) -> str:
        """The largest round, formatted."""
        values = [v for v in self.rounds if v == v]
        return fmt(max(values)) if values else "-"


@dataclass(slots=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass(slots=True)
class BenchResult:
    """A benchmark's outcome on one database."""

    bench: str
    db: str
    title: str
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    def figure(self, name: str, unit: str, goal: str = "", **bounds: float) -> Figure:
        """The figure `name`, created on first use (so rounds append to the same one)."""
        for existing in self.figures:
            if existing.name == name:
                return existing
        created = Figure(name, unit, goal=goal, **bounds)
        self.figures.append(created)
        return created

    def add(self, name: str, unit: str, value: float, goal: str = "", **bounds: float) -> None:
        """Append one round's value to a figure and print it."""
        self.figure(name, unit, goal, **bounds).rounds.append(float(value))
        print(f"  [{self.bench}/{self.db}] {name}: {fmt(float(value))} {unit}", flush=True)

    def not_run(self, name: str, unit: str, why: str, goal: str = "", **bounds: float) -> None:
        """Record that figure `name` could not be measured here, and why (shown, never dropped)."""
        self.figure(name, unit, goal, **bounds).not_run = why
        print(f"  [{self.bench}/{self.db}] {name}: not run: {why}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  [{self.bench}/{self.db}] note: {text}", flush=True)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, default=str))

    @classmethod
    def load(cls, path: Path) -> BenchResult:
        raw = json.loads(path.read_text())
        raw["figures"] = [Figure(**f) for f in raw["figures"]]
        raw["tables"] = [Table(**t) for t in raw["tables"]]
        return cls(**raw)
