"""Top-level URLs: admin, the storefront pages, the JSON API and its schema, health checks."""

from django.contrib import admin
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from durable.ops import health
from oneclick_project.metrics_view import metrics

# The probes and the scrape answer GET and HEAD only, and change nothing: exempt from the CSRF
# check, another method gets their 405 instead of the shop's HTML "please try again" page.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("purchases.api_urls")),
    path("healthz", csrf_exempt(health.healthz), name="healthz"),
    path("readyz", csrf_exempt(health.readyz), name="readyz"),
    path("metrics", csrf_exempt(metrics), name="metrics"),
    path("", include("purchases.urls")),
]

handler400 = "purchases.errors_views.bad_request"
handler404 = "purchases.errors_views.not_found"
handler500 = "purchases.errors_views.server_error"
