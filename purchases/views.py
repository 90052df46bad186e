"""Storefront pages (placeholder until the storefront lands)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


@login_required
def catalog(request: HttpRequest) -> HttpResponse:
    return HttpResponse("catalog")
