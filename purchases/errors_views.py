"""Project-wide 404/500 handlers: JSON under /api/, a plain page elsewhere; never a traceback."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"status": "not_found", "detail": "Not found."}, status=404)
    return render(request, "errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"detail": "Internal server error.", "code": "internal_error"}, status=500
        )
    # No request context: a 500 may come from the database itself being down.
    return HttpResponse(loader.render_to_string("errors/500.html"), status=500)
