"""Run oneclick's benchmarks and write the run's report to bench/runs/: `make bench`.

Each benchmark runs in its own process (python -m bench.lib.child) with its own fresh database
(a temporary SQLite file, or bench_<name> on PostgreSQL at 127.0.0.1:5432, user postgres),
migrated with manage.py, and the Procfile's real processes (gunicorn via bin/web, qcluster with
Q_WORKERS=2, durable_poller) started and killed (whole process groups) by it. Traffic goes to
127.0.0.1 only; every loop has a count and a time limit.

    .venv/bin/python bench/run_all.py                  # everything, both databases (long)
    .venv/bin/python bench/run_all.py --quick          # reduced sizes, to check the harness
    .venv/bin/python bench/run_all.py --only signal,http --db postgres
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lib import machine, report  # noqa: E402
from bench.lib.child import BENCHMARKS  # noqa: E402
from bench.lib.results import BenchResult  # noqa: E402
from bench.lib.stats import fmt  # noqa: E402

OUT = ROOT / "bench" / "out"
ORDER = [
    "throughput",
    "statements",
    "profile",
    "waiting",
    "signal",
    "http",
    "recovery",
    "dbos",
    "httppeers",
    "slowsteps",
]
TIME_LIMIT = {False: 4 * 3600, True: 1200}  # per benchmark, full / quick


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced counts: checks the harness")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 2)")
    parser.add_argument("--note", default="", help="a sentence for the top of the report")
    parser.add_argument(
        "--render",
        metavar="STAMP",
        default="",
        help="run nothing: write the report again from bench/out/STAMP-*.json",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="default bench/runs/<date>-<time>.md; with --quick bench/out/<stamp>-quick.md",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or ORDER
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {ORDER}")
    args.names = [n for n in ORDER if n in names]
    if args.rounds is None:
        args.rounds = 2 if args.quick else 3
    return args


def _postgres_reachable() -> bool:
    from bench.lib.database import pg_admin

    try:
        with pg_admin():
            return True
    except Exception as exc:  # any failure to connect means: skip PostgreSQL
        print(f"PostgreSQL is not reachable ({exc}); its benchmarks are skipped", flush=True)
        return False


def _run_child(name: str, db: str, args: argparse.Namespace, stamp: str, log: Path) -> Path:
    result = OUT / f"{stamp}-{name}-{db}.json"
    argv = [
        sys.executable,
        "-u",
        "-m",
        "bench.lib.child",
        "--bench",
        name,
        "--db",
        db,
        "--out",
        str(result),
        "--log-dir",
        str(OUT / f"logs-{stamp}"),
        "--rounds",
        str(args.rounds),
    ] + (["--quick"] if args.quick else [])
    with (
        log.open("a") as sink,
        subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        ) as child,
    ):
        assert child.stdout is not None
        deadline = time.monotonic() + TIME_LIMIT[args.quick]
        for line in child.stdout:
            print(line, end="", flush=True)
            sink.write(line)
            if time.monotonic() > deadline:
                print(f"{name}/{db}: time limit reached, stopping it", flush=True)
                child.kill()
                break
        child.wait()
    return result


def _write_report(stamp: str, output: Path) -> None:
    """The report of run `stamp` from its saved results and metadata (what the run printed)."""
    meta = json.loads((OUT / f"{stamp}-run.json").read_text())
    results = [
        BenchResult.load(OUT / f"{stamp}-{name}-{db}.json")
        for name in meta["names"]
        for db in meta["dbs"]
        if (OUT / f"{stamp}-{name}-{db}.json").exists()
    ]
    text = report.render(
        results,
        meta["machine"],
        command=meta["command"],
        quick=meta["quick"],
        note=meta["note"],
        load_samples=meta["loads"],
        minutes=meta["minutes"],
    )
    report.write(output, text)
    print("medians over the rounds [min..max] (n rounds), as written to the report:")
    for res in results:
        for fig in res.figures:
            print(
                f"  {res.bench}/{res.db} {fig.name}: {fmt(fig.median)} "
                f"[{fig.low()}..{fig.high()}] (n={len(fig.rounds)}) {fig.unit} {fig.met()}"
            )
    print(f"wrote {output} ({len(results)} result(s))", flush=True)


def _report_path(stamp: str, quick: bool) -> Path:
    """Where run `stamp`'s report goes: a measured run's in bench/runs/ (named by its date and
    time, as bench/RESULTS.md's history links it), a quick run's (which checks the harness and
    measures nothing) in bench/out/."""
    if quick:
        return OUT / f"{stamp}-quick.md"
    day, clock = stamp.split("-")
    return ROOT / "bench" / "runs" / f"{day[:4]}-{day[4:6]}-{day[6:]}-{clock}.md"


def main() -> int:
    args = _parse()
    if args.render:
        _write_report(args.render, args.output or _report_path(args.render, args.quick))
        return 0
    if importlib.util.find_spec("pyinstrument") is None:
        print(
            "note: pyinstrument is not installed, so the profile is skipped; install it with\n"
            "  .venv/bin/pip install -r bench/requirements.txt",
            flush=True,
        )
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in dbs and not _postgres_reachable():
        dbs.remove("postgres")
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = OUT / f"run-{stamp}.log"
    info = machine.describe()
    if "postgres" in dbs:
        from bench.lib.database import pg_admin

        rtt = machine.pg_round_trip_ms(pg_admin)
        info["speed today: PostgreSQL SELECT 1 round trip, p50"] = f"{rtt:.3f} ms"
    command = shlex.join([".venv/bin/python", "bench/run_all.py", *sys.argv[1:]])
    print(f"{command}\nmachine: {info}\nlog: {log}", flush=True)
    began = time.monotonic()
    loads = [machine.load_average().split()[0]]
    failed = False
    for name in args.names:
        for db in dbs:
            path = _run_child(name, db, args, stamp, log)
            loads.append(machine.load_average().split()[0])
            if path.exists():
                failed |= bool(BenchResult.load(path).error)
            else:
                failed = True
                print(f"{name}/{db}: no result (crashed or stopped)", flush=True)
    info["load average at the end (1/5/15 min)"] = machine.load_average()
    meta = {
        "command": command,
        "machine": info,
        "quick": args.quick,
        "note": args.note,
        "loads": loads,
        "minutes": (time.monotonic() - began) / 60,
        "names": args.names,
        "dbs": dbs,
    }
    (OUT / f"{stamp}-run.json").write_text(json.dumps(meta, indent=1))
    _write_report(stamp, args.output or _report_path(stamp, args.quick))
    print(f"log {log}; re-render with --render {stamp}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
