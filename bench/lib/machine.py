"""What the figures were measured on: kernel, cores, CPU model, memory, load, date, code, and
three quick readings of the machine's speed that day (the same VM kind varies from day to day)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """The first `model name` of /proc/cpuinfo."""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total() -> str:
    """MemTotal from /proc/meminfo, as the kernel prints it."""
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(_read("/proc/loadavg").split()[:3])


def _command(*argv: str) -> str:
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def git_revision() -> str:
    """HEAD's commit and how many paths differ from it (read-only git commands)."""
    head = _command("git", "rev-parse", "--short", "HEAD") or "unknown"
    changed = _command("git", "status", "--porcelain")
    count = len(changed.splitlines()) if changed else 0
    return f"{head} (+{count} uncommitted path(s) in the work tree)" if count else head


def fsync_ms(samples: int = 200) -> float:
    """The p50 of one 4 KiB append and its fsync, in ms, in the temporary directory (where the
    SQLite benchmarks keep their database): what one durable commit costs at least."""
    times: list[float] = []
    with tempfile.NamedTemporaryFile(prefix="bench-fsync-") as sink:
        for _ in range(samples):
            os.write(sink.fileno(), b"x" * 4096)
            began = time.perf_counter()
            os.fsync(sink.fileno())
            times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def python_loop_ms(repeats: int = 5) -> float:
    """The best of `repeats` timings of a fixed pure-Python loop (a million additions), in ms:
    this interpreter's speed on this CPU today."""

    def loop() -> None:
        total = 0
        for i in range(1_000_000):
            total += i

    return min(_timed(loop) for _ in range(repeats)) * 1000


def pg_round_trip_ms(connect: Callable[[], object], samples: int = 500) -> float:
    """The p50 of `SELECT 1` on a connection from `connect` (psycopg), in ms."""
    times: list[float] = []
    with connect() as conn:  # type: ignore[attr-defined]
        for _ in range(samples):
            times.append(_timed(lambda: conn.execute("SELECT 1").fetchone()))
    return statistics.median(times) * 1000


def _timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def describe() -> dict[str, str]:
    """Everything the report's Machine section shows."""
    return {
        "uname -a": _command("uname", "-a") or " ".join(platform.uname()),
        "nproc": str(os.cpu_count()),
        "CPU model": cpu_model(),
        "memory": memory_total(),
        "load average at start (1/5/15 min)": load_average(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "code": git_revision(),
        "speed today: fsync of a 4 KiB append, p50": f"{fsync_ms():.3f} ms",
        "speed today: a million Python additions, best of 5": f"{python_loop_ms():.1f} ms",
    }
