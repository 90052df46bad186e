from django.db import transaction
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.peers.floor.models import Row


class BuyView(APIView):
    """Insert one row in one transaction: 202."""

    def post(self, request: Request, key: str) -> Response:
        item_id = str(request.data.get("item_id", ""))
        with transaction.atomic():
            Row.objects.create(user=request.user, key=key, item_id=item_id)
        return Response(
            {"key": key, "status": "pending", "item_id": item_id}, status=status.HTTP_202_ACCEPTED
        )


class StatusView(APIView):
    """Read the row back: 200, or 404."""

    def get(self, request: Request, key: str) -> Response:
        row = Row.objects.filter(user=request.user, key=key).first()
        if row is None:
            return Response({"status": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        return Response({"key": key, "status": "pending", "item_id": row.item_id})
