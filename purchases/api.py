"""The JSON API (DESIGN.md §5): thin views that call the services and selectors."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import permissions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from purchases import selectors, services
from purchases.keys import KEY_PATTERN, KEY_RULE, new_key
from purchases.parsers import LimitedJSONParser, LimitedMultiPartParser
from purchases.selectors import purchase_status
from purchases.states import FINAL_STATES


class BuyRequest(serializers.Serializer):
    item_id = serializers.CharField(max_length=64, help_text="A product's item id, e.g. widget-001")


class BuyForm(BuyRequest):
    """BuyRequest as the browsable API draws it: `item_id` a choice of the active products.
    Only drawn, never used to validate: the service decides what an item id may be."""

    item_id = serializers.ChoiceField(choices=(), help_text="The product to buy")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["item_id"].choices = [
            (product.item_id, str(product)) for product in selectors.active_products()
        ]


class CancelRequest(serializers.Serializer):
    """No fields: the purchase to cancel is named by the URL (the browsable API draws a button)."""


class PurchaseResultSerializer(serializers.Serializer):
    state = serializers.ChoiceField(FINAL_STATES)
    item_id = serializers.CharField()
    order_id = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)
    message = serializers.CharField(required=False, help_text="The provider's, for a decline")


class StatusSerializer(serializers.Serializer):
    key = serializers.CharField()
    status = serializers.ChoiceField(["pending", "done"])
    item_id = serializers.CharField(required=False)
    cancel_until = serializers.DateTimeField(required=False)
    result = PurchaseResultSerializer(required=False)
    payment_state = serializers.ChoiceField(
        ["charging"], required=False, help_text="After the window: the card is being charged"
    )
    waiting_on_provider = serializers.BooleanField(
        required=False, help_text="The provider has not answered yet: asked again, same key"
    )
    delayed = serializers.BooleanField(required=False)
    message = serializers.CharField(required=False)


class CancelSerializer(StatusSerializer):
    cancelled = serializers.BooleanField()
    detail = serializers.CharField(required=False)


ErrorSerializer = inline_serializer(
    "Error", {"detail": serializers.CharField(), "field": serializers.CharField(required=False)}
)
NotFoundSerializer = inline_serializer(
    "NotFound", {"status": serializers.CharField(), "detail": serializers.CharField()}
)
# Every endpoint is rate-limited (per user, per address for failed sign-ins; buy also by the
# customer's pending purchases).
THROTTLED = {
    429: OpenApiResponse(ErrorSerializer, description="Too many requests: retry after Retry-After")
}
# The key rule, declared so that clients (and schema-driven fuzzers) know a bad key is a 400.
KEY_PARAMETER = OpenApiParameter(
    "key", str, OpenApiParameter.PATH, required=True, pattern=f"^{KEY_PATTERN.pattern}$",
    description=KEY_RULE,
)  # fmt: skip


def error(exc: services.PurchaseError, code: int) -> Response:
    body: dict[str, Any] = {"detail": exc.message}
    if exc.field:
        body["field"] = exc.field
        body[exc.field] = [exc.message]
    return Response(body, status=code)


def invalid_body(request: Request, body: serializers.Serializer, field: str) -> Response | None:
    """A 400 naming the field at fault when the request's body is not a JSON object (then
    `field`) or not valid for `body`; None when `body` validated it."""
    if not isinstance(request.data, dict):
        return Response(
            {"detail": "The body must be a JSON object.", "field": field},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if not body.is_valid():
        return Response(
            {"detail": "Invalid request.", "field": next(iter(body.errors)), **body.errors},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return None


def not_found(key: str) -> Response:
    return Response(
        {"key": key, "status": "not_found", "detail": "No purchase with this key."},
        status=status.HTTP_404_NOT_FOUND,
    )


class BuyView(APIView):
    """Start a one-click purchase; the same key again answers with the same purchase."""

    # Forms too: the browsable API's Buy form posts one (multipart).
    parser_classes = [LimitedJSONParser, FormParser, LimitedMultiPartParser]
    throttle_scope = "buy"

    def get_serializer(self, *args: Any, **kwargs: Any) -> BuyForm:
        """The form the browsable API draws (`post` validates with BuyRequest)."""
        return BuyForm(*args, **kwargs)

    @extend_schema(
        operation_id="buy",
        parameters=[KEY_PARAMETER],
        request=BuyRequest,
        responses={
            202: OpenApiResponse(StatusSerializer, description="A new purchase, pending"),
            200: OpenApiResponse(StatusSerializer, description="The key's existing purchase"),
            400: ErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The key was used for another item"),
            415: OpenApiResponse(
                ErrorSerializer, description="A body without a media type this endpoint reads"
            ),
            **THROTTLED,
        },
        examples=[OpenApiExample("widget", value={"item_id": "widget-001"}, request_only=True)],
    )
    def post(self, request: Request, key: str) -> Response:
        body = BuyRequest(data=request.data)
        refused = invalid_body(request, body, "item_id")
        if refused is not None:
            return refused
        try:
            bought = services.buy(request.user, key, body.validated_data["item_id"])
        except services.KeyConflict as exc:
            return error(exc, status.HTTP_409_CONFLICT)
        except services.TooManyPending as exc:
            response = error(exc, status.HTTP_429_TOO_MANY_REQUESTS)
            response["Retry-After"] = str(math.ceil(settings.ONECLICK_CANCEL_WINDOW_SECONDS))
            return response
        except services.PurchaseError as exc:
            return error(exc, status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_202_ACCEPTED if bought.created else status.HTTP_200_OK
        return Response(bought.status.as_json(), status=code)


class CancelView(APIView):
    """Cancel inside the window: 200. Too late: 409 with the final or decided state."""

    throttle_scope = "cancel"

    def get_serializer(self, *args: Any, **kwargs: Any) -> CancelRequest:
        """The (empty) form the browsable API draws as a POST button."""
        return CancelRequest(*args, **kwargs)

    @extend_schema(
        operation_id="cancel",
        parameters=[KEY_PARAMETER],
        request=None,
        responses={
            200: CancelSerializer,
            409: CancelSerializer,
            400: ErrorSerializer,
            404: NotFoundSerializer,
            **THROTTLED,
        },
    )
    def post(self, request: Request, key: str) -> Response:
        try:
            outcome = services.cancel(request.user, key)
        except services.PurchaseNotFound:
            return not_found(key)
        except services.PurchaseError as exc:
            return error(exc, status.HTTP_400_BAD_REQUEST)
        body = {**outcome.status.as_json(), "cancelled": outcome.accepted}
        if outcome.accepted:
            return Response(body, status=status.HTTP_200_OK)
        body["detail"] = "Too late to cancel: the cancel window has closed."
        return Response(body, status=status.HTTP_409_CONFLICT)


class StatusView(APIView):
    """The purchase's status: pending with its deadline, or done with its result."""

    @extend_schema(
        operation_id="status",
        parameters=[KEY_PARAMETER],
        responses={
            200: StatusSerializer,
            400: ErrorSerializer,
            404: NotFoundSerializer,
            **THROTTLED,
        },
    )
    def get(self, request: Request, key: str) -> Response:
        try:
            purchase = services.get_purchase(request.user, key)
        except services.PurchaseNotFound:
            return not_found(key)
        except services.PurchaseError as exc:
            return error(exc, status.HTTP_400_BAD_REQUEST)
        return Response(purchase_status(purchase).as_json())


class PurchaseListItem(StatusSerializer):
    created_at = serializers.DateTimeField()
    order_id = serializers.CharField(allow_null=True)


class PageNumbers(PageNumberPagination):
    """`?page=` is a page number, as the schema says: an empty value or "last" is refused (404)
    like any other non-number, instead of silently meaning a page."""

    last_page_strings = ()

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        raw = request.query_params.get(self.page_query_param)
        return raw if raw == "" else super().get_page_number(request, paginator)


class PurchaseListView(APIView):
    """The caller's purchases, newest first, paginated (`?page=`)."""

    pagination_class = PageNumbers

    @extend_schema(
        operation_id="purchases_list",
        responses={
            200: PurchaseListItem(many=True),
            404: OpenApiResponse(ErrorSerializer, description="No such page"),
            **THROTTLED,
        },
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.purchases_of(request.user), request, view=self)
        items = []
        for purchase in page or []:
            body = purchase_status(purchase).as_json()
            body.setdefault("item_id", purchase.product.item_id)
            body["created_at"] = purchase.created_at.isoformat().replace("+00:00", "Z")
            order = getattr(purchase, "order", None)
            body["order_id"] = order.order_number if order else None
            items.append(body)
        return paginator.get_paginated_response(items)


KEYED_ENDPOINTS = {"cancel": "api-cancel", "status": "api-status"}
ApiRootSerializer = inline_serializer(
    "ApiRoot",
    {
        name: serializers.CharField()
        for name in ["purchases", "buy", *KEYED_ENDPOINTS, "payment_method", "schema", "docs"]
    },
)


class ApiRootView(APIView):
    """Every endpoint of the API. `buy` carries a fresh key (each visit of this page makes a new
    purchase); `cancel` and `status` take the key of a purchase in place of `{key}`."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(operation_id="api_root", responses={200: ApiRootSerializer, **THROTTLED})
    def get(self, request: Request) -> Response:
        def link(name: str, *args: str) -> str:
            return reverse(name, args=args or None, request=request)

        keyed = {
            name: link(url_name, "KEY").removesuffix("KEY") + "{key}"
            for name, url_name in KEYED_ENDPOINTS.items()
        }
        return Response(
            {
                "purchases": link("api-purchases"),
                "buy": link("api-buy", new_key()),
                **keyed,
                "payment_method": link("api-payment-method"),
                "schema": link("api-schema"),
                "docs": link("api-docs"),
            }
        )
