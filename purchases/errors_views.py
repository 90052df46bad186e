"""Project-wide error answers: JSON under /api/, a plain page elsewhere; never a traceback."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


@csrf_exempt  # also the catch-all of /api/: an unknown path is a 404 whatever the method
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: `{"status": "not_found"}` under /api/, the shop's page elsewhere."""
    if _wants_json(request):
        return JsonResponse({"status": "not_found", "detail": "Not found."}, status=404)
    return render(request, "errors/404.html", status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400 for a request Django refused before any view (a Host not allowed, a bad cookie)."""
    if _wants_json(request):
        return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form post whose CSRF check failed: JSON under /api/, Django's answer elsewhere (the
    shop's "please try again" page, templates/403_csrf.html)."""
    if _wants_json(request):
        return JsonResponse(
            {"detail": "CSRF check failed: send the CSRF token.", "code": "csrf_failed"},
            status=403,
        )
    return csrf.csrf_failure(request, reason)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: `{"code": "internal_error"}` under /api/, a plain page elsewhere."""
    if _wants_json(request):
        return JsonResponse(
            {"detail": "Internal server error.", "code": "internal_error"}, status=500
        )
    # No request context: a 500 may come from the database itself being down.
    return HttpResponse(loader.render_to_string("errors/500.html"), status=500)
