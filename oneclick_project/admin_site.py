"""The admin site: Django's, with its sign-in behind the per-address lockout of every sign-in."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from purchases.signin import LockoutAdminAuthenticationForm, answer_lockout


class OneclickAdminSite(admin.AdminSite):
    """A locked-out address is answered 429 with Retry-After and no password is hashed."""

    login_form = LockoutAdminAuthenticationForm

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().login(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        return answer_lockout(response, context.get("form"))
