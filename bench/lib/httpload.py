"""A small closed-loop HTTP load generator: threads, each with a keep-alive http.client
connection to 127.0.0.1, taking requests from one shared list until it is empty or the time
limit passes. Latency is measured per request from send to the end of the body."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"  # loopback only, always


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def completed(self) -> int:
        return sum(self.statuses.values())

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0


class Client:
    """One keep-alive connection; reconnects once when the server closed an idle one."""

    def __init__(self, port: int, auth: str, timeout: float = 60.0) -> None:
        self.port = port
        self.auth = auth
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def send(self, request: Request) -> tuple[int, bytes]:
        body = json.dumps(request.body).encode() if request.body is not None else None
        headers = {"Authorization": self.auth, "Host": "127.0.0.1", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(request.method, request.path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, request: Request) -> tuple[int, Any]:
        status, raw = self.send(request)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def close(self) -> None:
        self.conn.close()


def run_load(
    port: int,
    requests: Sequence[Request],
    concurrency: int,
    auth: str,
    time_limit: float,
    ok: tuple[int, ...] = (200, 201, 202),
) -> LoadResult:
    """Send `requests` with `concurrency` threads; stop at `time_limit` seconds."""
    result = LoadResult()
    lock = threading.Lock()
    pending = iter(requests)
    deadline = time.monotonic() + time_limit

    def loop() -> None:
        client = Client(port, auth)
        try:
            while time.monotonic() < deadline:
                with lock:
                    request = next(pending, None)
                if request is None:
                    return
                began = time.perf_counter()
                try:
                    status, _ = client.send(request)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        result.errors[type(exc).__name__] += 1
                    continue
                took = time.perf_counter() - began
                with lock:
                    result.statuses[status] += 1
                    if status in ok:
                        result.latencies.append(took)
        finally:
            client.close()

    threads = [threading.Thread(target=loop, name=f"load-{i}") for i in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - began
    return result
