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
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from devtools.environments import child_env
from devtools.ports import free_port
from devtools.processes import READY_TIMEOUT, Process, running, wait_for_http
from devtools.stripe_proxy import ProxyControl

TEST_API_KEY = "sk_test_oneclick"


@contextlib.contextmanager
def _running(name: str, module: str, *args: str, ready_on: int) -> Iterator[Process]:
    """`python -m module args` for the block, once port `ready_on` answers HTTP."""
    process = Process(name, [sys.executable, "-m", module, *args], child_env())
    with running(process):
        wait_for_http(f"http://127.0.0.1:{ready_on}/", READY_TIMEOUT, process)
        yield process


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
        with _running(
            "stripe-proxy", "devtools.stripe_proxy", "--port", str(port),
            "--control-port", str(control_port), "--upstream", self.api_base,
            ready_on=control_port,
        ):  # fmt: skip
            wait_for_http(f"http://127.0.0.1:{port}/", READY_TIMEOUT)
            control = ProxyControl(f"http://127.0.0.1:{control_port}")
            yield Proxied(f"http://127.0.0.1:{port}", control)


@contextlib.contextmanager
def local_provider() -> Iterator[LocalProvider]:
    """localstripe on a free port of 127.0.0.1, state in memory only, for the block."""
    port = free_port()
    with _running("localstripe", "devtools.localstripe_server", "--port", str(port), ready_on=port):
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
