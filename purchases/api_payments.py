"""The JSON API's saved card: `GET /api/payment-method` and `PUT /api/payment-method`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from purchases import selectors, services
from purchases.api import THROTTLED, ErrorSerializer, LimitedJSONParser, error, invalid_body
from purchases.payments import PAYMENT_METHOD_ID


class PaymentMethodRequest(serializers.Serializer):
    payment_method = serializers.RegexField(
        PAYMENT_METHOD_ID.pattern,
        max_length=255,
        help_text="A PaymentMethod id: from Stripe.js in production; in test mode one of "
        "Stripe's test ids, such as pm_card_visa or pm_card_chargeCustomerFail (declines).",
    )


class SavedCardSerializer(serializers.Serializer):
    saved = serializers.BooleanField()
    brand = serializers.CharField(required=False)
    last4 = serializers.CharField(required=False)
    payment_method = serializers.CharField(required=False)


def card_body(user: Any) -> dict[str, Any]:
    card = selectors.saved_card(user)
    if card is None:
        return {"saved": False}
    return {
        "saved": True,
        "brand": card.brand,
        "last4": card.last4,
        "payment_method": card.payment_method_id,
    }


class PaymentMethodView(APIView):
    """The card one-click purchases charge: read it, or save another."""

    parser_classes = [LimitedJSONParser]
    throttle_scope = "payment_method"
    body_field = "payment_method"

    def get_serializer(self, *args: Any, **kwargs: Any) -> PaymentMethodRequest:
        """The form the browsable API draws."""
        return PaymentMethodRequest(*args, **kwargs)

    @extend_schema(operation_id="payment_method", responses={200: SavedCardSerializer, **THROTTLED})
    def get(self, request: Request) -> Response:
        return Response(card_body(request.user))

    @extend_schema(
        operation_id="payment_method_save",
        request=PaymentMethodRequest,
        responses={
            200: OpenApiResponse(SavedCardSerializer, description="The card is saved"),
            400: OpenApiResponse(ErrorSerializer, description="payment_method missing or refused"),
            503: OpenApiResponse(
                ErrorSerializer, description="The payment provider is unavailable: retry later"
            ),
            **THROTTLED,
        },
        examples=[
            OpenApiExample("visa", value={"payment_method": "pm_card_visa"}, request_only=True)
        ],
    )
    def put(self, request: Request) -> Response:
        body = PaymentMethodRequest(data=request.data)
        refused = invalid_body(request, body, self.body_field)
        if refused is not None:
            return refused
        try:
            services.save_payment_method(request.user, body.validated_data["payment_method"])
        except services.PaymentsUnavailable as exc:
            response = error(exc, status.HTTP_503_SERVICE_UNAVAILABLE)
            response["Retry-After"] = "30"
            return response
        except services.PurchaseError as exc:
            return error(exc, status.HTTP_400_BAD_REQUEST)
        return Response(card_body(request.user))
