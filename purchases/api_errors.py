"""JSON errors for the API: never an HTML page or a stack trace, whatever went wrong."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger("purchases.api")

# The one field an API request body carries: a body that cannot be read names it.
BODY_FIELD = "item_id"


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's handler for the errors it knows; a logged, bodyless-of-detail 500 for the rest.

    A body that is not JSON, not of a JSON media type or too large is a 400 naming the `field`."""
    response = exception_handler(exc, context)
    field = getattr(context.get("view"), "body_field", BODY_FIELD)
    if isinstance(exc, ParseError | UnsupportedMediaType):
        return Response(
            {"detail": str(exc.detail), "field": field}, status=status.HTTP_400_BAD_REQUEST
        )
    if response is not None:
        return response
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {
                "detail": "Request body is larger than the server accepts.",
                "code": "too_large",
                "field": field,
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, SuspiciousOperation):
        return Response(
            {"detail": "Bad request.", "code": "bad_request"}, status=status.HTTP_400_BAD_REQUEST
        )
    view = context.get("view")
    logger.exception("unhandled error in %s", type(view).__name__ if view else "API", exc_info=exc)
    return Response(
        {"detail": "Internal server error.", "code": "internal_error"},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
