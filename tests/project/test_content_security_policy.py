"""The Content-Security-Policy header (oneclick_project/csp.py): on every page with DEBUG off,
scripts from this site's files only, inline styles only where third-party templates need them
(issue 29, item 7). tests/browser/test_content_security_policy.py checks the pages in Chromium."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from oneclick_project.csp import HEADER

pytestmark = pytest.mark.django_db

SHOP_PAGES = ["/accounts/login/", "/", "/purchases/", "/purchases/no-such-key/"]
INLINE_STYLE_PAGES = ["/admin/login/", "/api/", "/api/docs/", "/api/no-such-thing"]


def directives(response) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in response[HEADER].split(";"))


@pytest.mark.parametrize("path", SHOP_PAGES + INLINE_STYLE_PAGES)
def test_every_page_allows_scripts_from_this_site_only(make_user, path: str) -> None:
    client = Client()
    client.force_login(make_user())
    policy = directives(client.get(path, follow=True))
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("path", SHOP_PAGES)
def test_the_shop_allows_no_inline_style_but_the_error_pages_sheet(make_user, path) -> None:
    client = Client()
    client.force_login(make_user())
    response = client.get(path)
    sources = directives(response)["style-src"].split()
    assert "'unsafe-inline'" not in sources
    for sheet in re.findall(r"<style>(.*?)</style>", response.content.decode(), re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(sheet.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in sources, "the page's inline style would be blocked"


@pytest.mark.parametrize("path", INLINE_STYLE_PAGES)
def test_admin_and_api_pages_allow_inline_styles_not_scripts(path: str) -> None:
    policy = directives(Client().get(path))
    assert "'unsafe-inline'" in policy["style-src"].split()
    assert "'unsafe-inline'" not in policy["script-src"]


def test_no_template_of_the_project_has_an_inline_script() -> None:
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", template.read_text()):
            assert "src=" in tag, f"{template}: inline script {tag}"


def test_no_policy_in_debug_mode(settings) -> None:
    # Django's debug pages are inline scripts and styles.
    settings.DEBUG = True
    assert HEADER not in Client().get("/accounts/login/")
