"""`python manage.py api_token_create USERNAME`: print a new API token for an active account.

For an operator at the server (the README's walkthrough, a first integration). Integrators sign in
for a token themselves: POST /api/v1/auth/token/ with username and password. The token is shown
once; only its hash is stored, and it expires like any other (API_TOKEN_TTL_HOURS).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.errors import DomainError
from providers.accounts import token_create


class Command(BaseCommand):
    help = "Print a new API token (Authorization: Token <token>) for an active account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None or not user.is_active:
            raise CommandError(f"No active account named {options['username']!r}.")
        try:
            instance, token = token_create(user=user)
        except DomainError as error:
            raise CommandError(str(error)) from error
        self.stderr.write(
            f"Token {instance.token_key}... expires {instance.expiry:%Y-%m-%d %H:%M} UTC"
        )
        self.stdout.write(token)
