"""Rate limits of the API beyond DRF's built-in throttles: failed authentication per address.

HTTP Basic hashes the password on every request (a few hundred milliseconds of CPU, by design),
so a client guessing passwords costs the server that much per guess. Failures are counted per
client address; once an address is over the limit, its Basic requests are refused with 429
*before* the password is hashed, so a throttled brute force costs no more hashing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """Counts failed authentications per client address (the `auth_failure` rate).

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


class ThrottledBasicAuthentication(BasicAuthentication):
    """HTTP Basic that refuses (429) an address over its failure limit without hashing."""

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, None]:
        throttle = FailedAuthenticationThrottle()
        if request is not None and throttle.over_limit(request):
            raise Throttled(wait=throttle.wait(), detail="Too many failed sign-ins from here.")
        try:
            return super().authenticate_credentials(userid, password, request)
        except AuthenticationFailed:
            if request is not None:
                throttle.record_failure(request)
            raise


class ThrottledBasicScheme(BasicScheme):
    """The OpenAPI schema describes ThrottledBasicAuthentication as plain HTTP Basic."""

    target_class = "purchases.throttling.ThrottledBasicAuthentication"
