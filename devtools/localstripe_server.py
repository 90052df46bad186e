"""localstripe (a stateful fake of Stripe's API, GPL-3.0, development and tests only), bound to
127.0.0.1 and with its state where we say.

Its own `localstripe` command listens on every interface, keeps its state in one hard-coded
pickle file in /tmp (shared by every copy running on the machine) and writes that file again on
every change of any object. This entry point runs the same aiohttp application on 127.0.0.1
only; with `--state FILE` the state is loaded from FILE at start and written to it once per
write request, without it the state lives in memory only (tests: nothing to clean up, and
`DELETE /_config/data` empties it between tests).

Listing one type of object (which localstripe does several times for every charge it answers
with, to sum its refunds) scans every object of every type in its store, so each charge cost
time in proportion to everything created before it: in benchmark 2, 10,000 purchases in one
round kept localstripe at 100 % of a core while the engine waited on it. Here the store also
keeps its objects by type, and a listing reads only its own type, in the same order
(`_index_listings`; tests/devtools/test_localstripe_server.py holds it to localstripe's own).

Run: `python -m devtools.localstripe_server --port 8420 [--state var/localstripe.pickle]`.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


# The text of localstripe 1.15.10's StripeObject._api_list_all, which `_list_all` replaces: if
# localstripe's changes, the replacement may no longer do what it did, so the server refuses
# to start until someone has compared the two again.
LISTING_SOURCE_SHA256 = "20345966d5d8b5741f35a652fb8a1b6656ed6e5e9b27a031bbf1222a3e9931be"


class IndexedStore(resources.Store):
    """localstripe's store (a dict of "type:id" to object) that also keeps its objects by type,
    in the order the store holds them."""

    by_type: dict[str, dict[str, Any]]

    def reindex(self) -> None:
        """Build the by-type index from the store's content."""
        self.by_type = {}
        for key, value in self.items():
            self._index(key, value)

    def _index(self, key: str, value: Any) -> None:
        kind, colon, _ = key.partition(":")
        if colon:  # a key without one (the balance) is never listed
            self.by_type.setdefault(kind, {})[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._index(key, value)

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        kind, _, _ = key.partition(":")
        self.by_type.get(kind, {}).pop(key, None)

    def clear(self) -> None:
        dict.clear(self)
        self.by_type = {}

    def update(self, *args: Any, **kwargs: Any) -> None:
        dict.update(self, *args, **kwargs)
        self.reindex()

    def of_type(self, kind: str) -> Iterable[Any]:
        """Every object of type `kind` (a class's `object`), in the store's order."""
        return self.by_type.get(kind, {}).values()


def _list_all(cls: Any, url: Any, limit: Any = None, starting_after: Any = None, **kwargs: Any):
    """localstripe's base listing (its subclasses filter what it returns), from the index."""
    if kwargs:
        raise resources.UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    listed = resources.List(url, limit=limit, starting_after=starting_after)
    listed._list = list(resources.store.of_type(cls.object))
    return listed


def listing_source_digest() -> str:
    """The SHA-256 of the source of localstripe's own StripeObject._api_list_all."""
    original = resources.StripeObject.__dict__["_api_list_all"].__func__
    return hashlib.sha256(inspect.getsource(original).encode()).hexdigest()


def _index_listings() -> None:
    """Make localstripe's store an IndexedStore (the same object: its server module holds it by
    name) and its base listing read the index. Refuses to start on a localstripe whose listing
    is not the one this replaces."""
    digest = listing_source_digest()
    if digest != LISTING_SOURCE_SHA256:
        raise RuntimeError(
            "localstripe's StripeObject._api_list_all is not the one devtools/"
            f"localstripe_server.py replaces (sha256 {digest}): compare it with _list_all, "
            "then update LISTING_SOURCE_SHA256"
        )
    resources.store.__class__ = IndexedStore
    resources.store.reindex()
    resources.StripeObject._api_list_all = classmethod(_list_all)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state", type=Path, default=None, help="pickle file to keep state in")
    args = parser.parse_args(argv)
    if args.state is not None:
        args.state.parent.mkdir(parents=True, exist_ok=True)
    _index_listings()
    _use_state_file(args.state)
    print(f"localstripe on http://{args.host}:{args.port}", flush=True)
    web.run_app(server.app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
