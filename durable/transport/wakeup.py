"""Wake a waiting pusher the moment a task is committed to a queue kept in a SQLite file.

PostgreSQL has LISTEN/NOTIFY for this (see durable.transport.broker_waits).
SQLite has nothing like it, but
only processes of one machine can share a SQLite file, so Unix datagram sockets do the same: each
waiting pusher binds one in a folder beside the database file, and every enqueue, once
committed, sends a byte to each socket there. A wake-up that does not arrive (a process without
the right to write to the folder) costs only time: the pusher also polls.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import select
import socket
import tempfile
import threading
from pathlib import Path

logger = logging.getLogger("durable.transport.wakeup")

# A socket's path must fit in sockaddr_un's 108 bytes; the longest name put in the folder.
_MAX_PATH = 107
_NAME_LENGTH = 32


@functools.lru_cache(maxsize=16)
def folder_for(database: str) -> Path | None:
    """The wake-up folder of the SQLite database file `database`: beside it, or where that path
    would be too long for a socket, in the temporary folder under a name made from it. None
    where there can be none (an in-memory database, no Unix sockets)."""
    if not hasattr(socket, "AF_UNIX") or not database or database.startswith(("file:", ":")):
        return None
    path = os.path.abspath(database)
    folder = Path(path + ".wakeup")
    if len(os.fsencode(folder)) + 1 + _NAME_LENGTH > _MAX_PATH:
        digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:24]
        folder = Path(tempfile.gettempdir()) / f"durable-wakeup-{digest}"
    return folder


class Listener:
    """One waiting process's socket in the wake-up folder (created if missing)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(exist_ok=True)
        self.path = folder / f"{os.getpid()}-{id(self):x}.sock"
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a process that had this pid
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(os.fspath(self.path))
        self._socket.setblocking(False)
        self.woken_before = False

    def wait(self, seconds: float) -> bool:
        """Block until a wake-up arrives or `seconds` pass; True if woken. Takes every wake-up
        that has arrived, so one burst of enqueues wakes the process once."""
        readable, _, _ = select.select([self._socket], [], [], seconds)
        woken = False
        while readable:
            try:
                self._socket.recv(64)
            except BlockingIOError:
                break
            woken = True
        self.woken_before |= woken
        return woken

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


_sender = threading.local()


def wake_all(folder: Path) -> None:
    """Wake every process listening in `folder`. Never raises: a wake-up is a hint. A socket
    that no process holds any more (its owner was killed) is removed."""
    try:
        entries = [entry.path for entry in os.scandir(folder)]
    except OSError:
        return
    sender = getattr(_sender, "socket", None)
    if sender is None:
        sender = _sender.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.setblocking(False)
    for path in entries:
        try:
            sender.sendto(b"w", path)
        except BlockingIOError:
            pass  # its buffer is full: it has wake-ups waiting already
        except ConnectionRefusedError:
            with contextlib.suppress(OSError):
                os.unlink(path)
        except OSError as exc:  # no right to write to it, or it went away meanwhile
            logger.debug("no wake-up sent to %s: %s", path, exc)
