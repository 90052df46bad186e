"""The storefront's pages and its sign-in and sign-out."""

from django.urls import path

from purchases import views

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("buy/", views.buy, name="buy"),
    path("purchases/", views.orders, name="orders"),
    path("account/", views.account, name="account"),
    path("account/card", views.save_card, name="account-card"),
    path("purchases/<str:key>/", views.purchase, name="purchase"),
    path("purchases/<str:key>/status", views.purchase_status, name="purchase-status"),
    path("purchases/<str:key>/cancel", views.cancel, name="purchase-cancel"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
]
