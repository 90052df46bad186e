"""What the servers these tests start need: a port in 8700-8799 (the range reserved for them),
and the virtualenv's bin on PATH, so `bin/web` finds gunicorn when pytest ran outside `make`."""

from __future__ import annotations

import os
import random
import socket
import sys
from pathlib import Path


def venv_path() -> str:
    """PATH with the running interpreter's bin directory first."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


# Ports handed out by this process: two servers of one test are given ports before either
# listens, so "nothing listens there now" alone would hand both the same port.
_handed_out: set[int] = set()


def free_port(low: int = 8700, high: int = 8799) -> int:
    """A port in [low, high] that nothing listens on right now and that this process has not
    handed out before."""
    candidates = [port for port in range(low, high + 1) if port not in _handed_out]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port in {low}-{high}")
