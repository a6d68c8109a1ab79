"""Reads of signatures, for the API, the admin and the verification command."""

from __future__ import annotations

from django.db.models import QuerySet

from signatures.models import Signature


def signature_list() -> QuerySet[Signature]:
    """Every signature, newest first, with what its verification and its output read."""
    return Signature.objects.select_related("record_type").order_by("-signed_at", "-pk")
