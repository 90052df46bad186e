"""The Procfile's real processes (web, worker, poller), each in its own session so that
`os.killpg` reaches the whole group (django-q2's pusher, workers and monitor are children of the
qcluster process; gunicorn's workers of its master).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.lib.machine import ROOT

READY_TIMEOUT = 90.0


def child_env(database_url: str, cluster_name: str, **overrides: str) -> dict[str, str]:
    """The environment of every child and of the bench process itself: production-like
    settings (DEBUG off, gunicorn), the benchmark's database, its own django-q2 queue name."""
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY=f"bench-{secrets.token_hex(24)}",
        DJANGO_DEBUG="false",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        Q_CLUSTER_NAME=cluster_name,
        Q_WORKERS=env.get("Q_WORKERS", "2"),
        PYTHONUNBUFFERED="1",
        # The load comes from a few users at rates no customer reaches: no rate limits.
        ONECLICK_THROTTLE_USER="off",
        ONECLICK_THROTTLE_BUY="off",
        ONECLICK_THROTTLE_CANCEL="off",
        ONECLICK_MAX_PENDING_PURCHASES="0",
    )
    env.update(overrides)
    return env


@dataclass
class Process:
    """One Procfile process and its group. `role` is web, worker or poller."""

    role: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    log_offset: int = field(default=0)
    labels: dict[int, str] = field(default_factory=dict)

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.log_offset = log.tell()
        log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
        log.flush()
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started_at = time.monotonic()
        self.labels = {}
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        """This start's part of the log."""
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole group, reap the leader, then SIGKILL what is left."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def group_pids(self) -> list[int]:
        """Every live process of this process's session (it is the session leader)."""
        if not self.alive:
            return []
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) == self.pid and fields[0] != "Z":  # session id, not a zombie
                pids.append(int(entry))
        return sorted(pids)

    def wait_ready(self, marker: str, count: int = 1, timeout: float = READY_TIMEOUT) -> None:
        """Wait until `marker` appears `count` times in this start's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.role} exited early; see {self.log_path}")
            if self.log_text().count(marker) >= count:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.role} not ready after {timeout}s; see {self.log_path}")


def worker(env: dict[str, str], log_dir: Path) -> Process:
    """`python manage.py qcluster`, started and ready (all its workers waiting for tasks)."""
    process = Process(
        "worker", [sys.executable, "manage.py", "qcluster"], env, log_dir / "worker.log"
    ).start()
    process.wait_ready("ready for work at", count=int(env.get("Q_WORKERS", "2")))
    process.wait_ready("pushing tasks at")
    return process


def poller(env: dict[str, str], log_dir: Path) -> Process:
    """`python manage.py durable_poller`, started and polling."""
    process = Process(
        "poller", [sys.executable, "manage.py", "durable_poller"], env, log_dir / "poller.log"
    ).start()
    process.wait_ready("durable poller started")
    return process


def web(env: dict[str, str], log_dir: Path, port: int) -> Process:
    """`bin/web` (gunicorn, DEBUG off) on `port`, started and answering /healthz."""
    process = Process(
        "web", [str(ROOT / "bin" / "web")], {**env, "PORT": str(port)}, log_dir / "web.log"
    ).start()
    return wait_answering(process, port)


def wait_answering(process: Process, port: int) -> Process:
    """Wait until `process` answers GET /healthz on `port` (any HTTP status); returns it."""
    deadline = time.monotonic() + READY_TIMEOUT
    url = f"http://127.0.0.1:{port}/healthz"
    while time.monotonic() < deadline:
        if not process.alive:
            raise RuntimeError(f"{process.role} exited early; see {process.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process
        except urllib.error.HTTPError:
            return process
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{process.role} not answering on {url}; see {process.log_path}")


# --- memory -------------------------------------------------------------------------------------

_ROLE_MARKERS = {
    "pusher": re.compile(r"pushing tasks at (\d+)"),
    "worker": re.compile(r"ready for work at (\d+)"),
    "monitor": re.compile(r"monitoring at (\d+)"),
}


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
    if pids and all(pid in process.labels for pid in pids):
        return {pid: process.labels[pid] for pid in pids}
    labels: dict[int, str] = {}
    if process.role == "worker":
        log = process.log_text()
        for role, pattern in _ROLE_MARKERS.items():
            for n, match in enumerate(pattern.findall(log), 1):
                pid = int(match)
                if pid in pids:
                    labels[pid] = f"qcluster {role}" + (f" {n}" if role == "worker" else "")
        for pid in pids:
            if pid == process.pid:
                labels[pid] = "qcluster main"
            labels.setdefault(pid, "qcluster sentinel")
    elif process.role == "web":
        workers = [pid for pid in pids if pid != process.pid]
        for n, pid in enumerate(workers, 1):
            labels[pid] = f"gunicorn worker {n}"
        if process.pid in pids:
            labels[process.pid] = "gunicorn master"
    else:
        for pid in pids:
            labels[pid] = process.role
    process.labels = labels
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
