from django.apps import AppConfig


class PurchasesConfig(AppConfig):
    name = "purchases"
    verbose_name = "Purchases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the workflows, so every process (web, worker) can replay them by name.
        from purchases import workflows  # noqa: F401
