"""A fake payment provider: an HTTP server in its own process, with idempotency keys.

`POST /charges` with an `Idempotency-Key` header and `{"amount": ...}` makes a charge, or
answers with the charge already made under that key (as Stripe and Adyen do). Every request is
counted as an attempt. While holding (`POST /hold {"on": true}`), a charge is recorded and then
its answer is held back until the hold is lifted: a client killed meanwhile has been charged
without learning it, the worst moment for it to die. `GET /charges` lists charges and attempts.

Run: `python -m tests.support.fake_psp PORT`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.charges: dict[str, dict[str, Any]] = {}
        self.attempts: list[str] = []
        self.held = 0
        self.release = threading.Event()
        self.release.set()

    def charge(self, key: str, amount: Any) -> dict[str, Any]:
        with self.lock:
            self.attempts.append(key)
            if key not in self.charges:
                number = len(self.charges) + 1
                self.charges[key] = {"id": f"ch_{number}", "amount": amount, "key": key}
            return self.charges[key]


LEDGER = _Ledger()


class _Handler(BaseHTTPRequestHandler):
    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

    def do_GET(self) -> None:
        with LEDGER.lock:
            body = {
                "charges": list(LEDGER.charges.values()),
                "attempts": list(LEDGER.attempts),
                "held": LEDGER.held,
            }
        self._answer(200, body)

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/hold":
            if body.get("on"):
                LEDGER.release.clear()
            else:
                LEDGER.release.set()
            return self._answer(200, {"holding": not LEDGER.release.is_set()})
        key = self.headers.get("Idempotency-Key")
        if not key:
            return self._answer(400, {"error": "Idempotency-Key is required"})
        charge = LEDGER.charge(key, body.get("amount"))
        if not LEDGER.release.is_set():
            with LEDGER.lock:
                LEDGER.held += 1
            LEDGER.release.wait()
        with contextlib.suppress(OSError):  # the client is gone (killed while it was held)
            self._answer(200, charge)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"psp: {format % args}\n")


def serve(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


# --- the client side --------------------------------------------------------------------------


def _call(url: str, data: Any = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        url,
        data=None if data is None else json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def charge(base_url: str, amount: str, idempotency_key: str) -> dict[str, Any]:
    """Charge `amount` once per `idempotency_key`; returns the charge."""
    return _call(f"{base_url}/charges", {"amount": amount}, {"Idempotency-Key": idempotency_key})


def ledger(base_url: str) -> dict[str, Any]:
    """The provider's charges and every attempt's key."""
    return _call(base_url)


def hold(base_url: str, on: bool) -> None:
    """Hold back (or release) the answers to charges."""
    _call(f"{base_url}/hold", {"on": on})


if __name__ == "__main__":
    serve(int(sys.argv[1]))
