"""One leased run's share of the group transaction: its lease taken or fenced, its savepoint,
and the database's clock read with them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from django.utils import timezone

from durable import conf
from durable.core.replay import Recorded
from durable.persistence import store
from durable.runtime.group import GroupTransaction, RunSavepoint


class RunTransaction:
    """The transaction bookkeeping of one run advanced inside `group`: the lease is taken
    (`acquire`) or fenced (`begin`) once in each opening of the group before anything is
    written, the run's writes are kept or taken back apart from earlier runs' (a savepoint),
    and `now` is the database's clock."""

    # Whether a command may commit the work so far (before a plain step calls the outside world).
    may_commit = True
    # The leased run (for a plain step handed to the step pool, which advances it on later).
    leased: store.LeasedRun | None = None
    # Set when a plain step's call was handed to the step pool: the run stays leased meanwhile.
    handed_off = False
    # The run's checkpoints as this advance knows them (read, then written), for the step pool's
    # completer to replay from without reading them again; None when they may differ.
    history: dict[int, Recorded] | None = None

    def __init__(self, run_id: str, owner: str, ttl: dt.timedelta, group: GroupTransaction) -> None:
        self.run_id = run_id
        self.owner = owner
        self.ttl = ttl
        self._group = group
        self._savepoint: RunSavepoint | None = None
        self._fenced_in = -1  # the group generation this run last took or fenced its lease in
        self._db_clock: tuple[dt.datetime | None, float] = (None, 0.0)

    def acquire(self, *, fresh: bool) -> store.LeasedRun | None:
        """Take the lease as a write of the group transaction (instead of a fence): a run that
        only touches the database is then advanced in one commit."""
        if self._group.is_open:
            # Earlier runs' writes share the transaction: mark where this run's begin.
            self._savepoint = RunSavepoint(self._group)
        else:
            self._group.open()
        leased = store.acquire_lease(self.run_id, self.owner, self.ttl, fresh=fresh)
        if leased is not None:
            self.leased = leased
            self._fenced_in = self._group.generation
            self._note_clock(leased.db_now)
        return leased

    def begin(self) -> None:
        """Make sure the group transaction is open and this run's lease is fenced in it."""
        if self._group.is_open and self._fenced_in == self._group.generation:
            return
        if not self._group.is_open:
            self._group.open()
        try:
            self._note_clock(store.fence(self.run_id, self.owner, self.ttl))
        except BaseException:
            self.rollback()
            raise
        self._fenced_in = self._group.generation

    def remember(self, position: int, recorded: Recorded) -> None:
        """The checkpoint at `position` was just written as `recorded`."""
        if self.history is not None:
            self.history[position] = recorded

    def forget_history(self) -> None:
        """A checkpoint was written in a way `remember` cannot follow: read them again."""
        self.history = None

    def _note_clock(self, db_now: dt.datetime | None) -> None:
        self._db_clock = (db_now, time.monotonic())

    def now(self) -> dt.datetime:
        """The database's clock (PostgreSQL), read when the lease was last taken or fenced and
        carried forward by this process's monotonic clock, saving a round trip per timer."""
        db_now, read_at = self._db_clock
        if db_now is None:
            return timezone.now()
        return db_now + dt.timedelta(seconds=time.monotonic() - read_at)

    def commit(self) -> None:
        """Make everything so far durable (before a plain step calls the outside world)."""
        self._group.commit()
        # Earlier runs' writes are committed: from here on the group holds this run's only.
        self._savepoint = None

    def commit_if_old(self) -> None:
        """Commit once the group has been open for DURABLE["GROUP_COMMIT_SECONDS"], so that it
        never holds the database's locks for long."""
        if self._group.age() > conf.get("GROUP_COMMIT_SECONDS"):
            self.commit()

    def release(self) -> None:
        """This run is done: its writes stay in the group, to commit with it."""
        if self._savepoint is not None:
            self._savepoint.release()

    def after_commit(self, on_commit: Callable[[], None], on_rollback: Callable[[], None]) -> None:
        """Call `on_commit` once this run's writes so far have committed, `on_rollback` if they
        are taken back instead (the group's or this run's rollback)."""
        self._group.after_commit(self, on_commit, on_rollback)

    def rollback(self) -> None:
        """Take back this run's uncommitted writes, and only those (without a savepoint, the
        group holds nothing else)."""
        self._group.forget(self)
        if self._savepoint is not None:
            self._savepoint.rollback()
        else:
            self._group.rollback()


class CallerTransaction(RunTransaction):
    """The bookkeeping of a run advanced inside the transaction that created it (an eager
    start): no lease and no fence, as no other process can see the run before that transaction
    commits; its writes commit or roll back with the caller's.

    Nothing may commit in here: the executor stops before a command that must commit first (a
    plain step, which calls the outside world)."""

    may_commit = False

    def __init__(self, run_id: str, ttl: dt.timedelta, created_at: dt.datetime | None) -> None:
        # The run was created with no lease: its owner is the empty one until it is leased.
        super().__init__(run_id, "", ttl, GroupTransaction())
        self._note_clock(created_at)

    def acquire(self, *, fresh: bool) -> store.LeasedRun | None:
        raise AssertionError("a run advanced in its creating transaction is never leased")

    def begin(self) -> None:
        """Nothing to open or fence: the caller's transaction is open and the run is ours."""

    def commit(self) -> None:
        raise AssertionError("the caller's transaction commits, not the run's")

    def commit_if_old(self) -> None:
        """The caller's transaction is short: nothing to do."""

    def release(self) -> None:
        """Everything stays in the caller's transaction."""

    def rollback(self) -> None:
        """The caller's transaction fails with the error: nothing to take back apart."""
