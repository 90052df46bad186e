"""Top-level URLs: admin, the storefront pages, the JSON API and its schema, health checks."""

from django.contrib import admin
from django.urls import include, path

from durable.ops import health
from oneclick_project.metrics_view import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("purchases.api_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("", include("purchases.urls")),
]

handler404 = "purchases.errors_views.not_found"
handler500 = "purchases.errors_views.server_error"
