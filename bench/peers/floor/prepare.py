"""`python -m bench.peers.floor.prepare`: migrate the floor's database (DATABASE_URL), create
its user with an API token, print {"token": ...}."""

import json
import os

import django
from django.core.management import call_command


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.floor.settings")
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="bench")
    token, _ = Token.objects.get_or_create(user=user)
    print(json.dumps({"token": token.key}), flush=True)


if __name__ == "__main__":
    main()
