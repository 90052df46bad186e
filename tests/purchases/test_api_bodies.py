"""Bodies the API cannot read are 400s naming the `field` (README, HTTP API), never a 500 with a
traceback in the log: here, JSON nested deeper than the API reads (issue 29, item 5)."""

from __future__ import annotations

import logging

import pytest

from purchases.parsers import MAX_JSON_DEPTH

pytestmark = pytest.mark.django_db(transaction=True)

PAST_THE_LIMIT = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
DEEP_BODIES = {
    "arrays": "[" * 20000 + "]" * 20000,
    "objects": '{"a":' * 9000,
    "just past the limit": f'{{"item_id": "widget-001", "x": {PAST_THE_LIMIT}}}',
}


@pytest.mark.parametrize("body", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_deeply_nested_json_is_a_400_naming_the_field_and_logs_no_error(api, product, body, caplog):
    with caplog.at_level(logging.DEBUG):
        response = api.post("/api/buy/deep-1", body, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response["Content-Type"] == "application/json"
    assert response.json()["field"] == "item_id"
    assert "nested deeper" in response.json()["detail"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert not product.purchases.exists()


def test_nesting_up_to_the_limit_is_read(api, product):
    inner = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    body = f'{{"item_id": "widget-001", "note": "[[[{{{{", "x": {inner}}}'
    response = api.post("/api/buy/deep-2", body, content_type="application/json")
    assert response.status_code == 202, response.content[:200]
