"""Settings from the environment: the proxy header is trusted only when configured, the dev
server listens on loopback only, and directories the processes share must be writable."""

from __future__ import annotations

import socket

import pytest
from django.test import RequestFactory

from devtools.ports import free_port
from devtools.processes import running, wait_for_http, web
from tests.support.environment import process_env
from tests.support.manage import run_manage

PRINT_HEADER = "from django.conf import settings; print(repr(settings.SECURE_PROXY_SSL_HEADER))"
PRODUCTION = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "k" * 60}


def test_a_client_cannot_claim_https_by_default(settings):
    assert settings.SECURE_PROXY_SSL_HEADER is None
    request = RequestFactory().get("/", HTTP_X_FORWARDED_PROTO="https")
    assert not request.is_secure()


@pytest.mark.parametrize(
    ("trust", "expected"),
    [("", "None"), ("false", "None"), ("true", "('HTTP_X_FORWARDED_PROTO', 'https')")],
)
def test_the_proxy_header_is_trusted_only_when_the_environment_says_so(trust, expected):
    result = run_manage(
        "shell", "-c", PRINT_HEADER,
        env_overrides={**PRODUCTION, "DJANGO_TRUST_X_FORWARDED_PROTO": trust},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("bind", "reachable_off_loopback"), [(None, False), ("0.0.0.0", True)])
def test_the_dev_server_binds_loopback_unless_host_says_otherwise(bind, reachable_off_loopback):
    # 127.0.0.2 reaches a server bound to every address (0.0.0.0), not one bound to 127.0.0.1.
    port = free_port()
    env = process_env(DJANGO_DEBUG="true")
    env.pop("HOST", None)
    if bind:
        env["HOST"] = bind
    with running(web(env, port, name="web-dev")) as (server,):
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert _answers("127.0.0.2", port) is reachable_off_loopback, server.log()


def test_an_unwritable_metrics_directory_stops_the_start_with_a_clear_message(tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    result = run_manage(
        "check", env_overrides={**PRODUCTION, "PROMETHEUS_MULTIPROC_DIR": str(blocked / "m")}
    )
    assert result.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR: cannot create" in result.stderr


PRINT_BROKER = "from django.conf import settings; print(settings.Q_CLUSTER['broker_class'])"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("", "durable.transport.broker.PromptORMBroker"),
        ("prompt", "durable.transport.broker.PromptORMBroker"),
        ("stock", "django_q.brokers.orm.ORM"),
    ],
)
def test_durable_broker_chooses_the_broker_of_the_database_queue(choice, expected):
    result = run_manage(
        "shell", "-c", PRINT_BROKER,
        env_overrides={**PRODUCTION, "DURABLE_BROKER": choice, "REDIS_URL": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def test_an_unknown_durable_broker_stops_the_start():
    result = run_manage("check", env_overrides={**PRODUCTION, "DURABLE_BROKER": "fast"})
    assert result.returncode != 0
    assert "DURABLE_BROKER must be 'prompt' or 'stock', got 'fast'" in result.stderr
