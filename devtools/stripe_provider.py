"""A local payment provider for tests and benchmarks: localstripe in a process of its own, and
optionally the idempotency proxy in front of it (devtools.stripe_proxy), both on 127.0.0.1.

    with local_provider() as provider:          # localstripe alone
        provider.api_base                        # what STRIPE_API_BASE should be
    with provider.proxied() as proxy:            # a proxy in front, for a test that needs keys
        proxy.api_base, proxy.control.hold(True)  # honoured or a provider that misbehaves

`captured_charges` counts the charges the provider took, per customer.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.stripe_proxy import ProxyControl

TEST_API_KEY = "sk_test_oneclick"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Block until something listens on 127.0.0.1:`port`; fail if `process` died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def _process(name: str, *args: str) -> Iterator[subprocess.Popen]:
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open for the child's lifetime
        prefix=f"oneclick-{name}-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=15)
        log.close()
        Path(log.name).unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Proxied:
    api_base: str
    control: ProxyControl


@dataclass(frozen=True, slots=True)
class LocalProvider:
    """A running localstripe at `api_base` (no idempotency keys honoured: see `proxied`)."""

    api_base: str

    def flush(self) -> None:
        """Forget every customer, payment method and charge (localstripe's DELETE
        /_config/data)."""
        request = urllib.request.Request(f"{self.api_base}/_config/data", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()

    @contextlib.contextmanager
    def proxied(self) -> Iterator[Proxied]:
        """A fresh idempotency proxy in front of this localstripe, for the block."""
        port, control_port = free_port(), free_port()
        with _process(
            "stripe-proxy", "devtools.stripe_proxy", "--port", str(port),
            "--control-port", str(control_port), "--upstream", self.api_base,
        ) as process:  # fmt: skip
            wait_for_port(control_port, process)
            wait_for_port(port, process)
            yield Proxied(
                f"http://127.0.0.1:{port}", ProxyControl(f"http://127.0.0.1:{control_port}")
            )


@contextlib.contextmanager
def local_provider() -> Iterator[LocalProvider]:
    """localstripe on a free port of 127.0.0.1, state in memory only, for the block."""
    port = free_port()
    with _process("localstripe", "devtools.localstripe_server", "--port", str(port)) as process:
        wait_for_port(port, process)
        yield LocalProvider(f"http://127.0.0.1:{port}")


def captured_charges(client: object, customer_id: str) -> list[dict]:
    """The charges the provider captured from `customer_id` (succeeded, not declined), each as
    a dict; `client` is a stripe.StripeClient pointed at the provider itself."""
    listed = client.v1.charges.list(params={"customer": customer_id, "limit": 100})  # type: ignore[attr-defined]
    return [
        charge.to_dict()
        for charge in listed.data
        if charge.status == "succeeded" and charge.captured
    ]


@contextlib.contextmanager
def configured_provider() -> Iterator[LocalProvider | None]:
    """A provider for the Django settings of this process and the processes it starts: the one
    already configured (STRIPE_API_KEY set: yields None), else a local one for the block, with
    STRIPE_API_KEY and STRIPE_API_BASE pointing at it in the settings and the environment."""
    from django.conf import settings

    names = ("STRIPE_API_KEY", "STRIPE_API_BASE")
    if settings.STRIPE_API_KEY:
        for name in names:
            os.environ.setdefault(name, getattr(settings, name))
        yield None
        return
    saved = {name: (getattr(settings, name), os.environ.get(name)) for name in names}
    with local_provider() as provider:
        values = {"STRIPE_API_KEY": TEST_API_KEY, "STRIPE_API_BASE": provider.api_base}
        for name, value in values.items():
            setattr(settings, name, value)
            os.environ[name] = value
        try:
            yield provider
        finally:
            for name, (setting, environ) in saved.items():
                setattr(settings, name, setting)
                if environ is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = environ
