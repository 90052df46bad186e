"""Mutation check: break one guarantee at a time in a scratch copy and run the tests that must
notice. Every mutant must be killed (its tests fail) on each database it is listed for.

    make mutants                                # every mutant
    .venv/bin/python tests/mutants.py M1 M7     # some of them; --db sqlite|postgres: one database
    .venv/bin/python tests/mutants.py --list    # the table of mutants, without running anything

The working tree is never modified: each mutant is applied to a copy of the repository's files
(tracked and untracked, as they are now) in a temporary folder. A mutant whose text is not found
exactly once fails the run ("mutant M1: text not found"), so a change to the mutated code is
noticed rather than silently reported as killed. Before the mutants, the same tests run on the
unmutated copy: a test that fails there would kill every mutant without meaning it.

PostgreSQL: MUTANTS_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/oneclick); each
run uses its own test database (test_mutants_<pid>).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SQLITE, POSTGRES = "sqlite", "postgres"


@dataclass(frozen=True, slots=True)
class Mutant:
    """One deliberate bug: in `file`, each `(text, replacement)` of `edits`, and in other files
    each `(file, text, replacement)` of `elsewhere` (each text must occur exactly once in its
    file); `tests` must fail because of it on every database of `databases`."""

    name: str
    what: str
    file: str
    edits: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]
    databases: tuple[str, ...] = (SQLITE, POSTGRES)
    elsewhere: tuple[tuple[str, str, str], ...] = ()

    def by_file(self) -> dict[str, list[tuple[str, str]]]:
        """The edits grouped by the file they are made in."""
        files: dict[str, list[tuple[str, str]]] = {self.file: list(self.edits)}
        for file, text, replacement in self.elsewhere:
            files.setdefault(file, []).append((text, replacement))
        return files


# To add a mutant: one entry, with the exact text as it is in the file (copy it from there).
MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "M1",
        "services.cancel without the purchase row lock",
        "purchases/services.py",
        (
            (
                "Purchase.objects.select_for_update(no_key=True).filter(pk=purchase.pk).exists()",
                "Purchase.objects.filter(pk=purchase.pk).exists()",
            ),
        ),
        ("tests/chaos/test_cancel_race.py",),
        # SQLite's writers queue for the database's write lock anyway.
        (POSTGRES,),
    ),
    Mutant(
        "M2",
        "record_signal decides the timeout with < instead of <= at the deadline",
        "durable/persistence/store.py",
        (
            (
                "last_wait.status == CheckpointStatus.PENDING and last_wait.deadline <= now:",
                "last_wait.status == CheckpointStatus.PENDING and last_wait.deadline < now:",
            ),
        ),
        ("tests/durable/test_deadlines.py",),
    ),
    Mutant(
        "M3",
        "record_signal no longer lets an earlier accepted signal decide the wait",
        "durable/persistence/store.py",
        (("                if _has_unconsumed(run_id, name):", "                if False:"),),
        ("tests/durable/test_engine.py",),
    ),
    Mutant(
        "M4",
        "finishing or suspending a run without checking the lease owner (no fence)",
        "durable/persistence/store.py",
        (
            (
                '"id = %s AND lease_owner = %s AND status = %s",\n'
                "        [run_id, owner, str(RunStatus.RUNNING)],",
                '"id = %s AND status = %s",\n        [run_id, str(RunStatus.RUNNING)],',
            ),
            (
                '_ended(status, result, error), "id = %s AND lease_owner = %s", [run_id, owner]',
                '_ended(status, result, error), "id = %s", [run_id]',
            ),
            (  # suspend_run (the one multi-line update stamped with the database's clock)
                '"updated_at": sql.DatabaseClock(),\n'
                "        },\n"
                '        "id = %s AND lease_owner = %s",\n'
                "        [run_id, owner],",
                '"updated_at": sql.DatabaseClock(),\n        },\n'
                '        "id = %s",\n        [run_id],',
            ),
        ),
        ("tests/durable/test_engine.py",),
    ),
    Mutant(
        "M5",
        "the executor reads workflow signals before taking the lease",
        "durable/runtime/run_transaction.py",
        (
            (
                "        if self._group.is_open:\n            # Earlier runs' writes",
                "        self._signals_seen = store.WorkflowSignal.objects.filter(\n"
                "            run_id=self.run_id, accepted=True, consumed_position__isnull=True\n"
                "        ).exists()\n"
                "        if self._group.is_open:\n            # Earlier runs' writes",
            ),
        ),
        ("tests/durable/test_engine.py",),
        elsewhere=(
            (
                "durable/runtime/handlers/waits.py",
                "    signal = store.consume_signal(tx.run_id, command.signal, live.position)",
                "    signal = (\n"
                "        store.consume_signal(tx.run_id, command.signal, live.position)\n"
                "        if getattr(tx, '_signals_seen', True)\n"
                "        else None\n"
                "    )",
            ),
        ),
    ),
    Mutant(
        "M6",
        "a wait treated as timed out 100 ms before its deadline",
        "durable/runtime/handlers/waits.py",
        (
            (
                "elif deadline is not None and now >= deadline:",
                "elif deadline is not None and now >= deadline - dt.timedelta(milliseconds=100):",
            ),
        ),
        ("tests/durable/test_deadlines.py",),
    ),
    Mutant(
        "M7",
        "checkout without the stock >= 1 condition",
        "purchases/services.py",
        (("SET stock = stock - 1 WHERE stock >= 1 ", "SET stock = stock - 1 WHERE 1 = 1 "),),
        ("tests/purchases/test_races.py",),
    ),
    Mutant(
        "M8",
        "buy without the user-and-key uniqueness fallback (IntegrityError, RunConflict)",
        "purchases/services.py",
        (("    except (IntegrityError, durable.RunConflict):", "    except ():"),),
        ("tests/purchases/test_races.py",),
    ),
    Mutant(
        "M9",
        "a run whose history the code no longer replays fails instead of being blocked",
        "durable/runtime/executor.py",
        (
            (
                "blocked_runs.block(\n"
                "            run_id, tx.owner, leased.workflow, BlockedKind.CANNOT_REPLAY, "
                "str(outcome.error)\n"
                "        )\n"
                "        return AdvanceOutcome.BLOCKED",
                "store.finish_run(run_id, tx.owner, RunStatus.FAILED, None, str(outcome.error))"
                "\n        return AdvanceOutcome.FINISHED",
            ),
        ),
        ("tests/durable/test_deploy.py", "tests/purchases/test_blocked.py"),
    ),
    Mutant(
        "M10",
        "whether a run is due is judged by the process's clock instead of the database's",
        "durable/persistence/store.py",
        (
            (  # the poller's claim
                "    now = db_now_expression()\n    return (",
                "    now = Value(timezone.now(), output_field=DateTimeField())\n    return (",
            ),
            (  # the worker's lease
                'when, when_params = f"(wake_at IS NULL OR wake_at <= {clock})", '
                "list(clock_params)",
                'when, when_params = "(wake_at IS NULL OR wake_at <= %s)", '
                '[sql.prep(WorkflowRun, "wake_at", timezone.now())]',
            ),
        ),
        ("tests/ops/test_clock_skew.py",),
        # SQLite serves one machine, whose processes share one clock.
        (POSTGRES,),
    ),
    Mutant(
        "M11",
        "batch tasks (runs woken together) are not recognised as the engine's",
        "durable/transport/dispatch.py",
        (
            (
                "ENGINE_TASK_PATHS = frozenset((TASK_PATH, BATCH_TASK_PATH))",
                "ENGINE_TASK_PATHS = frozenset((TASK_PATH,))",
            ),
        ),
        ("tests/durable/test_tasks.py",),
    ),
    Mutant(
        "M12",
        "the engine's shortcuts through django-q2's internals are taken with its stock broker too",
        "durable/transport/taskqueue.py",
        (
            (
                '    return bool(getattr(current, "supports_engine_shortcuts", False))',
                "    return True",
            ),
        ),
        ("tests/durable/test_tasks.py",),
    ),
    Mutant(
        "M13",
        "a worker's step pool starts calls beyond its limit",
        "durable/runtime/step_pool.py",
        (("                if self._slots_taken < self.limit:", "                if True:"),),
        (
            "tests/durable/test_step_pool.py::test_a_worker_never_has_more_calls_in_flight_than_its_limit",
        ),
    ),
    Mutant(
        "M14",
        "the step pool keeps its calls by lease owner (a run's next call loses its renewal)",
        "durable/runtime/step_pool.py",
        (
            (
                "            self._calls[id(call)] = call",
                "            self._calls[call.owner] = call",
            ),
            (
                "                self._calls.pop(id(call), None)",
                "                self._calls.pop(call.owner, None)",
            ),
            (
                "            calls = [call for call in calls if id(call) in self._calls]",
                "            calls = [call for call in calls if call.owner in self._calls]",
            ),
        ),
        (
            "tests/durable/test_step_pool.py::"
            "test_a_runs_next_call_keeps_its_lease_past_several_lease_lengths",
        ),
    ),
    Mutant(
        "M15",
        "the charge is asked without the step's idempotency key (a retry after a kill pays again)",
        "purchases/payments.py",
        (('options={"idempotency_key": key}', "options={}"),),
        (
            "tests/purchases/test_payment_processes.py::"
            "test_workers_killed_while_charges_are_in_flight_charge_each_confirmed_purchase_once",
        ),
    ),
    Mutant(
        "M16",
        "the checkpoints handed to the completer miss those written live (a step ran again)",
        "durable/runtime/run_transaction.py",
        (
            (
                "        if self.history is not None:\n"
                "            self.history[position] = recorded",
                "        pass",
            ),
        ),
        (
            "tests/durable/test_step_pool_answers.py::"
            "test_the_completer_replays_from_the_checkpoints_the_advance_wrote_without_reading_them",
        ),
    ),
    Mutant(
        "M17",
        "the renewer calls a lease lost that the recording of its answer released",
        "durable/runtime/step_pool.py",
        (
            (
                "            elif not call.lost and not call.recording:",
                "            elif not call.lost:",
            ),
        ),
        (
            "tests/durable/test_step_pool_answers.py::"
            "test_a_run_ended_by_its_answer_is_not_called_lost_before_its_call_is_settled",
        ),
    ),
)


def mutated(mutant: Mutant, tree: Path) -> dict[str, str]:
    """The mutant's files in `tree` with its edits made, by path; exits loudly if a text is not
    there exactly once (the code changed: the mutant must be brought up to date, not skipped)."""
    sources = {}
    for file, edits in mutant.by_file().items():
        source = (tree / file).read_text()
        for text, replacement in edits:
            found = source.count(text)
            if found != 1:
                how = "text not found" if found == 0 else f"text found {found} times"
                sys.exit(f"mutant {mutant.name}: {how} in {file}:\n{text}")
            source = source.replace(text, replacement)
        sources[file] = source
    return sources


def copy_of_the_repository(into: Path) -> Path:
    """The repository's files as they are now (tracked and untracked, not ignored) under `into`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()  # fmt: skip
    tree = into / "oneclick"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return tree


def run_tests(tree: Path, tests: tuple[str, ...], database: str, tag: str) -> tuple[int, str]:
    """pytest on `tests` in `tree` against `database`: its exit status and its last lines (with
    the FAILED line naming the test that failed)."""
    env = dict(os.environ)
    env["ONECLICK_TEST_SQLITE_PATH"] = str(tree.parent / f"test-{tag}.sqlite3")
    env["ONECLICK_TEST_DB_NAME"] = f"test_mutants_{os.getpid()}"
    env.pop("DATABASE_URL", None)
    if database == POSTGRES:
        env["DATABASE_URL"] = os.environ.get(
            "MUTANTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/oneclick"
        )
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
    return done.returncode, tail


def first_failure(tail: str) -> str:
    """The `FAILED test - reason` line of pytest's summary, shortened."""
    failed = [line for line in tail.splitlines() if line.startswith("FAILED ")]
    return failed[0][:160] if failed else "(no FAILED line: see pytest's output)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--db", choices=[SQLITE, POSTGRES], help="only this database")
    args = parser.parse_args()
    known = {mutant.name: mutant for mutant in MUTANTS}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown mutants: {', '.join(unknown)}")
    chosen = [known[name] for name in args.names] or list(MUTANTS)
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name}  {'+'.join(mutant.databases):16} {mutant.what}")
        return 0
    with tempfile.TemporaryDirectory(prefix="oneclick-mutants-") as scratch:
        # One snapshot: edits made while the mutants run do not leak into later ones.
        pristine = copy_of_the_repository(Path(scratch) / "pristine")
        for mutant in chosen:  # every text is there before anything runs
            mutated(mutant, pristine)
        rows: list[tuple[str, str, str, str]] = []
        failed = False
        started = time.monotonic()
        for database in (SQLITE, POSTGRES):
            if args.db and database != args.db:
                continue
            selected = [mutant for mutant in chosen if database in mutant.databases]
            tests = tuple(sorted({test for mutant in selected for test in mutant.tests}))
            if not tests:
                continue
            status, tail = run_tests(pristine, tests, database, f"baseline-{database}")
            if status != 0:
                print(f"the unmutated tests fail on {database}:\n{tail}", file=sys.stderr)
                return 2
            for mutant in selected:
                tree = Path(scratch) / f"{mutant.name}-{database}" / "oneclick"
                shutil.copytree(pristine, tree)
                for file, source in mutated(mutant, tree).items():
                    (tree / file).write_text(source)
                began = time.monotonic()
                status, tail = run_tests(tree, mutant.tests, database, f"{mutant.name}-{database}")
                seconds = f"{time.monotonic() - began:.0f}s"
                if status == 1:
                    verdict, detail = "killed", first_failure(tail)
                else:
                    verdict = "SURVIVED" if status == 0 else f"ERROR (pytest exit {status})"
                    detail, failed = tail, True
                rows.append((mutant.name, database, verdict, seconds))
                print(f"{mutant.name} {database}: {verdict} ({seconds})\n    {detail}", flush=True)
                shutil.rmtree(tree.parent, ignore_errors=True)
        print(f"\n{'mutant':6} {'database':9} {'verdict':10} {'time':>5}  what")
        for name, database, verdict, seconds in rows:
            print(f"{name:6} {database:9} {verdict:10} {seconds:>5}  {known[name].what}")
        print(f"\n{len(rows)} runs in {time.monotonic() - started:.0f}s; ", end="")
        print("some mutants SURVIVED" if failed else "every mutant killed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
