"""GET /metrics: every process's figures (prometheus_client's multiprocess files) plus the
engine's, read from the database, for staff or a holder of METRICS_TOKEN."""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.registry import REGISTRY

from durable.ops.collector import EngineCollector


def _allowed(request: HttpRequest) -> bool | None:
    """True for staff or the right bearer token, False for a wrong token, None otherwise."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = settings.METRICS_TOKEN
        return bool(token) and hmac.compare_digest(header[7:].encode(), token.encode())
    user = getattr(request, "user", None)
    return True if user is not None and user.is_active and user.is_staff else None


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format. Staff (signed in) or `Authorization: Bearer $METRICS_TOKEN`;
    a wrong token is 403, anything else 404, so the endpoint does not show itself."""
    allowed = _allowed(request)
    if not allowed:
        return HttpResponse(status=403 if allowed is False else 404)
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:  # one process: its own figures
        registry = REGISTRY
    output = generate_latest(registry)
    engine = CollectorRegistry()
    engine.register(EngineCollector())
    return HttpResponse(output + generate_latest(engine), content_type=CONTENT_TYPE_LATEST)
