"""CPU used by the benchmark's processes and by the whole machine, from /proc.

A snapshot holds cumulative CPU seconds per role; two snapshots give the share of one core each
role used in between (100 = one core busy the whole interval). A role is a process-group leader
with all its descendants (found through the parent pids of /proc/*/stat); the bench process is
always counted as a role of its own, without its descendants (they are the other roles).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BENCH = "bench process"
MACHINE = "whole machine (busy)"
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Cumulative CPU seconds per role and of the whole machine, at monotonic time `at`."""

    at: float
    seconds: dict[str, float]


def _stat_fields(pid: str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 onwards), None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _process_table() -> dict[int, tuple[int, float, float]]:
    """Every live process: pid -> (parent pid, own CPU seconds, reaped children's CPU seconds)."""
    table: dict[int, tuple[int, float, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is None:
            continue
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        table[int(entry)] = (int(fields[1]), (utime + stime) / TICK, (cutime + cstime) / TICK)
    return table


def _descendants(leader: int, table: Mapping[int, tuple[int, float, float]]) -> set[int]:
    """`leader` and every live process below it (none if the leader is gone)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [leader] if leader in table else []
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (the `cpu` line of /proc/stat: user, nice,
    system, irq, softirq, steal; guest time is already inside user)."""
    line = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in line[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def snapshot(leaders: Mapping[str, int]) -> Snapshot:
    """Cumulative CPU seconds of each role in `leaders` (role -> leader pid), of this process
    (role BENCH) and of the machine (role MACHINE).

    A role counts its processes' own time plus the time of the children they reaped: a process
    that exits between two snapshots (a recycled django-q2 worker) then still counts, through its
    parent, as long as its parent belongs to the same role. Do not take the two snapshots across
    a kill of the role's leader."""
    table = _process_table()
    seconds = {
        role: sum(table[pid][1] + table[pid][2] for pid in _descendants(leader, table))
        for role, leader in leaders.items()
    }
    own = os.times()
    seconds[BENCH] = own.user + own.system
    seconds[MACHINE] = _machine_busy_seconds()
    return Snapshot(time.monotonic(), seconds)


def core_shares(start: Snapshot, end: Snapshot) -> dict[str, float]:
    """Per role of both snapshots: % of one core used between them (may exceed 100)."""
    wall = end.at - start.at
    if wall <= 0:
        return {}
    return {
        role: 100.0 * (end.seconds[role] - start.seconds[role]) / wall
        for role in start.seconds
        if role in end.seconds
    }
