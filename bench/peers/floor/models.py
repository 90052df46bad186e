from django.conf import settings
from django.db import models


class Row(models.Model):
    """One row per buy: the least a purchase could write."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=64)
    item_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="floor_row_user_key")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
