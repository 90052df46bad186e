"""The peers' side of a benchmark: their own databases and their processes (bench/peers/)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.lib.database import SERVER_URL
from bench.lib.machine import ROOT
from devtools import databases
from devtools.environments import child_env
from devtools.processes import Process, answering_on

RESONATE_DIR = ROOT / "bench" / "peers" / "resonate"


@dataclass(frozen=True, slots=True)
class PeerDatabases:
    """A peer's application database and DBOS's system database, as SQLAlchemy URLs."""

    app_url: str
    sys_url: str

    @property
    def django_url(self) -> str:
        """The application database's URL as dj-database-url reads it."""
        return self.app_url.replace("postgresql+psycopg://", "postgres://")


@contextlib.contextmanager
def peer_databases(vendor: str, name: str) -> Iterator[PeerDatabases]:
    """Two empty databases for peer `name` (devtools/databases.py): SQLite files in temporary
    folders, or oneclick_bench_<name>_app and oneclick_bench_<name>_sys on the benchmarks'
    PostgreSQL server; deleted or dropped on exit."""
    prefix = f"oneclick_bench_{name}"
    with (
        databases.fresh_database(vendor, f"{prefix}_app", SERVER_URL) as app,
        databases.fresh_database(vendor, f"{prefix}_sys", SERVER_URL) as sys_,
    ):
        yield PeerDatabases(_sqlalchemy(app), _sqlalchemy(sys_))


def _sqlalchemy(url: str) -> str:
    return url.replace("postgres://", "postgresql+psycopg://", 1)


@dataclass
class DbosDriver:
    """bench/peers/dbos_driver.py in a process (and session) of its own, asked one command at a
    time over its stdin; its stderr goes to `log_dir`/dbos-driver.log."""

    databases: PeerDatabases
    log_dir: Path
    process: Process | None = None
    _stdout: IO[str] | None = field(default=None, repr=False)

    def __enter__(self) -> DbosDriver:
        argv = [
            sys.executable,
            "-m",
            "bench.peers.dbos_driver",
            "--app-db",
            self.databases.app_url,
            "--sys-db",
            self.databases.sys_url,
        ]
        log = self.log_dir / "dbos-driver.log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sink,
                text=True,
                start_new_session=True,
            )
        self.process = Process("dbos-driver", argv, {}, log, popen=popen)
        self._stdout = popen.stdout
        ready = self._answer()
        if not ready.get("ready"):
            raise RuntimeError(f"the DBOS driver did not start: {ready}; see {log}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.kill()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def ask(self, *command: object) -> dict[str, Any]:
        """Send one command line and return its JSON answer."""
        assert self.process is not None and self.process.popen is not None
        stdin = self.process.popen.stdin
        assert stdin is not None
        stdin.write(" ".join(str(word) for word in command) + "\n")
        stdin.flush()
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self._stdout is not None and self.process is not None
        began = time.monotonic()
        line = self._stdout.readline()  # the driver bounds every round by its own time limit
        if not line:
            raise RuntimeError(
                f"the DBOS driver exited after {time.monotonic() - began:.0f} s; "
                f"see {self.process.log_path}"
            )
        return json.loads(line)


def _prepare(argv: list[str], env: dict[str, str], log: Path) -> str:
    """Run a peer's preparation command; returns the API token it prints as {"token": ...}."""
    with log.open("ab") as sink:
        done = subprocess.run(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=sink, check=True, timeout=300
        )
    return str(json.loads(done.stdout.decode().strip().splitlines()[-1])["token"])


def web_workers() -> tuple[str, str]:
    """The app's web settings (bin/web): gunicorn workers and threads per worker."""
    return os.environ.get("WEB_CONCURRENCY", "2"), os.environ.get("WEB_THREADS", "4")


def dbos_api(
    databases: PeerDatabases, log_dir: Path, port: int, window: float
) -> tuple[Process, str]:
    """The FastAPI + DBOS peer (bench/peers/dbos_http.py) on uvicorn with as many worker
    processes as the app's gunicorn, answering; returns it and its API token."""
    env = child_env(
        DBOS_BENCH_APP_DB=databases.app_url,
        DBOS_BENCH_SYS_DB=databases.sys_url,
        DBOS_BENCH_WINDOW=str(window),
    )
    log = log_dir / "dbos-api.log"
    token = _prepare(
        [sys.executable, "-m", "bench.peers.dbos_driver", "--app-db", databases.app_url,
         "--sys-db", databases.sys_url, "--prepare"],
        env,
        log,
    )  # fmt: skip
    workers, _ = web_workers()
    argv = [
        sys.executable, "-m", "uvicorn", "bench.peers.dbos_http:app", "--host", "0.0.0.0",
        "--port", str(port), "--workers", workers,
    ]  # fmt: skip
    return Process("dbos-api", argv, env, log, readiness=answering_on(port)).start_ready(), token


def floor(databases: PeerDatabases, log_dir: Path, port: int) -> tuple[Process, str]:
    """The framework floor (bench/peers/floor) migrated, under gunicorn with the app's web
    settings (bin/web's flags), answering; returns it and its API token."""
    env = child_env(
        DATABASE_URL=databases.django_url, DJANGO_SETTINGS_MODULE="bench.peers.floor.settings"
    )
    log = log_dir / "floor.log"
    token = _prepare([sys.executable, "-m", "bench.peers.floor.prepare"], env, log)
    workers, threads = web_workers()
    argv = [
        str(Path(sys.executable).parent / "gunicorn"), "bench.peers.floor.wsgi",
        "--bind", f"0.0.0.0:{port}", "--workers", workers, "--threads", threads,
        "--access-logfile", "-", "--graceful-timeout", "10", "--no-control-socket",
    ]  # fmt: skip
    return Process("floor", argv, env, log, readiness=answering_on(port)).start_ready(), token


def resonate_missing() -> str:
    """Why the reference's stack cannot run here, or '' when it can."""
    if shutil.which("node") is None:
        return "node is not installed (Debian's nodejs package)"
    if not (RESONATE_DIR / "node_modules" / "@resonatehq" / "sdk").is_dir():
        return f"its npm packages are not installed: cd {RESONATE_DIR} && npm ci"
    return ""


def resonate(log_dir: Path, port: int, window: float) -> Process:
    """The reference's stack (bench/peers/resonate/server.js on Node), answering."""
    env = child_env(PORT=str(port), CANCEL_WINDOW_MS=str(int(window * 1000)))
    argv = [str(shutil.which("node")), str(RESONATE_DIR / "server.js")]
    log = log_dir / "resonate.log"
    return Process("resonate", argv, env, log, readiness=answering_on(port)).start_ready()
