"""A PostgreSQL cluster of one's own (Debian's postgresql-common), on a port of its own, that a
test or a benchmark may stop, start and restart under real processes without touching the
shared server; and a watch that notes when a database is back after it went away."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from devtools import databases

CONFIG_ROOT = Path("/etc/postgresql")
TRUST = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"


def unavailable() -> str:
    """Why a private cluster cannot be made on this machine, or '' when it can: it needs root,
    postgresql-common's programs and an installed server."""
    if os.geteuid() != 0:
        return "needs root (pg_createcluster and pg_ctlcluster)"
    sbin = f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin:/sbin"
    for program in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster"):
        if shutil.which(program, path=sbin) is None:
            return f"{program} is not installed (apt-get install -y postgresql-common)"
    if not CONFIG_ROOT.is_dir() or not os.listdir(CONFIG_ROOT):
        return f"no PostgreSQL server is installed ({CONFIG_ROOT} is empty)"
    return ""


@dataclass(frozen=True, slots=True)
class PrivateCluster:
    """Cluster `name` of the newest installed PostgreSQL, on 127.0.0.1:`port`, user postgres
    with trust authentication. Every command returns once it is done (`start` and `restart`
    once the server accepts connections) and raises CalledProcessError when it failed."""

    name: str
    port: int

    @property
    def version(self) -> str:
        return max(os.listdir(CONFIG_ROOT), key=float)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def exists(self) -> bool:
        return (CONFIG_ROOT / self.version / self.name).exists()

    def create(self) -> None:
        """Make the cluster (not started), local connections trusted."""
        self._run("pg_createcluster", self.version, self.name, "-p", str(self.port))
        (CONFIG_ROOT / self.version / self.name / "pg_hba.conf").write_text(TRUST)

    def up(self) -> str:
        """The cluster, created if missing and started if down; the URL of its `postgres`."""
        if not self.exists():
            self.create()
        if not self.is_up():
            self.start()
        return self.url()

    def is_up(self) -> bool:
        try:
            psycopg.connect(self.url()).close()
        except psycopg.OperationalError:
            return False
        return True

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        """Stop it at once (fast mode: its clients are disconnected)."""
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """`pg_ctlcluster ... restart -m fast`: down and up again in one command."""
        self._ctl("restart", "-m", "fast")

    def drop(self) -> None:
        """Stop the cluster if it runs and delete it, data, configuration and log (a no-op when
        it does not exist)."""
        if not self.exists():
            return
        running = subprocess.run(self._ctl_argv("status"), capture_output=True).returncode == 0
        if running:
            self.stop()
        self._run("pg_dropcluster", self.version, self.name)

    def create_database(self, name: str) -> str:
        """An empty database `name` (dropped first if it existed); returns its URL."""
        return databases.create_postgres(self.url(), name)

    def _ctl_argv(self, *args: str) -> list[str]:
        return ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, *args]

    def _ctl(self, *args: str) -> None:
        self._run(*self._ctl_argv(*args))

    @staticmethod
    def _run(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True)


def delay_after_return(
    finished_at: dt.datetime, deadline: dt.datetime, returns: list[dt.datetime]
) -> dt.timedelta:
    """How long after its due moment a run finished: the later of its deadline and the
    database's last return before the run finished (the lateness a restart does not excuse)."""
    back = max((moment for moment in returns if moment <= finished_at), default=None)
    return finished_at - (deadline if back is None else max(deadline, back))


class ReturnWatch(threading.Thread):
    """Tries a new connection to `url` every 10 ms; `returned_at`: the database's clock at the
    first that succeeds after one has failed (the database went down and came back). Start it
    before the database goes down."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.returned_at: dt.datetime | None = None

    def run(self) -> None:
        down = False
        while True:
            try:
                with psycopg.connect(self.url) as conn:
                    now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            except psycopg.OperationalError:
                down = True
            else:
                if down:
                    self.returned_at = now
                    return
            time.sleep(0.01)

    def result(self, timeout: float = 60) -> dt.datetime:
        """When the database came back; raises RuntimeError if it was not seen down and back
        within `timeout` seconds."""
        self.join(timeout)
        if self.returned_at is None:
            raise RuntimeError("the database was never seen down and back")
        return self.returned_at
