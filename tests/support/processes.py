"""Real processes for tests: the Procfile's web server, django-q2 cluster and poller.

Each process runs in its own session so SIGKILL reaches the whole group (django-q2's workers are
children of the cluster process). The processes use the test database of the running test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "test-artifacts" / "process-logs"
# Set (to its port) while a PgBouncer stands between the child processes and PostgreSQL
# (ONECLICK_TEST_PGBOUNCER=1, see tests/support/pgbouncer.py).
PGBOUNCER_PORT = "ONECLICK_TEST_PGBOUNCER_PORT"


def test_database_url() -> str:
    """A DATABASE_URL for the database the current test uses (the test database)."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    if os.environ.get(PGBOUNCER_PORT):
        host, port = "127.0.0.1", os.environ[PGBOUNCER_PORT]
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    """Environment for a child process: the test database, production-like settings, fast timers."""
    env = dict(os.environ)
    env.update(
        # bin/web runs `gunicorn` from the project's virtualenv, whoever started pytest.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=test_database_url(),
        DJANGO_DEBUG="false",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DURABLE_LEASE_SECONDS="3",
        DURABLE_POLL_INTERVAL_SECONDS="0.05",
        DURABLE_REDELIVER_AFTER_SECONDS="5",
        PYTHONUNBUFFERED="1",
    )
    if os.environ.get(PGBOUNCER_PORT) and connection.vendor == "postgresql":
        env["DATABASE_POOLER"] = "pgbouncer"
    env.update(overrides)
    return env


@dataclass
class ManagedProcess:
    """One child process (and its whole process group)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    popen: subprocess.Popen | None = None
    starts: int = 0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{self.name}-{os.getpid()}-{id(self)}.log"

    def start(self) -> ManagedProcess:
        self.starts += 1
        log = open(self.log_path, "a")  # noqa: SIM115 - kept open for the child's lifetime
        log.write(f"\n=== start #{self.starts}: {' '.join(self.argv)}\n")
        log.flush()
        self.popen = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole process group and reap the leader."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=15)
        if sig != signal.SIGKILL and self.popen.poll() is None:
            self.kill(signal.SIGKILL)
        # SIGKILL of the group also takes the cluster's orphaned workers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def manage(name: str, *args: str, env: dict[str, str]) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "manage.py", *args], env)


def worker(env: dict[str, str], name: str = "worker") -> ManagedProcess:
    """`python manage.py qcluster` (the Procfile's worker)."""
    return manage(name, "qcluster", env=env)


def poller(env: dict[str, str], name: str = "poller") -> ManagedProcess:
    """`python manage.py durable_poller` (the Procfile's poller)."""
    return manage(name, "durable_poller", env=env)


def web(env: dict[str, str], port: int, name: str = "web") -> ManagedProcess:
    """The Procfile's web process (gunicorn, since DEBUG is off) on `port`."""
    return ManagedProcess(name, [str(ROOT / "bin" / "web")], {**env, "PORT": str(port)})


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    """Block until `url` answers at all (any HTTP status), or fail."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "") -> None:
    """Poll `predicate` until true, or fail with `message`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")


@contextlib.contextmanager
def running(*processes: ManagedProcess) -> Iterator[tuple[ManagedProcess, ...]]:
    """Start the processes; on exit kill them all (SIGKILL to each group)."""
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.kill()
