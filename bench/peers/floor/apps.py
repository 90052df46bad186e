from django.apps import AppConfig


class FloorConfig(AppConfig):
    name = "bench.peers.floor"
    label = "floor"
    default_auto_field = "django.db.models.BigAutoField"
