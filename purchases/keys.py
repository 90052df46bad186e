"""Idempotency keys: 1 to 64 characters of A-Z a-z 0-9 _ -."""

from __future__ import annotations

import re
import secrets

KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEY_RULE = "a key is 1 to 64 characters of A-Z a-z 0-9 _ -"


def is_valid_key(key: object) -> bool:
    """True exactly when `key` is a string that matches the key rule in full."""
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


def new_key() -> str:
    """A fresh random key (for forms that carry one per page view)."""
    return secrets.token_urlsafe(24)
