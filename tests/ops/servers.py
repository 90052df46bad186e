"""The virtualenv's bin on PATH, so `bin/web` finds gunicorn when pytest ran outside `make`."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def venv_path() -> str:
    """PATH with the running interpreter's bin directory first."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
