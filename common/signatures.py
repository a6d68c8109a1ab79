"""Electronic signatures without the domain (21 CFR 11.50, 11.70): what a signature means, how the
signed content is serialised and hashed, and how two serialisations are compared.

The content of a signature is a JSON object of strings, integers, booleans, null, lists and
objects (no floats: a decimal is written as its string, a date or time in ISO 8601). Its canonical
form is JSON with sorted keys, no spaces and UTF-8, so the same content always hashes alike,
whatever PostgreSQL's `jsonb` did to the key order on the way. Which content each kind of signed
act signs is decided by the app that owns the record (`lots.signing`, `recalls.signing`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import models


class Meaning(models.TextChoices):
    """What the signer means by signing (21 CFR 11.50(a)(3))."""

    APPROVAL = "approval", "Approval"
    REJECTION = "rejection", "Rejection"
    REVIEW = "review", "Review"
    RESPONSIBILITY = "responsibility", "Responsibility"
    AUTHORSHIP = "authorship", "Authorship"


def _check(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise TypeError(f"{path or 'content'}: a float does not serialise stably; use a string.")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path or 'content'}: object keys are strings.")
            _check(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
    elif value is not None and not isinstance(value, str | int | bool):
        raise TypeError(f"{path or 'content'}: {type(value).__name__} is not signable content.")


def canonical(content: Any) -> bytes:
    """The one byte serialisation of signed content that is hashed."""
    _check(content, "")
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(content: Any) -> str:
    """SHA-256 (hex) of the canonical serialisation."""
    return hashlib.sha256(canonical(content)).hexdigest()


@dataclass(frozen=True)
class Difference:
    """One place where the signed content and the record as it now stands differ. A missing side
    is `MISSING` (a key that one side has and the other not)."""

    path: str
    signed: Any
    now: Any

    def describe(self) -> str:
        return f"{self.path}: signed {_show(self.signed)}, now {_show(self.now)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "signed": None if self.signed is MISSING else self.signed,
            "now": None if self.now is MISSING else self.now,
            "signed_present": self.signed is not MISSING,
            "now_present": self.now is not MISSING,
        }


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


def _show(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


def differences(signed: Any, now: Any, path: str = "") -> list[Difference]:
    """Every leaf where `signed` and `now` differ, by dotted path (`state.qc.sterility.outcome`).
    Objects are compared key by key; anything else (lists included) as a whole."""
    if isinstance(signed, dict) and isinstance(now, dict):
        found: list[Difference] = []
        for key in sorted(set(signed) | set(now)):
            child = f"{path}.{key}" if path else key
            found += differences(signed.get(key, MISSING), now.get(key, MISSING), child)
        return found
    if signed is MISSING or now is MISSING or signed != now or type(signed) is not type(now):
        return [Difference(path or "content", signed, now)]
    return []
