"""The JSON API fuzzed from its own OpenAPI schema (schemathesis), in-process through WSGI.

Guarantees checked for every generated request on every operation, schema-valid or not: no 5xx;
the status code, content type, headers and body conform to what /api/schema/ declares; requests
the schema forbids are refused with a 4xx; requests it allows are accepted.

schemathesis' pytest loader (`schemathesis.pytest.from_fixture`) reads `Node._nodeid`, which
pytest 9 no longer has, so the test drives schemathesis' Hypothesis strategies itself.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from purchases import services
from purchases.models import Product

USERNAME = "fuzzer"
PASSWORD = "fuzz-password-123"
BASIC = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
OPERATIONS = [
    ("GET", "/api/"),
    ("POST", "/api/buy/{key}"),
    ("POST", "/api/cancel/{key}"),
    ("GET", "/api/status/{key}"),
    ("GET", "/api/purchases/"),
    ("GET", "/api/payment-method"),
    ("PUT", "/api/payment-method"),
]
EXAMPLES_PER_RUN = 100


@pytest.fixture
def api_schema(db: None, settings: Any, django_user_model: Any) -> Iterator[Any]:
    # PBKDF2's million rounds would make every generated request cost a quarter of a second;
    # the hasher is not what this test is about.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = django_user_model.objects.create_user(username=USERNAME, password=PASSWORD)
    services.save_payment_method(user, "pm_card_visa")
    Product.objects.create(item_id="widget-001", name="Widget", price="9.99", stock=1000)
    Product.objects.create(item_id="gone-002", name="Gone", price="1.00", stock=0)
    # As Django's test client does: the real WSGI handler would otherwise close the connection
    # that holds the test's transaction at the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_schema_lists_every_api_operation(api_schema: Any) -> None:
    found = {(op.method.upper(), op.path) for op in _operations(api_schema)}
    assert found == set(OPERATIONS)


# The API root and reading the saved card take no input: there is no invalid request to
# generate for them.
NO_INPUT = {("GET", "/api/"), ("GET", "/api/payment-method")}
FUZZED = [
    (method, path, mode)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    for method, path in OPERATIONS
    if not ((method, path) in NO_INPUT and mode == GenerationMode.NEGATIVE)
]


@pytest.mark.parametrize(("method", "path", "mode"), FUZZED)
def test_api_conforms_to_its_schema(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    # A schema-valid item id that names no product is a business 400 ("unknown item"), and a
    # schema-valid PaymentMethod id that the provider does not know one too ("refused"), which
    # the schema cannot express; every other check stays on for buy and for saving a card.
    business_400 = {"/api/buy/{key}", "/api/payment-method"}
    excluded = [positive_data_acceptance] if path in business_400 else []

    @given(case=operation.as_strategy(mode))
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_RUN,
        deadline=None,
        database=None,
        # The fixture's user and catalog are meant to be shared by every example.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": BASIC}, excluded_checks=excluded)

    fuzz()


def _operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]
