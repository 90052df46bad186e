from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench.peers.floor.views import BuyView, StatusView


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("healthz", healthz),
    path("api/buy/<str:key>", BuyView.as_view()),
    path("api/status/<str:key>", StatusView.as_view()),
]
