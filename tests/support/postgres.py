"""The tests' own PostgreSQL cluster on port 5499 (devtools/pgcluster.py), that a test may
restart (the shared one on 5432 is never touched), and databases on it for real processes."""

from __future__ import annotations

from devtools import databases
from devtools.pgcluster import PrivateCluster
from tests.support.services import require_program, require_root

CLUSTER = PrivateCluster("oneclick_restart", 5499)


def restartable_cluster() -> str:
    """The private cluster (created the first time, trust authentication, started if down);
    returns the URL of its `postgres` database."""
    require_root("creating and restarting a PostgreSQL cluster of the test's own")
    require_program("pg_createcluster", "postgresql-common")
    return CLUSTER.up()


def fresh_database(name: str, env: dict[str, str]) -> str:
    """An empty database `name` on the private cluster, migrated; returns its URL."""
    url = CLUSTER.create_database(name)
    databases.migrate(url, env)
    return url
