"""Signing in as the rate-limit tests do: HTTP Basic headers from an address, a password hasher
that counts its work, and what a refusal looks like."""

from __future__ import annotations

import base64
import threading

from devtools.chaos.hashers import FastPBKDF2PasswordHasher


class CountingHasher(FastPBKDF2PasswordHasher):
    """Counts every password hash computed (checking a password, or hashing one)."""

    calls = 0
    _lock = threading.Lock()

    def encode(self, password: str, salt: str, iterations: int | None = None) -> str:
        with self._lock:
            type(self).calls += 1
        return super().encode(password, salt, iterations)


def basic(username: str, password: str, address: str) -> dict[str, str]:
    """The request headers of HTTP Basic sign-in as `username` from `address`."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}", "REMOTE_ADDR": address}


def assert_throttled(response) -> None:
    """The response is a rate limit's refusal: 429 JSON with Retry-After and a detail."""
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    assert "detail" in response.json()
