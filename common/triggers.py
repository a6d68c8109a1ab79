"""Database triggers shared by the traceability models."""

from __future__ import annotations

import pgtrigger


def no_delete(name: str) -> pgtrigger.Protect:
    """Traceability records are kept for decades (DESIGN rule 6): the database refuses deletes."""
    return pgtrigger.Protect(name=name, operation=pgtrigger.Delete)
