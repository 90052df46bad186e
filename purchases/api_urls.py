from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from purchases import api, api_payments
from purchases.errors_views import not_found

urlpatterns = [
    path("", api.ApiRootView.as_view(), name="api-root"),
    path("buy/<str:key>", api.BuyView.as_view(), name="api-buy"),
    path("cancel/<str:key>", api.CancelView.as_view(), name="api-cancel"),
    path("status/<str:key>", api.StatusView.as_view(), name="api-status"),
    path("purchases/", api.PurchaseListView.as_view(), name="api-purchases"),
    path("payment-method", api_payments.PaymentMethodView.as_view(), name="api-payment-method"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (no inline script: CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Anything else under /api/ is a JSON 404, also with DEBUG on.
    re_path(r"^.*$", not_found),
]
