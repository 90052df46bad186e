"""JSON over real HTTP for the tests that start the web server: one request, its answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def call(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """GET `url` (POST `body` as JSON when given), with a DRF token when given; returns the
    status and the decoded JSON answer, error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
