"""One lockout for every way to sign in: the shop's sign-in page, the admin's, HTTP Basic.

Failed sign-ins are counted per client address (purchases.throttling.FailedAuthenticationThrottle,
the `auth_failure` rate). The count is kept, and enforced, in the authentication backend that
every sign-in goes through (django.contrib.auth.authenticate with the request): an address over
its limit is refused there before any password is hashed, whatever path called it. The sign-in
forms check the same count first, to answer 429 with Retry-After rather than "wrong password".
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse

from purchases.throttling import FailedAuthenticationThrottle

LOCKED_OUT = "locked_out"
LOCKED_OUT_MESSAGE = "Too many failed sign-ins from here. Please try again in %(seconds)s seconds."


def seconds_locked_out(request: Any) -> int:
    """0 if the request's address may try a password; else the whole seconds until it may."""
    lockout = FailedAuthenticationThrottle()
    if not lockout.over_limit(request):
        return 0
    return max(1, math.ceil(lockout.wait() or 1))


class LockoutBackend(ModelBackend):
    """Django's username and password backend, behind the per-address lockout: a locked-out
    address is refused before the password is hashed; a failed check counts against it."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None:  # not a sign-in over HTTP (a shell, a test's client.login)
            return super().authenticate(request, username, password, **kwargs)
        lockout = FailedAuthenticationThrottle()
        if lockout.over_limit(request):
            # authenticate() stops at PermissionDenied: no other backend is asked either.
            raise PermissionDenied("too many failed sign-ins from this address")
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            lockout.record_failure(request)
        return user


class LockoutFormMixin:
    """A sign-in form that, for a locked-out address, says so instead of checking the password."""

    request: HttpRequest | None
    # Set when the address was found locked out: the seconds to say in Retry-After.
    locked_out_seconds = 0

    def clean(self) -> dict[str, Any]:
        wait = seconds_locked_out(self.request) if self.request is not None else 0
        if wait:
            self.locked_out_seconds = wait
            raise ValidationError(LOCKED_OUT_MESSAGE, code=LOCKED_OUT, params={"seconds": wait})
        return super().clean()  # type: ignore[misc]


class LockoutAuthenticationForm(LockoutFormMixin, AuthenticationForm):
    """The shop's sign-in form."""


class LockoutAdminAuthenticationForm(LockoutFormMixin, AdminAuthenticationForm):
    """The admin's sign-in form."""


def answer_lockout(response: HttpResponse, form: Any) -> HttpResponse:
    """`response` to a sign-in form post, made a 429 with Retry-After if the form found the
    address locked out."""
    wait = getattr(form, "locked_out_seconds", 0)
    if wait:
        response.status_code = 429
        response["Retry-After"] = str(wait)
    return response
