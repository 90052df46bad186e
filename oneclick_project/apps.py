"""The project's app configurations."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class OneclickAdminConfig(AdminConfig):
    """django.contrib.admin with oneclick_project.admin_site.OneclickAdminSite as `admin.site`
    (its sign-in behind the lockout of every sign-in)."""

    default_site = "oneclick_project.admin_site.OneclickAdminSite"
