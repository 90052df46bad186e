"""localstripe (a stateful fake of Stripe's API, GPL-3.0, development and tests only), bound to
127.0.0.1 and with its state where we say.

Its own `localstripe` command listens on every interface, keeps its state in one hard-coded
pickle file in /tmp (shared by every copy running on the machine) and writes that file again on
every change of any object. This entry point runs the same aiohttp application on 127.0.0.1
only; with `--state FILE` the state is loaded from FILE at start and written to it once per
write request, without it the state lives in memory only (tests: nothing to clean up, and
`DELETE /_config/data` empties it between tests).

Run: `python -m devtools.localstripe_server --port 8420 [--state var/localstripe.pickle]`.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path

from aiohttp import web
from localstripe import resources, server


def _use_state_file(path: Path | None) -> None:
    """Send localstripe's persistence to `path` (None: nowhere), once per write request."""
    store_class = resources.Store

    def dump(store: resources.Store) -> None:
        if path is None:
            return
        scratch = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
        with scratch.open("wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        scratch.replace(path)  # a reader never sees half a file

    # Every object change wrote the whole store; the server's middleware still writes it after
    # each POST, PUT or DELETE, which is enough.
    store_class.__setitem__ = dict.__setitem__  # type: ignore[method-assign]
    store_class.__delitem__ = dict.__delitem__  # type: ignore[method-assign]
    store_class.dump_to_disk = dump  # type: ignore[method-assign]
    if path is not None and path.exists():
        with path.open("rb") as f:
            resources.store.update(pickle.load(f))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state", type=Path, default=None, help="pickle file to keep state in")
    args = parser.parse_args(argv)
    if args.state is not None:
        args.state.parent.mkdir(parents=True, exist_ok=True)
    _use_state_file(args.state)
    print(f"localstripe on http://{args.host}:{args.port}", flush=True)
    web.run_app(server.app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
