"""Ports for the servers that tests and benchmarks start: one picker, and the range each kind of
caller keeps to, so that a test run, a chaos run and a benchmark on one machine do not meet."""

from __future__ import annotations

import random
import socket

# bin/web's gunicorn binds 0.0.0.0: a port counts as free only when nothing listens on any address.
TEST_SERVERS = range(8700, 8800)
CHAOS_SERVERS = range(8800, 8900)
BENCH_SERVERS = range(8900, 9000)

# Ports handed out by this process: two servers of one test are given ports before either
# listens, so "nothing listens there now" alone would hand both the same port.
_handed_out: set[int] = set()


def free_port(ports: range | None = None) -> int:
    """A port that nothing listens on right now (on any address) and that this process has not
    handed out before: one of `ports`, tried in random order, or with `ports=None` one the kernel
    picks from its ephemeral range. Raises RuntimeError when every port of `ports` is taken."""
    if ports is None:
        while (port := _bind(0)) in _handed_out:
            pass  # the kernel gave back a port handed out before: ask again
        _handed_out.add(port)
        return port
    candidates = [port for port in ports if port not in _handed_out]
    random.shuffle(candidates)
    for candidate in candidates:
        if _bind(candidate):
            _handed_out.add(candidate)
            return candidate
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def _bind(port: int) -> int:
    """The port a socket could bind on 0.0.0.0 (`port`, or the kernel's pick for 0); 0 if none."""
    with socket.socket() as sock:
        # A connection of an earlier server in TIME_WAIT does not stop a new one listening.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return 0
        return sock.getsockname()[1]
