"""The admin's pieces that know no domain: a form whose validation is a service call,
each refusal shown on its field, and the masking of secret fields on audit trail pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext as _
from pghistory.models import Events

from common.errors import DomainError


def add_problems(form: forms.BaseForm, error: DomainError) -> None:
    """Show each problem next to the field it names, or above the form if no field shows it. A
    form whose fields are named apart from the service's arguments (`lines[0].units`) says where
    each goes with a `problem_field` method."""
    locate = getattr(form, "problem_field", None)
    for problem in error.problems:
        field = locate(problem.field) if locate is not None else problem.field
        message = _("%(message)s (%(code)s)") % {"message": problem.message, "code": problem.code}
        form.add_error(field if field in form.fields else None, message)


class ServiceForm(forms.ModelForm):  # type: ignore[type-arg]
    """A model form whose validation is a service call.

    The service validates (model validators, constraints, role) and writes in its own transaction
    with the acting user and the reason in the history context; the form only collects the
    arguments. So nothing a service refuses is ever written by the admin, and a refusal is a form
    error, never a server error. `actor` is set by `ServiceAdmin.get_form` per request.
    """

    actor: Any = None

    def call_service(self, data: dict[str, Any]) -> models.Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        # Replaces ModelForm's instance construction and model validation: the service does both.
        if self.errors:
            return
        try:
            self.instance = self.call_service(self.cleaned_data)
        except DomainError as error:
            add_problems(self, error)

    def _save_m2m(self) -> None:
        """The service stored the relations already."""


def changed_fields(form: forms.ModelForm, names: tuple[str, ...]) -> dict[str, Any]:  # type: ignore[type-arg]
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


def signature_form_data(request: HttpRequest) -> Any:
    """The POST data once the signature page itself was submitted; None when an admin action
    has just been chosen and the page must be shown first."""
    return request.POST if "signature" in request.POST else None


# Fields whose values no audit trail shows in full (a webhook's signing secret): model label ->
# field -> how to show a value. An event reaches several trails (its own record's and, with
# ?related=1, those of the records it refers to), so the masking is done here, once for all.
AUDIT_TRAIL_MASKS: dict[str, dict[str, Callable[[Any], str]]] = {}


def mask_in_audit_trail(model: type[models.Model], field: str, mask: Callable[[Any], str]) -> None:
    """Show `field` of `model` through `mask` on every audit trail page."""
    AUDIT_TRAIL_MASKS.setdefault(model._meta.label, {})[field] = mask


def _masked(event: Events, changes: list[tuple[str, Any, Any]]) -> list[tuple[str, Any, Any]]:
    masks = AUDIT_TRAIL_MASKS.get(str(event.pgh_obj_model), {})
    if not masks:
        return changes

    def shown(name: str, value: Any) -> Any:
        return value if value is None or name not in masks else masks[name](value)

    return [(name, shown(name, old), shown(name, new)) for name, old, new in changes]


def _event_row(event: Events, users: dict[Any, str]) -> dict[str, Any]:
    context = dict(event.pgh_context or {})
    user_id = context.pop("user", None)
    changes = event.pgh_diff or {}
    return {
        "at": event.pgh_created_at,
        "label": event.pgh_label,
        "record": f"{event.pgh_obj_model} #{event.pgh_obj_id}",
        "user": users.get(user_id, "system" if user_id is None else f"user #{user_id}"),
        "reason": context.pop("reason", ""),
        "url": context.pop("url", ""),
        "extra": context,
        "changes": _masked(
            event,
            [(name, values[0], values[1]) for name, values in sorted(changes.items())]
            if changes
            else [(name, None, value) for name, value in sorted((event.pgh_data or {}).items())],
        ),
    }
