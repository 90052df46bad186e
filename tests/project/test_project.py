"""The project starts, its migrations apply, and it passes Django's deployment checks."""

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from devtools.ports import free_port
from devtools.processes import running, wait_for_http, web
from tests.support.environment import process_env
from tests.support.manage import run_manage

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_migrations_applied_and_none_missing():
    tables = set(connection.introspection.table_names())
    assert {"durable_workflowrun", "durable_stepcheckpoint", "durable_workflowsignal"} <= tables
    assert {"purchases_product", "purchases_purchase", "purchases_order"} <= tables
    # No model change is left without its migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_check_deploy_passes_with_production_settings():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env_overrides={
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x9Zq" * 12,
            "DJANGO_ALLOWED_HOSTS": "shop.example.com",
            "DJANGO_SECURE_SSL_REDIRECT": "true",
        },
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env={**env, "DJANGO_DEBUG": "false"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_the_database_in_use_is_the_one_ci_asked_for():
    expected = (
        "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    )
    assert connection.vendor == expected


@pytest.mark.django_db
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="prepared statements are PostgreSQL's (SQLite compiles statements in process)",
)
def test_on_postgresql_a_statement_run_again_is_prepared_not_parsed_again():
    from purchases.models import Product

    def prepared() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return {row[0] for row in cursor.fetchall()}

    before = prepared()
    for item in ("a", "b"):  # the same statement with other parameters
        list(Product.objects.filter(item_id=item))
    added = prepared() - before
    assert any('"purchases_product"' in statement for statement in added), added


@pytest.mark.crash
@pytest.mark.django_db(transaction=True)
def test_the_production_web_process_serves_pages_and_static_files():
    port = free_port()
    with running(web(process_env(DJANGO_ALLOWED_HOSTS="127.0.0.1"), port)) as (server,):
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as page:
            html = page.read().decode()
        assert page.status == 200, server.log()
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', html)
        assert stylesheet, html
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{stylesheet.group(1)}") as css:
            assert css.status == 200 and len(css.read()) > 100
