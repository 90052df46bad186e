"""The project's real processes for tests and benchmarks: the Procfile's web server, django-q2
cluster and poller, and any other program, each in a session of its own with its output in a log.

Each process leads its own session, so a signal sent with `kill` reaches the whole group
(django-q2's pusher, workers and monitor are children of the qcluster process; gunicorn's workers
of its master), and SIGKILL takes the orphans a graceful stop leaves behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where a process's log goes unless its caller names a folder (tests: CI keeps it as an artifact).
LOG_DIR = ROOT / "test-artifacts" / "process-logs"
READY_TIMEOUT = 90.0


@dataclass
class Process:
    """One child process and its group. `log_path` defaults to a file of its own in LOG_DIR
    (named `<name>-<this pid>-<id>.log`); every start appends to it. `readiness`, when set, is
    what `start_ready` waits for."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path = None  # type: ignore[assignment] - set in __post_init__
    popen: subprocess.Popen[bytes] | None = None
    readiness: Callable[[Process, float], None] | None = field(default=None, repr=False)
    starts: int = 0
    log_offset: int = 0

    def __post_init__(self) -> None:
        if self.log_path is None:
            self.log_path = LOG_DIR / f"{self.name}-{os.getpid()}-{id(self)}.log"

    def start(self) -> Process:
        """Start it (again) in a new session, its output appended to `log_path`; returns it."""
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%H:%M:%S")
            log.write(f"\n=== {stamp} start #{self.starts}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.log_offset = log.tell()
            self.popen = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def start_ready(self, timeout: float = READY_TIMEOUT) -> Process:
        """Start it and return once its `readiness` holds; raises RuntimeError if it exits
        first and TimeoutError if it is not ready within `timeout` seconds."""
        self.start()
        if self.readiness is not None:
            self.readiness(self, timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole group, wait for the leader (15 s at most), then SIGKILL what
        is left of the group. Never started or already gone: nothing happens."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=15)
        # SIGKILL of the group also takes the cluster's orphaned workers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def stop(self) -> None:
        """SIGTERM to the group (a graceful stop), then as `kill`."""
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        """The whole log, every start's part."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_since_start(self) -> str:
        """What the process wrote since the last start (not the line that names its argv)."""
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def group_pids(self) -> list[int]:
        """Every live process of its session (it is the session leader), sorted."""
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

    def wait_for_log(self, marker: str, count: int = 1, timeout: float = READY_TIMEOUT) -> None:
        """Return once `marker` appears `count` times in the log since the last start; raises
        RuntimeError if the process exits first, TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.log_since_start().count(marker) < count:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout}s; see {self.log_path}")
            time.sleep(0.1)


def manage(name: str, *args: str, env: dict[str, str], log_dir: Path | None = None) -> Process:
    """`python manage.py <args>` (not started); its log is `<log_dir>/<name>.log` when
    `log_dir` is given."""
    log_path = None if log_dir is None else log_dir / f"{name}.log"
    return Process(name, [sys.executable, "manage.py", *args], env, log_path)  # type: ignore[arg-type]


def worker(env: dict[str, str], name: str = "worker", log_dir: Path | None = None) -> Process:
    """`python manage.py qcluster` (the Procfile's worker), not started; ready once each of
    its Q_WORKERS workers waits for tasks and its pusher pushes them."""
    process = manage(name, "qcluster", env=env, log_dir=log_dir)
    process.readiness = _qcluster_ready
    return process


def poller(env: dict[str, str], name: str = "poller", log_dir: Path | None = None) -> Process:
    """`python manage.py durable_poller` (the Procfile's poller), not started; ready once it
    polls."""
    process = manage(name, "durable_poller", env=env, log_dir=log_dir)
    process.readiness = lambda p, timeout: p.wait_for_log("durable poller started", 1, timeout)
    return process


def web(env: dict[str, str], port: int, name: str = "web", log_dir: Path | None = None) -> Process:
    """The Procfile's web process (`bin/web`: gunicorn, since DEBUG is off) on `port`, not
    started; ready once it answers GET /healthz (any HTTP status)."""
    log_path = None if log_dir is None else log_dir / f"{name}.log"
    argv = [str(ROOT / "bin" / "web")]
    process = Process(name, argv, {**env, "PORT": str(port)}, log_path)  # type: ignore[arg-type]
    process.readiness = answering_on(port)
    return process


def answering_on(port: int) -> Callable[[Process, float], None]:
    """A readiness: the process answers GET http://127.0.0.1:`port`/healthz (any status)."""
    return lambda process, timeout: wait_for_http(
        f"http://127.0.0.1:{port}/healthz", timeout, process
    )


def _qcluster_ready(process: Process, timeout: float) -> None:
    workers = int(process.env.get("Q_WORKERS", "2"))
    process.wait_for_log("ready for work at", workers, timeout)
    process.wait_for_log("pushing tasks at", 1, timeout)


def wait_for_http(url: str, timeout: float = 30.0, process: Process | None = None) -> None:
    """Return once `url` answers at all (any HTTP status); raises RuntimeError if `process`
    exits first, TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and not process.alive:
            raise RuntimeError(f"{process.name} exited early; see {process.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s: {exc}") from None
            time.sleep(0.1)


def poll_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Call `predicate` every `interval` seconds until it is true (returns True) or `timeout`
    seconds have passed (returns False, after one last call)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(
    predicate: Callable[[], object], timeout: float, interval: float = 0.05, message: str = ""
) -> None:
    """As `poll_until`, but raises AssertionError with `message` when the time is up."""
    if not poll_until(predicate, timeout, interval):
        raise AssertionError(message or f"condition not met within {timeout}s")


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[tuple[Process, ...]]:
    """Start the processes (without waiting for them to be ready); on exit SIGKILL each group,
    whatever happened in between."""
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.kill()
