"""The bench process's own Django (same settings as the children, same database) and the
context every benchmark receives: its database, the children's environment, the seed data."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lib.database import BenchDatabase
from bench.lib.machine import ROOT
from bench.lib.results import BenchResult
from devtools import processes
from devtools.environments import NO_RATE_LIMITS, production_env
from devtools.ports import BENCH_SERVERS, free_port

BENCH_PASSWORD = "bench-password-not-secret"
BENCH_ITEM = "bench-item-001"


@dataclass
class Seed:
    """The user the benchmarks buy as, with both kinds of credentials, and the product."""

    user: Any
    token: str
    item_id: str

    @property
    def basic_header(self) -> str:
        raw = f"{self.user.username}:{BENCH_PASSWORD}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    @property
    def token_header(self) -> str:
        return f"Token {self.token}"


@dataclass
class BenchContext:
    """What a benchmark's `run` gets. `quick` asks for the reduced form; `rounds` how many."""

    db: BenchDatabase
    env: dict[str, str]
    seed: Seed
    result: BenchResult
    log_dir: Path
    quick: bool
    rounds: int
    worker: processes.Process | None = None
    _started: list[processes.Process] = field(default_factory=list)

    def size(self, full: int, quick: int) -> int:
        """A count for the full or the quick run."""
        return quick if self.quick else full

    def start_worker(self, **overrides: str) -> processes.Process:
        """`manage.py qcluster`, started and ready (each worker waits for tasks)."""
        return self._start(processes.worker({**self.env, **overrides}, log_dir=self.log_dir))

    def start_poller(self, **overrides: str) -> processes.Process:
        """`manage.py durable_poller`, started and polling."""
        return self._start(processes.poller({**self.env, **overrides}, log_dir=self.log_dir))

    def start_web(self, **overrides: str) -> tuple[processes.Process, int]:
        """`bin/web` (gunicorn) on a port of the bench's range, started and answering."""
        port = free_port(BENCH_SERVERS)
        env = {**self.env, **overrides}
        return self._start(processes.web(env, port, log_dir=self.log_dir)), port

    def _start(self, process: processes.Process) -> processes.Process:
        self._started.append(process)
        return process.start_ready()

    def kill_all(self) -> None:
        """SIGKILL every process group this benchmark started."""
        for proc in self._started:
            proc.kill()
        self._started.clear()


def bench_env(database_url: str, cluster_name: str, **overrides: str) -> dict[str, str]:
    """The environment of every child and of the bench process itself: production-like
    settings (DEBUG off, gunicorn), the benchmark's database, its own django-q2 queue name, no
    rate limits (the load comes from a few users at rates no customer reaches)."""
    settings = {
        "DJANGO_SECRET_KEY": f"bench-{secrets.token_hex(24)}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "Q_CLUSTER_NAME": cluster_name,
        "Q_WORKERS": os.environ.get("Q_WORKERS", "2"),
        **NO_RATE_LIMITS,
    }
    return production_env(database_url, **{**settings, **overrides})


def setup_django(env: dict[str, str]) -> None:
    """Configure this process exactly like the children (same environment) and load Django."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oneclick_project.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    # The children log at INFO as configured; the bench process's own lines would only add noise.
    logging.getLogger().setLevel(logging.WARNING)


def seed() -> Seed:
    """A bench user with a password (HTTP Basic), a DRF token and a saved Visa, and one product
    with stock enough for every benchmark."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from purchases import services
    from purchases.models import Product

    user = get_user_model().objects.create_user("bench", password=BENCH_PASSWORD)
    services.save_payment_method(user, "pm_card_visa")
    token = Token.objects.create(user=user)
    Product.objects.create(item_id=BENCH_ITEM, name="Bench item", price="1.00", stock=1_000_000_000)
    return Seed(user, token.key, BENCH_ITEM)


@contextlib.contextmanager
def settings_override(**values: Any) -> Iterator[None]:
    """Set Django settings in this process for the block (the services read them lazily)."""
    from django.conf import settings

    saved = {name: getattr(settings, name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)
