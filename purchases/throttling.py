"""Rate limits of the API beyond DRF's built-in throttles: failed sign-ins per address, and HTTP
Basic's checks made before its password is hashed.

HTTP Basic hashes the password on every request (a few hundred milliseconds of CPU, by design).
So before it does: an address over its failed sign-in limit is refused (429), and so is a request
whose claimed user has used up a per-user limit of the view (the user and scoped rates), which
DRF would otherwise decide only after authenticating. A throttled caller costs no hashing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """Counts failed sign-ins per client address (the `auth_failure` rate).

    Unlike DRF's throttles it records only failures, never successes. Counting is not atomic:
    concurrent failures may pass the limit by the number of requests in flight."""

    scope = "auth_failure"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def over_limit(self, request: Request) -> bool:
        """True when the address has failed as often as the rate allows within its period."""
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) >= self.num_requests

    def record_failure(self, request: Request) -> None:
        """Count one more failure for the request's address."""
        if self.over_limit(request) or self.rate is None:
            return
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class _AsClaimedUser:
    """The request as the throttles would see it once `user` is authenticated."""

    def __init__(self, request: Request, user: Any) -> None:
        self.user = user
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def claimed_user_wait(request: Request, username: str) -> float | None:
    """If the user `username` claims to be has used up one of the view's rates (its user and
    scoped throttles), the seconds until it frees; else None. Reads the counts, adds nothing:
    the request is counted by DRF after it is authenticated, as any other."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if view is None:
        return None
    users = get_user_model()._default_manager
    try:
        user = users.get_by_natural_key(username)
    except users.model.DoesNotExist:
        return None
    claimed = _AsClaimedUser(request, user)
    waits = []
    for throttle in view.get_throttles():
        if not isinstance(throttle, SimpleRateThrottle):
            continue
        throttle.throttle_success = lambda: True  # type: ignore[method-assign]  # peek: no count
        if not throttle.allow_request(claimed, view):
            waits.append(throttle.wait() or 1)
    return max(waits) if waits else None


class ThrottledBasicAuthentication(BasicAuthentication):
    """HTTP Basic that answers 429 without hashing to an address over its failed sign-in limit
    or a user over a rate of the view. Failures are counted by purchases.signin.LockoutBackend,
    which Basic's password check goes through."""

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, None]:
        if request is not None:
            lockout = FailedAuthenticationThrottle()
            if lockout.over_limit(request):
                raise Throttled(wait=lockout.wait(), detail="Too many failed sign-ins from here.")
            wait = claimed_user_wait(request, userid)
            if wait is not None:
                raise Throttled(wait=wait)
        return super().authenticate_credentials(userid, password, request)


class ThrottledBasicScheme(BasicScheme):
    """The OpenAPI schema describes ThrottledBasicAuthentication as plain HTTP Basic."""

    target_class = "purchases.throttling.ThrottledBasicAuthentication"
