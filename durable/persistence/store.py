"""The queries of a run's life, and the engine's clock: create, lease and fence a run, record its
checkpoints and workflow signals, suspend, block, cancel or finish it, claim the due runs. Models
stay plain; the rules of the tables live here (operators' reports, recovery and retention query
the tables from durable/ops/).

Serialisation: the engine's decisions about a run (take a checkpoint, decide a wait, accept a
workflow signal) each run in one transaction that first locks the run's row: `select_for_update`
or an UPDATE on PostgreSQL, and the write lock that SQLite's IMMEDIATE transactions take at BEGIN.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, Expression, Q, Value
from django.db.models.expressions import RawSQL
from django.utils import timezone

from durable.core.replay import Recorded
from durable.errors import LeaseLost, RunNotFound
from durable.models import (
    ACTIVE_STATUSES,
    BlockedKind,
    CheckpointStatus,
    RunStatus,
    StepCheckpoint,
    WorkflowRun,
    WorkflowSignal,
)
from durable.persistence import sql


def db_now_expression(offset: dt.timedelta = dt.timedelta(0)) -> Expression:
    """An ORM expression whose value is `db_now() + offset`: the database's clock read by the
    statement itself on PostgreSQL, this process's clock (now) on SQLite (see sql.DatabaseClock)."""
    if connection.vendor == "postgresql":
        return RawSQL("clock_timestamp() + %s", [offset], output_field=DateTimeField())
    return Value(timezone.now() + offset, output_field=DateTimeField())


def db_now() -> dt.datetime:
    """The time by the database's clock on PostgreSQL (one clock for every machine), else ours."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]
    return timezone.now()


# --- runs ---------------------------------------------------------------------------------------

_RUN_COLUMNS = WorkflowRun._meta.concrete_fields


def create_run(
    run_id: str,
    workflow: str,
    args: list[Any],
    grace: dt.timedelta | None = None,
    version: int = 1,
) -> tuple[WorkflowRun, bool]:
    """Insert the run, or return the one with this id (`created` False), whatever it holds: the
    caller compares it. Safe under concurrent calls: the primary key decides, not a check before
    the insert, and a used id raises nothing, so it spoils no surrounding transaction.

    Without `grace` the run is recorded as enqueued now; with it, nothing is enqueued and the
    poller takes the run once `grace` has passed by the database's clock (unless it was advanced
    before)."""
    run = WorkflowRun(id=run_id, workflow=workflow, workflow_version=version, args=args)
    values = {f.attname: getattr(run, f.attname) for f in _RUN_COLUMNS}
    values.update(
        created_at=sql.DatabaseClock(),
        updated_at=sql.DatabaseClock(),
        enqueued_at=None if grace is not None else sql.DatabaseClock(),
        wake_at=None if grace is None else sql.DatabaseClock(grace),
    )
    times = ("created_at", "updated_at", "enqueued_at", "wake_at")
    row = sql.insert_returning(WorkflowRun, values, ", ".join(times), unless_exists=True)
    if row is not None:
        for name, value in zip(times, row, strict=True):
            setattr(run, name, sql.read_datetime(value))
        run._state.adding, run._state.db = False, connection.alias
        return run, True
    # The id is taken by a committed run (on PostgreSQL the insert waited for its transaction).
    return get_run(run_id), False


def shared_clock(value: dt.datetime) -> dt.datetime | None:
    """`value`, a time read from the database's clock, where that clock is shared by every
    machine (PostgreSQL); None on SQLite, where each process reads the machine's own clock."""
    return value if connection.vendor == "postgresql" else None


def make_due(run_id: str) -> None:
    """Make a pending run due at once by the database's clock (the poller takes it if no one
    advances it first)."""
    WorkflowRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        wake_at=db_now_expression()
    )


def get_run(run_id: str) -> WorkflowRun:
    """The run with this id; RunNotFound if none."""
    try:
        return WorkflowRun.objects.get(pk=run_id)
    except WorkflowRun.DoesNotExist:
        raise RunNotFound(f"no workflow run {run_id!r}") from None


def lock_run(run_id: str) -> WorkflowRun:
    """The run's row, locked until the surrounding transaction ends."""
    try:
        return WorkflowRun.objects.select_for_update().get(pk=run_id)
    except WorkflowRun.DoesNotExist:
        raise RunNotFound(f"no workflow run {run_id!r}") from None


@dataclass(frozen=True, slots=True)
class LeasedRun:
    """What an executor needs of a run it just leased. `db_now`: the database's clock at that
    moment on PostgreSQL (one clock for every machine), None on SQLite.

    Nothing about the run's other rows (checkpoints, signals) is asked here: on PostgreSQL a
    statement that waited for the run's row still reads other tables as they were when it
    started, so a signal committed by the sender it waited for would be missed."""

    workflow: str
    args: list[Any]
    db_now: dt.datetime | None
    version: int = 1


_CHECKPOINTS = StepCheckpoint._meta.db_table
_SIGNALS = WorkflowSignal._meta.db_table
_ACTIVE = tuple(str(status) for status in ACTIVE_STATUSES)


def _clock_sql() -> tuple[str, list[Any]]:
    """The database's clock in a condition, and its parameters (see sql.DatabaseClock)."""
    return sql.placeholder(WorkflowRun, "lease_expires_at", sql.DatabaseClock())


def acquire_lease(
    run_id: str, owner: str, ttl: dt.timedelta, *, fresh: bool = False
) -> LeasedRun | None:
    """Compare-and-set: admits exactly one executor while the lease is unexpired, and only when
    the run is active and its wake-up time has come (or, `fresh`, also when it has no checkpoint
    yet and is only parked for the poller's sake: an eager start). Returns the leased run, or
    None.

    Inside the executor's transaction the lease commits with the run's first checkpoints (one
    commit), and the row stays locked until then. On PostgreSQL a `fresh` lease that waited for
    the row judges "no checkpoint yet" as before its wait, so it may be granted on a run a worker
    advanced meanwhile: harmless, as the executor reads the history after its lease and an early
    advance only replays what the worker recorded.

    Whether the lease is free and the run due is judged by the database's clock in this very
    statement, which also sets the lease's expiry by it: processes' clocks play no part."""
    clock, clock_params = _clock_sql()
    when, when_params = f"(wake_at IS NULL OR wake_at <= {clock})", list(clock_params)
    if fresh:
        when = (
            f"({when} OR status = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {_CHECKPOINTS} WHERE run_id = %s))"
        )
        when_params += [str(RunStatus.PENDING), run_id]
    _, row = sql.update(
        WorkflowRun,
        {
            "lease_owner": owner,
            "lease_expires_at": sql.DatabaseClock(ttl),
            "status": RunStatus.RUNNING,
            "enqueued_at": None,
            "wake_at": None,
            "waiting_signal": "",
            "updated_at": sql.DatabaseClock(),
        },
        f"id = %s AND status IN (%s, %s, %s) "
        f"AND (lease_expires_at IS NULL OR lease_expires_at < {clock}) AND {when}",
        [run_id, *_ACTIVE, *clock_params, *when_params],
        returning=f"workflow, args, {sql.clock_sql()}, workflow_version",
    )
    if row is None:
        return None
    workflow, args, db_now, version = row
    return LeasedRun(workflow, sql.read_json(args), sql.read_datetime(db_now), version)


def fence(run_id: str, owner: str, ttl: dt.timedelta) -> dt.datetime | None:
    """Inside a transaction: renew the lease and lock the run's row, or raise LeaseLost. Returns
    the database's clock on PostgreSQL, None on SQLite.

    Called before every checkpoint write, so an executor that lost its lease (expired and taken
    over, or the run cancelled) cannot write anything. The new expiry is the database's clock
    plus `ttl`."""
    _, row = sql.update(
        WorkflowRun,
        {"lease_expires_at": sql.DatabaseClock(ttl), "updated_at": sql.DatabaseClock()},
        "id = %s AND lease_owner = %s AND status = %s",
        [run_id, owner, str(RunStatus.RUNNING)],
        returning=sql.clock_sql(),
    )
    if row is None:
        raise LeaseLost(f"lease on run {run_id!r} lost by {owner}")
    return sql.read_datetime(row[0])


def renew_leases(owners: list[str], ttl: dt.timedelta) -> set[str]:
    """Outside any transaction, in one statement: renew every running run's lease held by one
    of `owners` (tokens unique to one acquisition each) to the database's clock plus `ttl`.
    Returns the owners whose lease was renewed; the others have lost theirs."""
    if not owners:
        return set()
    expiry, expiry_params = sql.placeholder(WorkflowRun, "lease_expires_at", sql.DatabaseClock(ttl))
    now, now_params = sql.placeholder(WorkflowRun, "updated_at", sql.DatabaseClock())
    marks = ", ".join(["%s"] * len(owners))
    rows = sql.fetch_all(
        f"UPDATE {WorkflowRun._meta.db_table} SET lease_expires_at = {expiry}, updated_at = {now} "
        f"WHERE status = %s AND lease_owner IN ({marks}) RETURNING lease_owner",
        [*expiry_params, *now_params, str(RunStatus.RUNNING), *owners],
    )
    return {owner for (owner,) in rows}


def finish_run(run_id: str, owner: str, status: str, result: Any = None, error: str = "") -> None:
    """Inside a fenced transaction: record the run's end and release its lease."""
    sql.update(
        WorkflowRun, _ended(status, result, error), "id = %s AND lease_owner = %s", [run_id, owner]
    )


def _ended(status: str, result: Any, error: str) -> dict[str, Any]:
    """The columns of a run that has ended: no lease, nothing to wake for, finished by the
    database's clock."""
    now = sql.DatabaseClock()
    return {
        "status": status,
        "result": result,
        "error": error,
        "lease_owner": "",
        "lease_expires_at": None,
        "wake_at": None,
        "waiting_signal": "",
        "finished_at": now,
        "updated_at": now,
    }


def suspend_run(run_id: str, owner: str, wake_at: dt.datetime | None, signal: str = "") -> None:
    """Inside a fenced transaction: park the run until `wake_at` (or a signal) and release it."""
    sql.update(
        WorkflowRun,
        {
            "status": RunStatus.WAITING,
            "wake_at": wake_at,
            "waiting_signal": signal,
            "lease_owner": "",
            "lease_expires_at": None,
            "updated_at": sql.DatabaseClock(),
        },
        "id = %s AND lease_owner = %s",
        [run_id, owner],
    )


def block_run(run_id: str, owner: str, kind: BlockedKind, reason: str) -> str:
    """Inside a fenced transaction: park the run as BLOCKED, of `kind`, with `reason` (for
    people), keeping all its state
    (checkpoints, workflow signals, deadlines), and release it. Nothing wakes a blocked run but
    `unblock_runs`. Returns the reason it was last blocked for before ("" if never)."""
    previous = (
        WorkflowRun.objects.filter(pk=run_id).values_list("blocked_reason", flat=True).first()
    )
    now = timezone.now()
    sql.update(
        WorkflowRun,
        {
            "status": RunStatus.BLOCKED,
            "blocked_kind": kind,
            "blocked_reason": reason,
            "blocked_at": now,
            "wake_at": None,
            "waiting_signal": "",
            "enqueued_at": None,
            "lease_owner": "",
            "lease_expires_at": None,
            "updated_at": now,
        },
        "id = %s AND lease_owner = %s",
        [run_id, owner],
    )
    return previous or ""


def defer_run(run_id: str, owner: str, wake_at: dt.datetime) -> None:
    """Inside a fenced transaction: give the run back, runnable again at `wake_at` (for the
    poller to enqueue then), without changing anything else."""
    sql.update(
        WorkflowRun,
        {
            "status": RunStatus.PENDING,
            "wake_at": wake_at,
            "enqueued_at": None,
            "lease_owner": "",
            "lease_expires_at": None,
            "updated_at": timezone.now(),
        },
        "id = %s AND lease_owner = %s",
        [run_id, owner],
    )


def unblock_runs(runs: Q, now: dt.datetime) -> list[str]:
    """Inside a transaction: make the blocked runs matching `runs` runnable at once and mark
    them enqueued (the caller enqueues them in the same transaction); returns their ids. Two
    callers at once unblock disjoint sets."""
    ids = list(
        WorkflowRun.objects.filter(runs, status=RunStatus.BLOCKED)
        .order_by("blocked_at")
        .select_for_update(skip_locked=True)
        .values_list("id", flat=True)
    )
    if ids:
        WorkflowRun.objects.filter(pk__in=ids, status=RunStatus.BLOCKED).update(
            status=RunStatus.PENDING, wake_at=None, enqueued_at=now, updated_at=now
        )
    return ids


def restart_unknown_horizons(run_ids: list[str]) -> None:
    """Inside a transaction: forget when the unknown outcomes of the runs' unfinished steps
    began, so that their next attempt starts a new `unknown_for` horizon."""
    StepCheckpoint.objects.filter(
        run_id__in=run_ids, status=CheckpointStatus.PENDING, unknown_since__isnull=False
    ).update(unknown_since=None)


def release_lease(run_id: str, owner: str) -> None:
    """Give the lease back without changing anything else (the run stays runnable)."""
    WorkflowRun.objects.filter(pk=run_id, lease_owner=owner).update(
        status=RunStatus.PENDING, lease_owner="", lease_expires_at=None
    )


def retry_run_later(run_id: str, backoff: dt.timedelta) -> None:
    """Outside any lease (an advance that was rolled back): have the poller enqueue an active
    run again `backoff` from now, unless an executor holds its lease now (that one advances it).
    Nothing else about the run changes. Times are the database's clock."""
    WorkflowRun.objects.filter(pk=run_id, status__in=ACTIVE_STATUSES).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=db_now_expression())
    ).update(wake_at=db_now_expression(backoff), enqueued_at=None, updated_at=db_now_expression())


def cancel_run(run_id: str, reason: str) -> bool:
    """Mark an active run cancelled, taking any lease away; False if it had already finished."""
    with transaction.atomic():
        run = lock_run(run_id)
        if run.is_finished:
            return False
        cancelled, _ = sql.update(
            WorkflowRun, _ended(RunStatus.CANCELLED, None, reason), "id = %s", [run_id]
        )
        return cancelled == 1


def wake(run_id: str) -> None:
    """Make a parked run runnable at once (by the database's clock) and note that a task is
    being enqueued for it."""
    now = db_now_expression()
    WorkflowRun.objects.filter(pk=run_id, status=RunStatus.WAITING).update(
        status=RunStatus.PENDING, wake_at=now, waiting_signal="", enqueued_at=now
    )


# --- checkpoints --------------------------------------------------------------------------------


def load_history(run_id: str) -> dict[int, Recorded]:
    """The run's checkpoints by position, as the replay core reads them."""
    rows = sql.fetch_all(
        "SELECT position, name, status, result, error, attempts, deadline, kind, "
        f"unknown_attempts, unknown_since FROM {_CHECKPOINTS} WHERE run_id = %s",
        [run_id],
    )
    return {row[0]: _recorded_row(*row[1:]) for row in rows}


def _recorded_row(
    name: str,
    status: str,
    result: Any,
    error: str,
    attempts: int,
    deadline: Any,
    kind: str,
    unknown_attempts: int,
    unknown_since: Any,
) -> Recorded:
    """A row of `load_history`'s query as the replay core reads it."""
    return recorded(
        name, kind, status, sql.read_json(result), error, attempts, sql.read_datetime(deadline),
        unknown_attempts=unknown_attempts, unknown_since=sql.read_datetime(unknown_since),
    )  # fmt: skip


def recorded(
    name: str,
    kind: str,
    status: str,
    result: Any,
    error: str,
    attempts: int,
    deadline: dt.datetime | None,
    *,
    unknown_attempts: int = 0,
    unknown_since: dt.datetime | None = None,
) -> Recorded:
    """A checkpoint's columns as the replay core reads them."""
    return Recorded(
        name=name,
        done=status != CheckpointStatus.PENDING,
        result=result,
        error=_recorded_error(status, error),
        attempts=attempts,
        deadline=deadline,
        kind=kind,
        unknown_attempts=unknown_attempts,
        unknown_since=unknown_since,
    )


def _recorded_error(status: str, error: str) -> str | None:
    """A finished checkpoint's final error (None for a result), or a pending one's last."""
    if status == CheckpointStatus.PENDING:
        return error or None
    return error if status == CheckpointStatus.ERROR else None


def save_checkpoint(
    run_id: str,
    position: int,
    *,
    name: str,
    kind: str,
    status: str,
    result: Any = None,
    error: str = "",
    attempts: int = 1,
    deadline: dt.datetime | None = None,
    unknown_attempts: int = 0,
    unknown_since: dt.datetime | None = None,
) -> None:
    """Complete (or update) the checkpoint at `position`, which exists (inside a fenced
    transaction), in one plain statement; it keeps its `started_at`."""
    finished_at = None if status == CheckpointStatus.PENDING else timezone.now()
    # Plain SQL, not the ORM's upsert: building that statement cost more CPU than running it,
    # and the run's lease already makes this transaction the run's only writer.
    updated, _ = sql.update(
        StepCheckpoint,
        {
            "name": name, "kind": kind, "status": status, "result": result, "error": error,
            "attempts": attempts, "deadline": deadline, "finished_at": finished_at,
            "unknown_attempts": unknown_attempts, "unknown_since": unknown_since,
        },
        "run_id = %s AND position = %s",
        [run_id, position],
    )  # fmt: skip
    if updated != 1:
        raise RuntimeError(f"no checkpoint {run_id}#{position} to complete")


def complete_pending_checkpoint(run_id: str, position: int, result: Any) -> Any:
    """Finish a pending checkpoint with `result`, unless it was finished meanwhile (a sender that
    decided a wait's timeout); returns the result the checkpoint holds afterwards."""
    done = StepCheckpoint.objects.filter(
        run_id=run_id, position=position, status=CheckpointStatus.PENDING
    ).update(status=CheckpointStatus.DONE, result=result, finished_at=timezone.now())
    if done:
        return result
    return StepCheckpoint.objects.get(run_id=run_id, position=position).result


def insert_checkpoint(
    run_id: str,
    position: int,
    *,
    name: str,
    kind: str,
    result: Any = None,
    attempts: int = 1,
    deadline: dt.datetime | None = None,
    started_at: dt.datetime | None = None,
    status: str = CheckpointStatus.DONE,
    error: str = "",
    unknown_attempts: int = 0,
    unknown_since: dt.datetime | None = None,
) -> None:
    """Insert the checkpoint of a command that had none (inside a fenced transaction; one
    statement, the hot path): finished unless `status` is PENDING."""
    now = timezone.now()
    sql.insert(
        StepCheckpoint,
        {
            "run_id": run_id,
            "position": position,
            "name": name,
            "kind": kind,
            "status": status,
            "result": result,
            "error": error,
            "attempts": attempts,
            "deadline": deadline,
            "started_at": started_at or now,
            "finished_at": None if status == CheckpointStatus.PENDING else now,
            "unknown_attempts": unknown_attempts,
            "unknown_since": unknown_since,
        },
    )


# --- workflow signals ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignalVerdict:
    """The answer to a sent workflow signal. `accepted` means the run's wait will see it. `run`
    is the run's row as the verdict left it (woken: pending, no longer waiting; its new wake-up
    time, the database's clock, is not read back)."""

    accepted: bool
    reason: str
    run: WorkflowRun
    signal_id: int | None
    wakes_run: bool


def record_signal(run_id: str, name: str, payload: Any) -> SignalVerdict:
    """Persist a workflow signal and decide, under the run's row lock, whether it is accepted.

    Rejected when the run has finished, or when its latest wait for this signal has timed out
    (deciding that timeout here if the deadline has passed and no worker has yet). Otherwise
    accepted: the wait that is open, or the next one the workflow reaches, consumes it.
    """
    with transaction.atomic():
        run = lock_run(run_id)
        if run.is_finished:
            return _reject(run, name, payload, "run_finished")
        last_wait = (
            StepCheckpoint.objects.filter(run_id=run_id, kind="wait", name=f"wait:{name}")
            .order_by("-position")
            .first()
        )
        if last_wait is not None:
            if last_wait.status == CheckpointStatus.DONE and (last_wait.result or {}).get(
                "timed_out"
            ):
                return _reject(run, name, payload, "wait_timed_out")
            now = db_now()
            if last_wait.status == CheckpointStatus.PENDING and last_wait.deadline <= now:
                if _has_unconsumed(run_id, name):
                    # An earlier signal, accepted in time, decides this wait: not a timeout.
                    return _reject(run, name, payload, "wait_decided")
                last_wait.status = CheckpointStatus.DONE
                last_wait.result = {"timed_out": True}
                last_wait.finished_at = now
                last_wait.save(update_fields=["status", "result", "finished_at"])
                wakes = run.status == RunStatus.WAITING
                if wakes:
                    _wake_locked(run)
                return _reject(run, name, payload, "wait_timed_out", wakes_run=wakes)
        signal = WorkflowSignal.objects.create(run=run, name=name, payload=payload, accepted=True)
        wakes = run.status == RunStatus.WAITING and run.waiting_signal == name
        if wakes:
            _wake_locked(run)
        return SignalVerdict(True, "accepted", run, signal.pk, wakes)


def _wake_locked(run: WorkflowRun) -> None:
    """`wake` the run whose row this transaction locked, and its copy in memory with it."""
    wake(run.id)
    run.status, run.waiting_signal = RunStatus.PENDING, ""


def _reject(
    run: WorkflowRun, name: str, payload: Any, reason: str, *, wakes_run: bool = False
) -> SignalVerdict:
    signal = WorkflowSignal.objects.create(
        run=run, name=name, payload=payload, accepted=False, reason=reason
    )
    return SignalVerdict(False, reason, run, signal.pk, wakes_run)


def _has_unconsumed(run_id: str, name: str) -> bool:
    return WorkflowSignal.objects.filter(
        run_id=run_id, name=name, accepted=True, consumed_position__isnull=True
    ).exists()


@dataclass(frozen=True, slots=True)
class ConsumedSignal:
    pk: int
    payload: Any
    sent_at: dt.datetime


def consume_signal(run_id: str, name: str, position: int) -> ConsumedSignal | None:
    """Inside a fenced transaction: take the oldest accepted, unconsumed signal `name`."""
    rows = sql.fetch_all(
        f"SELECT id, payload, sent_at FROM {_SIGNALS} WHERE run_id = %s AND name = %s "
        "AND accepted = %s "
        "AND consumed_position IS NULL ORDER BY id LIMIT 1",
        [run_id, name, True],
    )
    if not rows:
        return None
    signal_id, payload, sent_at = rows[0]
    sql.update(
        WorkflowSignal,
        {"consumed_position": position, "consumed_at": timezone.now()},
        "id = %s",
        [signal_id],
    )
    return ConsumedSignal(signal_id, sql.read_json(payload), sql.read_datetime(sent_at))


# --- the poller ---------------------------------------------------------------------------------


def due_runs_query(redeliver_after: dt.timedelta):
    """Active runs that need a task: wake-up time come (or none), lease free or expired, and no
    task enqueued within `redeliver_after`, all by the database's clock."""
    now = db_now_expression()
    return (
        WorkflowRun.objects.filter(status__in=ACTIVE_STATUSES)
        .filter(Q(wake_at__isnull=True) | Q(wake_at__lte=now))
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .filter(
            Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=db_now_expression(-redeliver_after))
        )
    )


def mark_enqueued_if_due(run_id: str) -> None:
    """Note that a task is being enqueued for the run, only if it is due and free now (by the
    database's clock). A task for a run that is not due, or is held, finds it busy: noting it
    would make the poller skip the run for `REDELIVER_AFTER_SECONDS` once it falls due."""
    due_runs_query(dt.timedelta(0)).filter(pk=run_id).update(enqueued_at=db_now_expression())


def claim_due_runs(redeliver_after: dt.timedelta, limit: int) -> list[str]:
    """Mark up to `limit` due runs (by the database's clock) as enqueued and return their ids.
    Several pollers at once claim disjoint sets (SKIP LOCKED on PostgreSQL; SQLite serialises
    the transactions)."""
    with transaction.atomic():
        ids = list(
            due_runs_query(redeliver_after)
            .order_by("wake_at")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            WorkflowRun.objects.filter(pk__in=ids).update(enqueued_at=db_now_expression())
    return ids
