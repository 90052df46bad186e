"""/readyz sees real pollers and django-q2 workers in other processes, and notices one dying."""

from __future__ import annotations

import signal
import uuid

import pytest
from django.test import override_settings

from devtools.processes import poller, running, wait_until, worker
from tests.support.environment import process_env

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]


def test_readyz_follows_the_heartbeats_of_a_real_poller_and_worker(client, settings):
    # The ORM broker: django-q2's own cluster status would be invisible to this process here.
    env = process_env(
        REDIS_URL="", Q_CLUSTER_NAME=f"ops-ready-{uuid.uuid4().hex[:8]}",
        DURABLE_HEARTBEAT_SECONDS="0.5",
    )  # fmt: skip
    cluster, the_poller = worker(env), poller(env)
    with (
        override_settings(DURABLE={**settings.DURABLE, "HEALTH_STALE_SECONDS": 4}),
        running(cluster, the_poller),
    ):

        def ready() -> bool:
            return client.get("/readyz").status_code == 200

        wait_until(ready, 90, 0.2, message=cluster.log() + the_poller.log())
        body = client.get("/readyz").json()
        assert body["pollers"]["alive"] == 1 and body["workers"]["alive"] >= 1

        cluster.kill(signal.SIGKILL)
        wait_until(lambda: not ready(), 60, 0.2, message="readyz stayed ok without a worker")
        body = client.get("/readyz").json()
        assert body["detail"] == "no django-q2 worker seen in the last 4s"
        assert body["pollers"]["alive"] == 1

        cluster.start()
        wait_until(ready, 90, 0.2, message=cluster.log())
        the_poller.kill(signal.SIGKILL)
        wait_until(lambda: not ready(), 60, 0.2, message="readyz stayed ok without a poller")

        # The worker's heartbeat may go stale first: probes come from the poller, and a poller
        # killed between writing its heartbeat and sending the next probe leaves the worker's
        # last heartbeat the older one. Within HEALTH_STALE_SECONDS the poller is named too.
        def names_the_poller() -> bool:
            return "no durable poller seen" in client.get("/readyz").json().get("detail", "")

        wait_until(names_the_poller, 30, 0.2, message="readyz never named the missing poller")
