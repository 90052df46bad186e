"""`manage.py` run in a child process, as an operator or a deployment runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from devtools.processes import ROOT


def run_manage(*args: str, env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `manage.py args` to its end with this environment plus `env_overrides`; returns
    what it did, its output captured as text."""
    return _run(args, {**os.environ, **env_overrides})


def manage_py(*args: str, env: dict[str, str]) -> str:
    """Run `manage.py args` to its end with environment `env`; returns its output (fails the
    test with the output when the command failed)."""
    done = _run(args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _run(args: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
