"""A django-q2 task that does nothing but say when it ran: the floor of one task hop.

The qcluster's workers run from the project's root, so they import it as `bench.lib.noop.noop`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TASK_PATH = "bench.lib.noop.noop"


def noop(path: str) -> None:
    """Write the wall-clock time it ran (time.time()) to `path`. The file appears complete or
    not at all (written beside it, then renamed), so a reader never sees half a number."""
    partial = f"{path}.partial"
    Path(partial).write_text(repr(time.time()))
    os.replace(partial, path)


def ran_at(path: str) -> float | None:
    """The time `noop(path)` ran, or None while it has not."""
    try:
        return float(Path(path).read_text())
    except FileNotFoundError:
        return None
