"""Wake-ups for pushers on a SQLite queue: Unix datagram sockets beside the database file."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from durable.transport import wakeup


def test_the_folder_sits_beside_the_database_file_where_a_socket_path_fits():
    assert wakeup.folder_for("/srv/shop/db.sqlite3") == Path("/srv/shop/db.sqlite3.wakeup")
    deep = f"/srv/{'x' * 120}/db.sqlite3"
    elsewhere = wakeup.folder_for(deep)
    assert elsewhere is not None and elsewhere.parent == Path(tempfile.gettempdir())
    assert wakeup.folder_for(deep) == elsewhere != wakeup.folder_for(deep + "-other")
    assert wakeup.folder_for(":memory:") is None
    assert wakeup.folder_for("file:memdb1?mode=memory&cache=shared") is None


def test_a_listener_sleeps_until_woken(tmp_path):
    folder = tmp_path / "w"  # short: a socket path must fit in 107 bytes
    listener = wakeup.Listener(folder)
    try:
        assert listener.wait(0.05) is False
        assert not listener.woken_before
        threading.Timer(0.2, wakeup.wake_all, [folder]).start()
        began = time.monotonic()
        assert listener.wait(10.0) is True
        assert time.monotonic() - began < 2.0, "woken, not timed out"
        assert listener.woken_before
        for _ in range(5):  # a burst of wake-ups wakes it once
            wakeup.wake_all(folder)
        assert listener.wait(1.0) is True
        assert listener.wait(0.05) is False
    finally:
        listener.close()
    assert not listener.path.exists()


def test_waking_removes_sockets_whose_process_is_gone_and_never_raises(tmp_path):
    folder = tmp_path / "w"  # short: a socket path must fit in 107 bytes
    alive, dead = wakeup.Listener(folder), wakeup.Listener(folder)
    dead._socket.close()  # as a killed process leaves it: the file stays, nobody reads it
    try:
        wakeup.wake_all(folder)
        assert not dead.path.exists()
        assert alive.wait(1.0) is True
        wakeup.wake_all(tmp_path / "no-such-folder")
    finally:
        alive.close()
