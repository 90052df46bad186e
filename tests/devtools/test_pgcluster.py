"""devtools/pgcluster.py without a cluster: what a restart excuses, and why a cluster cannot be
made here."""

from __future__ import annotations

import datetime as dt

from devtools import pgcluster

T0 = dt.datetime(2026, 11, 29, 22, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_a_run_due_while_the_database_was_away_is_late_from_its_return():
    returns = [at(5), at(20)]
    assert pgcluster.delay_after_return(at(20.3), at(12), returns) == dt.timedelta(seconds=0.3)


def test_a_run_due_after_the_return_is_late_from_its_deadline():
    returns = [at(5), at(20)]
    assert pgcluster.delay_after_return(at(25.1), at(25), returns) == dt.timedelta(seconds=0.1)


def test_a_return_after_the_run_finished_excuses_nothing():
    returns = [at(20)]
    assert pgcluster.delay_after_return(at(13), at(12), returns) == dt.timedelta(seconds=1)


def test_without_root_no_cluster_is_made(monkeypatch):
    monkeypatch.setattr(pgcluster.os, "geteuid", lambda: 1000)
    assert pgcluster.unavailable().startswith("needs root")


def test_without_postgresql_common_no_cluster_is_made(monkeypatch):
    monkeypatch.setattr(pgcluster.os, "geteuid", lambda: 0)
    monkeypatch.setattr(pgcluster.shutil, "which", lambda program, path: None)
    assert "pg_createcluster is not installed" in pgcluster.unavailable()
