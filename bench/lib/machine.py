"""What the figures were measured on: kernel, cores, CPU model, memory, load, date, code."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
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
    }
