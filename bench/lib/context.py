"""The bench process's own Django (same settings as the children, same database) and the
context every benchmark receives: its database, the children's environment, the seed data."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lib import processes
from bench.lib.database import BenchDatabase
from bench.lib.machine import ROOT
from bench.lib.results import BenchResult

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
        proc = processes.worker({**self.env, **overrides}, self.log_dir)
        self._started.append(proc)
        return proc

    def start_poller(self, **overrides: str) -> processes.Process:
        proc = processes.poller({**self.env, **overrides}, self.log_dir)
        self._started.append(proc)
        return proc

    def start_web(self, **overrides: str) -> tuple[processes.Process, int]:
        port = processes.free_port()
        proc = processes.web({**self.env, **overrides}, self.log_dir, port)
        self._started.append(proc)
        return proc, port

    def kill_all(self) -> None:
        """SIGKILL every process group this benchmark started."""
        for proc in self._started:
            proc.kill()
        self._started.clear()


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


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds passed; returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


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
