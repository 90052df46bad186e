"""devtools/ports.py: a port handed out is free on every address and never handed out twice."""

from __future__ import annotations

import socket

import pytest

from devtools.ports import free_port


def test_a_port_something_listens_on_is_not_handed_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))  # loopback only: gunicorn's 0.0.0.0 would still clash
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"no free port in {port}-{port}"):
            free_port(range(port, port + 1))


def test_a_port_is_handed_out_once_even_while_nothing_listens_on_it():
    port = free_port(range(8700, 8800))
    with pytest.raises(RuntimeError):
        free_port(range(port, port + 1))


def test_the_kernel_s_picks_are_not_repeated_either():
    assert len({free_port() for _ in range(20)}) == 20
