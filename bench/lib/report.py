"""A run's report (bench/runs/) from the benchmarks' results: the numbers as they were printed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.lib.results import BenchResult, Figure
from bench.lib.stats import fmt

DB_TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _figure_row(fig: Figure) -> list[Any]:
    return [
        fig.name,
        fmt(fig.median),
        fig.low(),
        fig.high(),
        len(fig.rounds),
        fig.unit,
        fig.goal,
        fig.met(),
    ]


def _value(fig: Figure) -> str:
    return "not run" if fig.not_run else f"{fmt(fig.median)} {fig.unit}"


def _summary(results: list[BenchResult], dbs: list[str]) -> list[str]:
    """Every figure that has a goal, side by side per database."""
    rows: dict[tuple[str, str], dict[str, Figure]] = {}
    for res in results:
        for fig in res.figures:
            if fig.goal:
                rows.setdefault((res.title, fig.name), {})[res.db] = fig
    columns = ["benchmark", "figure"] + [DB_TITLES[d] for d in dbs] + ["goal", "met"]
    body = []
    for (title, name), per_db in rows.items():
        cells = [_value(per_db[d]) if d in per_db else "-" for d in dbs]
        goals = {per_db[d].goal for d in dbs if d in per_db}
        goal = (
            goals.pop()
            if len(goals) == 1
            else "; ".join(f"{DB_TITLES[d]} {per_db[d].goal}" for d in dbs if d in per_db)
        )
        met = " / ".join(per_db[d].met() if d in per_db else "-" for d in dbs)
        body.append([title, name, *cells, goal, met])
    return _table(columns, body)


def render(
    results: list[BenchResult],
    machine: dict[str, str],
    *,
    command: str,
    quick: bool,
    note: str,
    load_samples: list[str],
    minutes: float,
) -> str:
    dbs = [d for d in ("sqlite", "postgres") if any(r.db == d for r in results)]
    out = ["# oneclick benchmarks", ""]
    if quick:
        out += [
            "> **PROVISIONAL.** A quick run (`--quick`: reduced counts and rounds) made to "
            "validate the harness, not the figures to quote. "
            + (f"{note} " if note else "")
            + f"1-minute load averages sampled between benchmarks: {', '.join(load_samples)}. "
            "Repeat with the full command below on an otherwise idle machine.",
            "",
        ]
    elif note:
        out += [f"> {note}", ""]
    out += [
        f"Produced by `{command}` in {minutes:.0f} min. Every number below was printed by that "
        "run; a figure's median, min and max are over its rounds (column n). Latencies are in "
        "ms; percentiles interpolate between closest ranks.",
        "",
        "Full run: `make bench` (= `.venv/bin/python bench/run_all.py`). Quick run: "
        "`.venv/bin/python bench/run_all.py --quick`. Options: `--only NAME[,NAME]`, "
        "`--db sqlite|postgres|both`, `--rounds N`, `--note TEXT`, `--output PATH`.",
        "",
        "## Machine",
        "",
    ]
    out += _table(["", ""], [[k, v] for k, v in machine.items()])
    out += ["## Summary against the goals", ""]
    out += _summary(results, dbs)
    if results:
        out += ["## Settings common to every benchmark", ""]
        first = results[0]
        same_db = [r for r in results if r.db == first.db]
        common = {
            k: v for k, v in first.settings.items() if all(r.settings.get(k) == v for r in same_db)
        }
        common.pop("database", None)
        out += _table(["setting", "value"], [[k, v] for k, v in common.items()])
    else:
        common = {}
    titles = list(dict.fromkeys(r.title for r in results))
    for title in titles:
        out += [f"## {title}", ""]
        description = next((r.description for r in results if r.title == title), "")
        for paragraph in description.split("\n\n"):  # the benchmark module's docstring
            out += [" ".join(paragraph.split()), ""]
        for res in (r for r in results if r.title == title):
            out += [f"### {DB_TITLES[res.db]}", ""]
            extra = {k: v for k, v in res.settings.items() if k not in common}
            if extra:
                out += ["Settings: " + "; ".join(f"{k}: {v}" for k, v in extra.items()), ""]
            if res.error:
                out += ["**The benchmark failed:**", "", "```", res.error.strip(), "```", ""]
            if res.figures:
                out += _table(
                    ["figure", "median", "min", "max", "n", "unit", "goal", "met"],
                    [_figure_row(f) for f in res.figures],
                )
            for table in res.tables:
                out += [f"**{table.title}**", ""]
                out += _table(table.columns, table.rows)
            for text in res.notes:
                out += [f"- {text}"]
            out += ["", f"({res.seconds:.0f} s)", ""]
    return "\n".join(out).rstrip() + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
