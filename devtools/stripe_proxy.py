"""A layer in front of localstripe that honours idempotency keys as Stripe does, and that a test
can make slow, silent or unreachable.

localstripe makes a new object for every request, whatever its `Idempotency-Key`. This proxy
forwards each request to it, and for a POST with a key keeps the first answer and replays it
(with `Idempotent-Replayed: true`) to every later request with that key, as Stripe does for 24
hours; a request with the key while the first is still in flight gets Stripe's 409, and the same
key with other parameters Stripe's 400. On command (a control port of its own, which stays up):

- hold: a charge (`POST /v1/payment_intents`) is made at localstripe, then its answer is held
  back until the hold is lifted: a client killed meanwhile was charged without learning it;
- delay: every answer waits this many seconds first;
- refuse: the API port is closed (connection refused) until reopened on the same port.

Run: `python -m devtools.stripe_proxy --port P --control-port C --upstream http://127.0.0.1:L`.
Drive it with `ProxyControl("http://127.0.0.1:C")`.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHARGE_PATH = "/v1/payment_intents"
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Stripe-Version", "Idempotency-Key")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass
class ProxyState:
    """What the proxy remembers and is told; every field is read and written under `lock`."""

    upstream: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: dict[str, tuple[str, Answer]] = field(default_factory=dict)
    in_flight: dict[str, str] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)
    delay: float = 0.0
    held: int = 0
    replayed: int = 0
    charge_requests: int = 0

    def __post_init__(self) -> None:
        self.released.set()


def _error(status: int, kind: str, message: str, code: str = "") -> Answer:
    body = {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}
    return Answer(status, "application/json", json.dumps(body).encode())


IN_USE = _error(
    409, "idempotency_error",
    "There is currently another in-progress request using this Idempotent Key. "
    "Please try again later.", "idempotency_key_in_use",
)  # fmt: skip


class _ApiHandler(BaseHTTPRequestHandler):
    server: _ApiServer

    def do_GET(self) -> None:
        self._handle(b"")

    def do_DELETE(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _handle(self, body: bytes) -> None:
        state = self.server.state
        key = self.headers.get("Idempotency-Key") if self.command == "POST" else None
        is_charge = self.command == "POST" and self.path.split("?")[0] == CHARGE_PATH
        if is_charge:
            with state.lock:
                state.charge_requests += 1
        if key is None:
            return self._send(self._forward(body), is_charge=is_charge)
        # Stripe's key covers the request's parameters (not their order: a retry may encode a
        # dict read back from a checkpoint, which PostgreSQL's jsonb reorders): the same key
        # with other parameters is refused.
        parameters = sorted(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        fingerprint = hashlib.sha256(
            repr((self.command, self.path, parameters)).encode()
        ).hexdigest()
        early = self._known(key, fingerprint)
        if early is not None:
            return self._send(*early)
        try:
            answer = self._forward(body)
            with state.lock:
                state.answers[key] = (fingerprint, answer)
        finally:
            with state.lock:
                del state.in_flight[key]
        self._send(answer, is_charge=is_charge)

    def _known(self, key: str, fingerprint: str) -> tuple[Answer, bool] | None:
        """The answer for a key already used (replayed: True), or Stripe's refusal; None for a
        new key, which is then in flight."""
        state = self.server.state
        with state.lock:
            if key in state.answers:
                first_fingerprint, answer = state.answers[key]
                if first_fingerprint != fingerprint:
                    return _mismatch(key), False
                state.replayed += 1
                return answer, True
            if key in state.in_flight:
                return IN_USE, False
            state.in_flight[key] = fingerprint
            return None

    def _forward(self, body: bytes) -> Answer:
        upstream = urllib.parse.urlsplit(self.server.state.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers[name]}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            return Answer(
                response.status,
                response.getheader("Content-Type") or "application/json",
                response.read(),
            )
        finally:
            connection.close()

    def _send(self, answer: Answer, replayed: bool = False, *, is_charge: bool = False) -> None:
        state = self.server.state
        if is_charge and not state.released.is_set():
            with state.lock:
                state.held += 1
            state.released.wait()
        if state.delay:
            time.sleep(state.delay)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:
            pass  # the client is gone (killed while its answer was held)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _mismatch(key: str) -> Answer:
    return _error(
        400, "idempotency_error",
        f"Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
    )  # fmt: skip


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, state: ProxyState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", port), _ApiHandler)


class Proxy:
    """The API port, which `refuse` closes and `reopen` binds again, and its state."""

    def __init__(self, port: int, upstream: str) -> None:
        self.port = port
        self.state = ProxyState(upstream)
        self._server: _ApiServer | None = None
        self._switch = threading.Lock()
        self.reopen()

    def reopen(self) -> None:
        with self._switch:
            if self._server is None:
                self._server = _ApiServer(self.port, self.state)
                threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def refuse(self) -> None:
        with self._switch:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    def report(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "refusing": self._server is None,
                "holding": not self.state.released.is_set(),
                "held": self.state.held,
                "delay": self.state.delay,
                "keys": len(self.state.answers),
                "replayed": self.state.replayed,
                "charge_requests": self.state.charge_requests,
            }


class _ControlHandler(BaseHTTPRequestHandler):
    server: _ControlServer

    def do_GET(self) -> None:
        self._answer(self.server.proxy.report())

    def do_POST(self) -> None:
        proxy = self.server.proxy
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path == "/hold":
            (proxy.state.released.clear if body.get("on") else proxy.state.released.set)()
        elif self.path == "/delay":
            proxy.state.delay = float(body.get("seconds") or 0)
        elif self.path == "/refuse":
            (proxy.refuse if body.get("on") else proxy.reopen)()
        else:
            self.send_error(404)
            return
        self._answer(proxy.report())

    def _answer(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, proxy: Proxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", port), _ControlHandler)


@dataclass(frozen=True, slots=True)
class ProxyControl:
    """The test's side: commands to a proxy's control port."""

    url: str

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method="POST" if data else "GET"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def report(self) -> dict[str, Any]:
        """refusing, holding, held (answers held so far), delay, keys, replayed, charge_requests."""
        return self._call("/")

    def hold(self, on: bool) -> dict[str, Any]:
        """Hold back (or release) the answers to charges, which are made meanwhile."""
        return self._call("/hold", {"on": on})

    def delay(self, seconds: float) -> dict[str, Any]:
        """Make every answer wait `seconds` first (0: no delay)."""
        return self._call("/delay", {"seconds": seconds})

    def refuse(self, on: bool) -> dict[str, Any]:
        """Close the API port (connections refused), or open it again."""
        return self._call("/refuse", {"on": on})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="localstripe's address")
    args = parser.parse_args(argv)
    proxy = Proxy(args.port, args.upstream)
    print(f"stripe proxy on http://127.0.0.1:{args.port} -> {args.upstream}", flush=True)
    _ControlServer(args.control_port, proxy).serve_forever()


if __name__ == "__main__":
    main()
