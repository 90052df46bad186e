"""Content-Security-Policy on every response when DEBUG is off (Django 5.2 has none built in).

Scripts come only from this site's own files: no page of the shop, the admin or the API carries
an inline script (the shop's is static/js/oneclick.js; the API docs use drf-spectacular's split
view, which serves its start-up script as a file). Styles too, with two exceptions: the error
pages' one inline style sheet, allowed by its hash (they must render with no static files), and
the pages of Django's admin and DRF's browsable API and Swagger UI, whose templates write
`style` attributes: there, inline styles (never scripts) are allowed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template import loader

HEADER = "Content-Security-Policy"
# Paths whose third-party templates need inline styles.
INLINE_STYLE_PREFIXES = ("/admin/", "/api/")
ERROR_PAGE_STYLE = "errors/_style.html"


def _directives(style_src: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            f"style-src {style_src}",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


@cache
def error_page_style_hash() -> str:
    """The CSP source of the error pages' inline style sheet: its sha256, as rendered."""
    rendered = loader.render_to_string(ERROR_PAGE_STYLE)
    sheet = re.search(r"<style>(.*?)</style>", rendered, re.DOTALL)
    if sheet is None:
        raise ValueError(f"{ERROR_PAGE_STYLE} has no <style> element to allow")
    digest = hashlib.sha256(sheet.group(1).encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


@cache
def policy_for(inline_styles: bool) -> str:
    """The header's value: with inline styles allowed, or with only the error pages' sheet."""
    return _directives(
        "'self' 'unsafe-inline'" if inline_styles else f"'self' {error_page_style_hash()}"
    )


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every response that has none, when DEBUG is off (Django's debug pages
    are made of inline scripts and styles)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not settings.DEBUG and HEADER not in response:
            response[HEADER] = policy_for(request.path.startswith(INLINE_STYLE_PREFIXES))
        return response
