"""Helpers the admin tests share."""

from __future__ import annotations

from typing import Any

from django.test import Client


def admin_client(user: Any, **options: Any) -> Client:
    """A test client signed in to the admin as `user`. The admin is for staff; the user's roles
    decide what each page shows and allows."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client(**options)
    client.force_login(user)
    return client
