"""devtools/processes.py and devtools/environments.py with small real programs: a kill reaches
the whole group, readiness waits for the log or fails when the process dies, each start's log
is its own."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from devtools.environments import child_env, production_env
from devtools.ports import free_port
from devtools.processes import Process, answering_on, poll_until, wait_until

# Prints its pid, starts a grandchild that ignores SIGTERM and prints that one's pid, then waits.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("armed", flush=True)
time.sleep(600)
"""
FAMILY = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}])
print("pid of the grandchild:", child.pid, flush=True)
time.sleep(600)
"""
SERVER = """
import http.server, sys
http.server.test(http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind="127.0.0.1")
"""
COUNTING = """
import pathlib, sys
starts = pathlib.Path(sys.argv[1])
n = len(starts.read_text()) + 1 if starts.exists() else 1
starts.write_text("x" * n)
print("start", n)
"""


def python(tmp_path, name: str, code: str, *args: str) -> Process:
    argv = [sys.executable, "-c", code, *args]
    return Process(name, argv, child_env(), tmp_path / f"{name}.log")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_stop_takes_the_whole_group_even_what_ignores_sigterm(tmp_path):
    family = python(tmp_path, "family", FAMILY).start()
    try:
        family.wait_for_log("armed", timeout=30)
        family.wait_for_log("pid of the grandchild:", timeout=30)
        grandchild = int(family.log_since_start().split("grandchild: ")[1].split()[0])
        assert grandchild in family.group_pids()
        family.stop()
        wait_until(lambda: not alive(grandchild), 10, message="the grandchild outlived the stop")
        assert not family.alive
    finally:
        family.kill()


def test_readiness_fails_at_once_when_the_process_dies(tmp_path):
    quitter = python(tmp_path, "quitter", "print('bye')")
    quitter.readiness = lambda process, timeout: process.wait_for_log("never printed", 1, timeout)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="quitter exited early"):
        quitter.start_ready(timeout=60)
    assert time.monotonic() - began < 30


def test_a_server_is_ready_once_it_answers_http(tmp_path):
    port = free_port()
    server = python(tmp_path, "server", SERVER, str(port))
    server.readiness = answering_on(port)
    try:
        assert server.start_ready(timeout=60).alive
    finally:
        server.kill()


def test_each_start_reads_its_own_part_of_the_log(tmp_path):
    echo = python(tmp_path, "echo", COUNTING, str(tmp_path / "starts"))
    for _ in range(2):
        echo.start().popen.wait(timeout=60)
    assert "start 1" in echo.log() and "start 2" in echo.log()
    assert "start 2" in echo.log_since_start() and "start 1" not in echo.log_since_start()


def test_production_env_puts_this_virtualenv_first_and_lets_the_caller_override():
    env = production_env("sqlite:///x.sqlite3", DJANGO_DEBUG="true")
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert env["DATABASE_URL"] == "sqlite:///x.sqlite3"
    assert env["DJANGO_DEBUG"] == "true"
    assert env["DJANGO_SECURE_SSL_REDIRECT"] == "false"


def test_polling_answers_whether_the_condition_came_true_in_time():
    calls = iter(range(100))
    assert poll_until(lambda: next(calls) == 3, timeout=30, interval=0.001)
    assert not poll_until(lambda: False, timeout=0.05, interval=0.01)
    with pytest.raises(AssertionError, match="never"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, message="never")
