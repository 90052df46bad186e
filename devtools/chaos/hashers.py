"""A cheap password hasher for the chaos run's children (devtools/chaos/child_settings.py)."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2-SHA256 at 1,000 rounds: the same algorithm and checks, a thousandth of the CPU."""

    iterations = 1_000
