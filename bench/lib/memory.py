"""How much memory the Procfile's processes use: RSS and PSS of every process of each group,
named by its role (qcluster's pusher, workers and monitor; gunicorn's master and workers)."""

from __future__ import annotations

import re
from pathlib import Path

from devtools.processes import Process

_ROLE_MARKERS = {
    "pusher": re.compile(r"pushing tasks at (\d+)"),
    "worker": re.compile(r"ready for work at (\d+)"),
    "monitor": re.compile(r"monitoring at (\d+)"),
}
# The labels found per group leader's pid (a restart has a new leader, so a new entry).
_labels: dict[int, dict[int, str]] = {}


def _kib(pid: int, path: str, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/{path}").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def process_labels(process: Process) -> dict[int, str]:
    """A readable name for each process of the group: qcluster's roles come from its log
    (django-q2 logs 'pushing tasks at PID', 'ready for work at PID', 'monitoring at PID').
    Cached until a process appears that has no name yet (the log is only read then)."""
    pids = process.group_pids()
    known = _labels.get(process.pid, {}) if pids else {}
    if pids and all(pid in known for pid in pids):
        return {pid: known[pid] for pid in pids}
    labels: dict[int, str] = {}
    if process.name == "worker":
        log = process.log_since_start()
        for role, pattern in _ROLE_MARKERS.items():
            for n, match in enumerate(pattern.findall(log), 1):
                pid = int(match)
                if pid in pids:
                    labels[pid] = f"qcluster {role}" + (f" {n}" if role == "worker" else "")
        for pid in pids:
            if pid == process.pid:
                labels[pid] = "qcluster main"
            labels.setdefault(pid, "qcluster sentinel")
    elif process.name == "web":
        workers = [pid for pid in pids if pid != process.pid]
        for n, pid in enumerate(workers, 1):
            labels[pid] = f"gunicorn worker {n}"
        if process.pid in pids:
            labels[process.pid] = "gunicorn master"
    else:
        for pid in pids:
            labels[pid] = process.name
    if pids:
        _labels[process.pid] = labels
    return labels


def memory_sample(processes: list[Process]) -> dict[str, tuple[int, int]]:
    """RSS and PSS (KiB) of every process of every group, by label. PSS splits pages shared
    after fork between the processes, so PSS adds up; RSS counts shared pages in each."""
    sample: dict[str, tuple[int, int]] = {}
    for process in processes:
        for pid, label in process_labels(process).items():
            rss = _kib(pid, "status", "VmRSS")
            pss = _kib(pid, "smaps_rollup", "Pss")
            if rss is not None:
                sample[label] = (rss, pss or 0)
    return sample
