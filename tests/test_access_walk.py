"""Every operation of the OpenAPI schema and every admin page, walked by six callers (clinic A's
administrator and clinician, clinic B's administrator, the network quality manager and auditor,
and an anonymous caller), each answer compared with what the one access module
(`providers.access`) says that caller may do (DESIGN rules 7, 8 and 11).

The expected outcome is computed, not listed per endpoint: from the permission classes the view
declares (each one's rule read from `Access`), from the clinic the path's object belongs to (a
clinic the caller does not see is a 404), and, for what no permission class can express, from a
short table of in-view rules, each with its reason. An operation, a permission class, an admin, an
admin URL or a path parameter the walk does not know fails the walk by name: a new endpoint must be
classified here.

The world is built once, and the walk runs once per module, inside one transaction that is rolled
back at the end; each request runs in a savepoint of its own that is rolled back too, so a write
that succeeds changes nothing any later request sees. The tests then read the recorded answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.cache import cache
from django.db import transaction
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, resolve, reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.permissions import SAFE_METHODS
from rest_framework.test import APIClient

from audit.api import ReadsContactDataRecord
from audit.selectors import CLINIC_READER_ROLES
from providers.access import Access, access_for
from providers.admin_base import ClinicWorkAdmin, RoleAccessMixin, ServiceAdmin
from providers.models import Role
from providers.permissions import (
    AccountKeepers,
    ClinicStaffWrites,
    HasActiveRole,
    NetworkRolesOnly,
    QualityManagerWrites,
    SignedIn,
)
from providers.services import CLINIC_KEEPERS
from recalls.services.accounting import CONTACTING_ROLES, DISPOSING_ROLES
from recalls.services.acknowledgements import ACKNOWLEDGING_ROLES
from stock.services import STOCK_ROLES
from tests.access_walk_scenario import ANONYMOUS, CALLERS, Scenario, build_scenario
from treatments.services import TREATING_ROLES

pytestmark = pytest.mark.django_db  # ordered with the database tests, before any flush

ALLOWED = "allowed"
FORBIDDEN = "forbidden"
HIDDEN = "not visible"
ERROR = "server error"
METHODS = ("get", "post", "put", "patch", "delete")

# ---------------------------------------------------------------------------------------------
# What the API's permission classes allow, read from the access module.

PERMISSION_RULES: dict[type, Callable[[Access, str], bool]] = {
    HasActiveRole: lambda access, method: access.has_role,
    QualityManagerWrites: lambda access, method: (
        method.upper() in SAFE_METHODS or access.writes_network
    ),
    ClinicStaffWrites: lambda access, method: (
        method.upper() in SAFE_METHODS or access.writes_clinic_work
    ),
    NetworkRolesOnly: lambda access, method: access.reads_network,
    # Accounts: read by account keepers and network auditors, written by account keepers.
    AccountKeepers: lambda access, method: (
        access.reads_accounts if method.upper() in SAFE_METHODS else access.keeps_accounts
    ),
    # The caller's own password and API tokens: any signed-in account.
    SignedIn: lambda access, method: access.user_id is not None,
    # The record of contact-data reads: network roles, and clinic administrators for their clinics.
    ReadsContactDataRecord: lambda access, method: (
        access.clinic_ids(CLINIC_READER_ROLES) != frozenset()
    ),
}

# What a view refuses inside, after its permission classes and its object lookup passed: the
# only per-endpoint knowledge of the walk. (method, path) -> (rule, reason).
InViewRule = Callable[[Access, Scenario], str]
IN_VIEW_RULES: dict[tuple[str, str], tuple[InViewRule, str]] = {
    ("get", "/api/v1/history-imports/{import_id}/"): (
        lambda access, world: (
            ALLOWED
            if (clinics := access.history_import_clinic_ids) is None or world.clinic_a.pk in clinics
            else HIDDEN
        ),
        "a clinic's imports: its administrators and network roles read them; clinicians do not",
    ),
    ("delete", "/api/v1/auth/tokens/{token_key}/"): (
        lambda access, world: (
            ALLOWED if access.user_id == world.path_objects["user_id"].value else HIDDEN
        ),
        "a caller revokes only their own tokens; another's is not found",
    ),
    ("get", "/api/v1/patients/{patient_id}/contact/"): (
        lambda access, world: ALLOWED if access.may_read_contact(world.clinic_a.pk) else FORBIDDEN,
        "contact details only for the patient's own clinic administrators and clinicians "
        "(DESIGN rule 7)",
    ),
    ("get", "/api/v1/recalls/{recall_id}/patients/"): (
        lambda access, world: ALLOWED if access.sees_clinic(world.clinic_a.pk) else FORBIDDEN,
        "the recall reached clinic B too, but clinic A's patient list is refused to clinic B",
    ),
}

# What every signed-in caller does to their own sign-in, which writes no record of the system:
# signing in for a token, revoking their tokens, changing their password (auditors too).
OWN_SIGN_IN_WRITES = {"/api/v1/auth/token/", "/api/v1/auth/tokens/revoke/", "/api/v1/me/password/"}

# Operations an anonymous caller may use: signing in for an API token (400 for the empty body).
SIGN_IN_OPERATIONS = {("post", "/api/v1/auth/token/")}

# Query parameters an operation requires, filled with clinic A's records.
QUERY_VALUES: dict[str, Callable[[Scenario], Any]] = {
    "clinic": lambda world: world.clinic_a.pk,
    "at_after": lambda world: "2000-01-01T00:00:00Z",
    "at_before": lambda world: "2100-01-01T00:00:00Z",
}

# Writes whose body names clinic A (or its patient) and is otherwise valid: past the permission
# classes, the service asks for one of `roles` at clinic A. (path, body, roles, why)
CLINIC_A_WRITES: list[tuple[str, Callable[[Scenario], dict[str, Any]], tuple[Role, ...], str]] = [
    (
        "/api/v1/recalls/{recall_id}/acknowledgements/",
        lambda world: {"clinic": world.clinic_a.pk, "name": "Access walk"},
        ACKNOWLEDGING_ROLES,
        "a recall is acknowledged for a clinic by its administrator or a quality manager",
    ),
    (
        "/api/v1/recalls/{recall_id}/dispositions/",
        lambda world: {
            "clinic": world.clinic_a.pk,
            "lot": world.world.lot.pk,
            "kind": "destroyed",
            "quantity": 1,
        },
        DISPOSING_ROLES,
        "a clinic's recalled stock is accounted for by its administrator or a quality manager",
    ),
    (
        "/api/v1/recalls/{recall_id}/contact-attempts/",
        lambda world: {"patient": world.world.a.patient.pk, "outcome": "reached"},
        CONTACTING_ROLES,
        "a patient is contacted by the staff of the patient's clinic or a quality manager",
    ),
    (
        "/api/v1/patients/",
        lambda world: {"clinic": world.clinic_a.pk, "reference": "WALK-NEW-1"},
        TREATING_ROLES,
        "a clinic's patients are registered by its clinicians and administrators",
    ),
]

# POSTs that read: the walk does not count them as writes when an auditor is let through.
READ_ONLY_POSTS = {
    "/api/v1/scans/resolve/": "resolves a scanned GS1 code to its lot; writes nothing",
}


# ---------------------------------------------------------------------------------------------
# Recording answers


@dataclass(frozen=True)
class Answer:
    surface: str  # "api" or "admin"
    caller: str
    method: str
    what: str  # the schema path, or the admin page
    url: str
    status: int
    outcome: str
    expected: str
    note: str = ""  # why the outcome is what it is, when it is not plain
    location: str = ""  # where a redirect sends the caller
    leaked: tuple[str, ...] = ()  # what a successful read showed that the caller must not read

    def __str__(self) -> str:
        extra = f" ({self.note})" if self.note else ""
        if self.leaked:
            extra += f" showing {', '.join(self.leaked)}"
        return (
            f"{self.caller}: {self.method.upper()} {self.url} [{self.what}] -> {self.status} "
            f"{self.outcome}, expected {self.expected}{extra}"
        )


@dataclass
class Walk:
    answers: list[Answer]
    unclassified: list[str]
    operations: int
    admin_pages: int

    def of(self, surface: str) -> list[Answer]:
        return [answer for answer in self.answers if answer.surface == surface]


@contextmanager
def rolled_back() -> Iterator[None]:
    """A transaction (or savepoint) that is always rolled back. Marked as Django's TestCase marks
    its own, so a service's `atomic(durable=True)` inside is allowed as it is in any test."""
    atomic = transaction.atomic()
    atomic._from_testcase = True  # type: ignore[attr-defined]
    with atomic:
        yield
        transaction.set_rollback(True)


def leaks(world: Scenario, caller: str, text: str) -> tuple[str, ...]:
    """What `text` shows that `caller` must never read: clinic A's patients and their contact
    data for clinic B; any patient's contact data for a network role."""
    if caller == "clinic B administrator":
        secrets = world.clinic_a_secrets
    elif caller in ("quality manager", "auditor"):
        secrets = world.contact_secrets
    else:
        return ()
    return tuple(secret for secret in secrets if secret in text)


def response_text(response: Any) -> str:
    if getattr(response, "streaming", False):
        try:
            content = b"".join(response.streaming_content)
        except Exception as error:  # a stream that breaks after its 200 is a server error
            response.status_code = 500
            response.exc_info = (type(error), error, None)
            return ""
    else:
        content = bytes(response.content)
    if content[:4] == b"%PDF" or content[:2] == b"PK":
        return ""
    return content.decode("utf-8", errors="replace")


def server_error(response: Any) -> str:
    info = getattr(response, "exc_info", None)
    return repr(info[1]) if info else ""


# ---------------------------------------------------------------------------------------------
# The API


def api_operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method, operation)
        for path, item in sorted(schema["paths"].items())
        for method, operation in item.items()
        if method in METHODS
    ]


def api_outcome(status: int) -> str:
    if status >= 500:
        return ERROR
    if status in (401, 403):
        return FORBIDDEN
    if status == 404:
        return HIDDEN
    if 200 <= status < 300 or status in (304, 400, 409):
        # 400 and 409: past the permission check, refused for the (empty) input or the state.
        return ALLOWED
    return f"unclassified status {status}"


def api_expected(
    access: Access | None, method: str, path: str, view: Any, world: Scenario
) -> tuple[str, str]:
    """(expected outcome, or "" when the walk cannot classify, with the reason)."""
    if access is None:
        return (ALLOWED if (method, path) in SIGN_IN_OPERATIONS else FORBIDDEN), ""
    for permission in getattr(view, "permission_classes", []):
        rule = PERMISSION_RULES.get(permission)
        if rule is None:
            return "", f"permission class {permission.__qualname__} has no rule in PERMISSION_RULES"
        if not rule(access, method):
            return FORBIDDEN, ""
    for name in re.findall(r"\{(\w+)\}", path):
        named = world.path_objects.get(name)
        if named is None:
            return "", f"no object for the path parameter {name} in access_walk_scenario"
        if named.clinic_ids is not None and not any(
            access.sees_clinic(clinic_id) for clinic_id in named.clinic_ids
        ):
            return HIDDEN, ""
    in_view = IN_VIEW_RULES.get((method, path))
    if in_view is not None:
        return in_view[0](access, world), ""
    return ALLOWED, ""


def api_request(client: APIClient, method: str, url: str, operation: dict[str, Any]) -> Any:
    if method == "get":
        return client.get(url)
    content = operation.get("requestBody", {}).get("content", {})
    if content and "application/json" not in content and "multipart/form-data" in content:
        return client.generic(method.upper(), url, **_multipart_empty())
    return client.generic(method.upper(), url, data="{}", content_type="application/json")


def walk_clinic_a_writes(world: Scenario, walk: Walk, clients: dict[str, APIClient]) -> None:
    """Each caller sends a valid write naming clinic A: done (2xx, or 409 for the state) only by
    those holding the service's roles at clinic A; refused (400 naming the field, 403, 404) for
    everyone else, whatever the permission classes let through."""
    for path, body, roles, _reason in CLINIC_A_WRITES:
        url = path
        for name in re.findall(r"\{(\w+)\}", path):
            url = url.replace(f"{{{name}}}", str(world.path_objects[name].value))
        view = getattr(resolve(url).func, "cls", None)
        for caller in CALLERS:
            user = world.callers[caller]
            access = None if user is None else access_for(user)
            expected, problem = api_expected(access, "post", path, view, world)
            if problem:
                walk.unclassified.append(f"POST {path} naming clinic A: {problem}")
                break
            if expected == ALLOWED and access is not None:
                acts = access.holds_any(roles, clinic_id=world.clinic_a.pk)
                expected = ALLOWED if acts else FORBIDDEN
            elif expected == HIDDEN:
                expected = FORBIDDEN
            with rolled_back():
                response = clients[caller].post(url, body(world), format="json")
            status = response.status_code
            if status >= 500:
                outcome, note = ERROR, server_error(response)
            elif 200 <= status < 300 or status == 409:
                outcome, note = ALLOWED, ""
            elif status in (400, 401, 403, 404):
                outcome, note = FORBIDDEN, ""
            else:
                outcome, note = f"unclassified status {status}", ""
            if outcome != expected and not note:
                note = response_text(response)[:300]
            walk.answers.append(
                Answer(
                    "api",
                    caller,
                    "post",
                    f"{path} naming clinic A",
                    url,
                    status,
                    outcome,
                    expected,
                    note,
                )
            )


def _multipart_empty() -> dict[str, Any]:
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    return {"data": encode_multipart(BOUNDARY, {}), "content_type": MULTIPART_CONTENT}


def walk_api(world: Scenario, walk: Walk) -> None:
    operations = api_operations()
    walk.operations = len(operations)
    clients: dict[str, APIClient] = {}
    for caller, user in world.callers.items():
        client = APIClient(raise_request_exception=False)
        if user is not None:
            client.force_authenticate(user)
        clients[caller] = client
    for path, method, operation in operations:
        url = path
        for name in re.findall(r"\{(\w+)\}", path):
            named = world.path_objects.get(name)
            url = url.replace(f"{{{name}}}", str(named.value if named else 0))
        query = {}
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "query" and parameter.get("required"):
                fill = QUERY_VALUES.get(parameter["name"])
                if fill is None:
                    walk.unclassified.append(
                        f"{method.upper()} {path}: no value for the required query parameter "
                        f"{parameter['name']} in QUERY_VALUES"
                    )
                    continue
                query[parameter["name"]] = fill(world)
        if query:
            url += "?" + "&".join(f"{name}={value}" for name, value in query.items())
        view = resolve(url.split("?")[0]).func
        view_class = getattr(view, "cls", view)
        for caller in CALLERS:
            user = world.callers[caller]
            access = None if user is None else access_for(user)
            expected, problem = api_expected(access, method, path, view_class, world)
            if problem:
                walk.unclassified.append(f"{method.upper()} {path}: {problem}")
                break
            with rolled_back():
                response = api_request(clients[caller], method, url, operation)
                text = response_text(response) if response.status_code == 200 else ""
            outcome = api_outcome(response.status_code)
            note = server_error(response) if outcome == ERROR else ""
            if outcome != expected and not note:
                note = response_text(response)[:300] if outcome != ALLOWED else ""
            walk.answers.append(
                Answer(
                    "api",
                    caller,
                    method,
                    path,
                    url,
                    response.status_code,
                    outcome,
                    expected,
                    note,
                    leaked=leaks(world, caller, text),
                )
            )
    walk_clinic_a_writes(world, walk, clients)


# ---------------------------------------------------------------------------------------------
# The admin


@dataclass(frozen=True)
class AdminRule:
    """What an admin decides beyond the shared rules of `RoleAccessMixin`, `ServiceAdmin` and
    `ClinicWorkAdmin`; each part left None keeps the shared rule."""

    reason: str
    view: Callable[[Access], bool] | None = None
    add: Callable[[Access], bool] | None = None
    change: Callable[[Access], bool] | None = None
    visible: Callable[[Access, Scenario], bool] | None = None
    clinic_lookup: str | None = None


ADMIN_RULES: dict[str, AdminRule] = {
    "PatientContactAdmin": AdminRule(
        "contact details only for the staff of the patient's own clinic (DESIGN rule 7)",
        view=lambda access: bool(access.contact_clinic_ids),
        visible=lambda access, world: access.may_read_contact(world.clinic_a.pk),
        clinic_lookup="patient__clinic_id",
    ),
    "PatientContactAttemptAdmin": AdminRule(
        "hides only its index entry from users who read no contact details; its pages are "
        "clinic work like any other",
    ),
    "ClinicPractitionerAdmin": AdminRule(
        "practitioners are linked to a clinic, and the link ended, by a quality manager or that "
        "clinic's administrator",
        add=lambda access: access.clinic_ids(CLINIC_KEEPERS) != frozenset(),
        change=lambda access: access.clinic_ids(CLINIC_KEEPERS) != frozenset(),
    ),
    "ContactDataReadAdmin": AdminRule(
        "the record of contact-data reads: network roles, and clinic administrators for their "
        "clinics; written by the reads themselves, never by hand",
        view=lambda access: access.clinic_ids(CLINIC_READER_ROLES) != frozenset(),
        add=lambda access: False,
        change=lambda access: False,
        visible=lambda access, world: _reads_clinic_record(access, world.clinic_a.pk),
        clinic_lookup="clinic_id",
    ),
    "AccountAdmin": AdminRule(
        "accounts: read by account keepers and network auditors, written by account keepers "
        "(system administrators and network quality managers)",
        view=lambda access: access.reads_accounts,
        add=lambda access: access.keeps_accounts,
        change=lambda access: access.keeps_accounts,
    ),
    "HistoryImportAdmin": AdminRule(
        "imports of past records: read by the clinic's administrators and by network roles; "
        "made with the command or the API, never in the admin",
        view=lambda access: access.history_import_clinic_ids != frozenset(),
        add=lambda access: False,
        change=lambda access: False,
        visible=lambda access, world: (
            (clinics := access.history_import_clinic_ids) is None or world.clinic_a.pk in clinics
        ),
        clinic_lookup="clinic_id",
    ),
    "AuditEventAdmin": AdminRule(
        "the audit search spans every clinic's records: network roles only; read-only",
        view=lambda access: access.is_network,
        add=lambda access: False,
        change=lambda access: False,
    ),
}


def _reads_clinic_record(access: Access, clinic_id: int) -> bool:
    clinics = access.clinic_ids(CLINIC_READER_ROLES)
    return clinics is None or clinic_id in clinics


# Admins that are not the traceability apps' own and keep Django's model permissions, which no
# role grants: refused to every role holder who is not a superuser.
DJANGO_PERMISSION_ADMINS = {
    "auth.User": "accounts: Django's user admin, model permissions only",
    "auth.Group": "Django's group admin, model permissions only",
    "knox.AuthToken": "API tokens: django-rest-knox's admin, model permissions only",
    "axes.AccessAttempt": "lock-out records: django-axes' admin, model permissions only",
    "axes.AccessLog": "lock-out records: django-axes' admin, model permissions only",
    "axes.AccessFailureLog": "lock-out records: django-axes' admin, model permissions only",
    "pghistory.Events": "pghistory's own event admin, model permissions only",
}

# Models with no row in the walk's world, so no change page to open (changelist and add pages are
# still walked).
MODELS_WITHOUT_ROWS = {
    "audit.AuditEvent": "pghistory's aggregate of the event tables: no row of its own to open; "
    "every record's audit-trail page is walked instead",
    "pghistory.Events": "pghistory's aggregate of the event tables: no row of its own to open",
    "recalls.ExpiryWarning": "written by the expiry watch task, which the world does not run",
    "axes.AccessAttempt": "written by a failed sign-in, which the walk does not make",
    "axes.AccessFailureLog": "written by a failed sign-in, which the walk does not make",
    "axes.AccessLog": "written by a password sign-in; the walk signs in with force_login",
}

# Admin URLs beyond changelist, add and change that the walk does not open, with the reason.
ADMIN_URL_SKIPS: dict[str, str] = {}


@dataclass(frozen=True)
class AdminSpec:
    view: bool
    add: bool
    change: bool
    visible: bool


def _shared_methods() -> set[type]:
    from django.contrib.admin.options import BaseModelAdmin

    return {RoleAccessMixin, ServiceAdmin, ClinicWorkAdmin, admin.ModelAdmin, BaseModelAdmin}


PERMISSION_METHODS = (
    "has_module_permission",
    "has_view_permission",
    "has_add_permission",
    "has_change_permission",
    "has_delete_permission",
)


def own_permission_methods(model_admin: Any) -> list[str]:
    """The permission methods an admin defines beyond the shared bases."""
    shared = _shared_methods()
    own = []
    for name in PERMISSION_METHODS:
        owner = next(cls for cls in type(model_admin).__mro__ if name in vars(cls))
        if owner not in shared:
            own.append(f"{owner.__name__}.{name}")
    return own


def admin_problem(model_admin: Any) -> str:
    """Why the walk cannot classify an admin, or ""."""
    label = model_admin.model._meta.label
    name = type(model_admin).__name__
    if name in ADMIN_RULES or label in DJANGO_PERMISSION_ADMINS:
        return ""
    if not isinstance(model_admin, RoleAccessMixin):
        return (
            f"admin {name} ({label}) asks no role: add it to ADMIN_RULES or "
            "DJANGO_PERMISSION_ADMINS"
        )
    own = own_permission_methods(model_admin)
    if own:
        return f"admin {name} ({label}) decides itself ({', '.join(own)}): add it to ADMIN_RULES"
    return ""


def clinic_lookup(model_admin: Any) -> str | None:
    """The ORM path from the admin's model to the clinic a row belongs to (None: network rows)."""
    rule = ADMIN_RULES.get(type(model_admin).__name__)
    if rule is not None and rule.clinic_lookup:
        return rule.clinic_lookup
    if isinstance(model_admin, ClinicWorkAdmin):
        return model_admin.clinic_field
    path = getattr(model_admin, "clinic_path", None)
    if path is None:
        return None
    return "pk" if path == "" else f"{path}__pk"


def admin_spec(model_admin: Any, user: Any, world: Scenario) -> AdminSpec:
    access = access_for(user)
    label = model_admin.model._meta.label
    if label in DJANGO_PERMISSION_ADMINS:
        app, model = model_admin.opts.app_label, model_admin.opts.model_name
        return AdminSpec(
            view=user.has_perm(f"{app}.view_{model}") or user.has_perm(f"{app}.change_{model}"),
            add=user.has_perm(f"{app}.add_{model}"),
            change=user.has_perm(f"{app}.change_{model}"),
            visible=True,
        )
    rule = ADMIN_RULES.get(type(model_admin).__name__, AdminRule(""))
    view = user.is_staff and access.has_role
    if isinstance(model_admin, ClinicWorkAdmin):
        add = model_admin.add_form is not None and access.holds_anywhere(model_admin.write_roles)
    else:
        add = getattr(model_admin, "add_form", None) is not None and access.writes_network
    change = getattr(model_admin, "update_form", None) is not None and access.writes_network
    lookup = clinic_lookup(model_admin)
    visible = lookup is None or access.sees_clinic(world.clinic_a.pk)
    if rule.view is not None:
        view = user.is_staff and rule.view(access)
    if rule.add is not None:
        add = view and rule.add(access)
    if rule.change is not None:
        change = view and rule.change(access)
    if rule.visible is not None:
        visible = rule.visible(access, world)
    return AdminSpec(view=view, add=view and add, change=view and change, visible=visible)


def admin_object(model_admin: Any, world: Scenario) -> Any:
    """A row for the change page, among those the admin lists at all (for the network quality
    manager): clinic A's where rows belong to clinics."""
    if model_admin.model._meta.label in MODELS_WITHOUT_ROWS:
        return None
    lookup = clinic_lookup(model_admin)
    # The quality manager's rows, or (for contact details, which no network role reads) clinic
    # A's administrator's.
    for caller in ("quality manager", "clinic A administrator"):
        request = RequestFactory().get("/admin/")
        request.user = world.callers[caller]
        rows = model_admin.get_queryset(request)
        if lookup is not None:
            rows = rows.filter(**{lookup: world.clinic_a.pk})
        row = rows.order_by("pk").first()
        if row is not None:
            return row
    return None


def page_expected(spec: AdminSpec, *, needs: str = "view") -> str:
    if not spec.view or (needs == "change" and not spec.change):
        return FORBIDDEN
    if not spec.visible:
        return HIDDEN
    return ALLOWED


ExtraRule = Callable[[Access, AdminSpec, Scenario], str]


def _viewing(access: Access, spec: AdminSpec, world: Scenario) -> str:
    return page_expected(spec)


def _quality_manager_page(access: Access, spec: AdminSpec, world: Scenario) -> str:
    return page_expected(spec) if access.writes_network or not spec.view else FORBIDDEN


def _holding(roles: tuple[Role, ...]) -> ExtraRule:
    def rule(access: Access, spec: AdminSpec, world: Scenario) -> str:
        expected = page_expected(spec)
        return expected if expected != ALLOWED or access.holds_anywhere(roles) else FORBIDDEN

    return rule


def _stock_recording(access: Access, spec: AdminSpec, world: Scenario) -> str:
    expected = page_expected(spec)
    clinics = access.clinic_ids(STOCK_ROLES)
    if expected == ALLOWED and clinics is not None and world.clinic_a.pk not in clinics:
        return FORBIDDEN
    return expected


def _clinic_a_patients(access: Access, spec: AdminSpec, world: Scenario) -> str:
    expected = page_expected(spec)
    if expected == ALLOWED and not access.sees_clinic(world.clinic_a.pk):
        return FORBIDDEN
    return expected


# The admin's own pages beyond changelist, add and change, by the URL name after
# "<app>_<model>_": (the other URL arguments, the expected outcome, why).
EXTRA_PAGES: dict[str, tuple[Callable[[Scenario], dict[str, Any]], ExtraRule, str]] = {
    "audit_trail": (lambda world: {}, _viewing, "the record's history: whoever sees the record"),
    "trace_back": (lambda world: {}, _viewing, "a backward trace: whoever sees the record"),
    "trace_forward": (lambda world: {}, _viewing, "a lot's forward trace, scoped inside"),
    "pdf": (lambda world: {}, _viewing, "a certificate's file: every role reads certificates"),
    "sign": (
        lambda world: {"action": "release"},
        _quality_manager_page,
        "releasing a lot is signed by a quality manager",
    ),
    "record": (
        lambda world: {"action": "write-off"},
        _stock_recording,
        "a stock movement at clinic A: its administrators and quality managers",
    ),
    "widen": (lambda world: {}, _quality_manager_page, "widening a recall: quality managers"),
    "close": (lambda world: {}, _quality_manager_page, "closing a recall: quality managers"),
    "resend": (
        lambda world: {"notice_id": world.path_objects["notice_id"].value},
        _quality_manager_page,
        "resending a notice: quality managers",
    ),
    "acknowledge": (
        lambda world: {},
        _holding(ACKNOWLEDGING_ROLES),
        "clinic administrators and quality managers acknowledge a recall",
    ),
    "disposition": (
        lambda world: {},
        _holding(DISPOSING_ROLES),
        "clinic administrators and quality managers account for recalled stock",
    ),
    "patients": (
        lambda world: {"clinic_id": world.clinic_a.pk},
        _clinic_a_patients,
        "clinic A's exposed patients: clinic A's staff and network roles",
    ),
    "exposures_csv": (lambda world: {}, _viewing, "the recall's exposures, scoped inside"),
    "notices_csv": (lambda world: {}, _viewing, "the recall's notices, scoped inside"),
    "report_pdf": (lambda world: {}, _viewing, "the recall's report, scoped inside"),
    "password_change": (lambda world: {}, _viewing, "Django's password page for a user"),
}


def admin_outcome(response: Any) -> str:
    status = response.status_code
    if status >= 500:
        return ERROR
    if status == 302:
        location = response["Location"]
        if location.startswith(reverse("admin:login")):
            return FORBIDDEN
        if location == reverse("admin:index"):
            return HIDDEN  # Django's "does not exist" redirect for a row the user cannot see
        return ALLOWED  # saved, or done, then sent on
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return HIDDEN
    if 200 <= status < 300:
        return ALLOWED
    return f"unclassified status {status}"


def matches(expected: str, outcome: str, surface: str) -> bool:
    if expected == outcome:
        return True
    # A page about a row the user cannot see may refuse with 403 rather than pretend a 404.
    return surface == "admin" and expected == HIDDEN and outcome == FORBIDDEN


def standard_url_names(model_admin: Any) -> set[str]:
    return {pattern.name for pattern in admin.ModelAdmin.get_urls(model_admin) if pattern.name}


def walk_admin(world: Scenario, walk: Walk) -> None:
    clients: dict[str, Client] = {}
    for caller, user in world.callers.items():
        client = Client(raise_request_exception=False)
        if user is not None:
            client.force_login(user)
        clients[caller] = client

    def call(caller: str, method: str, what: str, url: str, expected: str, **checks: Any) -> None:
        with rolled_back():
            client = clients[caller]
            response = client.post(url, {}) if method == "post" else client.get(url)
            status = response.status_code
            text = response_text(response) if status == 200 else ""
            rows = _shown_pks(response) if status == 200 else None
        outcome = admin_outcome(response)
        note = server_error(response) if outcome == ERROR else ""
        if outcome == ALLOWED and checks.get("read_only") and 'name="_save"' in text:
            outcome, note = "offers Save", "a read-only caller is shown a Save button"
        row = checks.get("row")
        if outcome == ALLOWED and row is not None and rows is not None:
            if checks.get("row_visible") and row not in rows:
                outcome, note = "row missing", f"row {row} is not listed"
            elif not checks.get("row_visible") and row in rows:
                outcome, note = "row shown", f"clinic A's row {row} is listed"
        walk.admin_pages += 1
        walk.answers.append(
            Answer(
                "admin",
                caller,
                method,
                what,
                url,
                status,
                outcome,
                expected,
                note,
                location=response.get("Location", ""),
                leaked=leaks(world, caller, text),
            )
        )

    for caller in CALLERS:
        user = world.callers[caller]
        call(
            caller,
            "get",
            "admin index",
            reverse("admin:index"),
            FORBIDDEN if user is None else ALLOWED,
        )

    for model_admin in admin.site._registry.values():
        problem = admin_problem(model_admin)
        if problem:
            walk.unclassified.append(problem)
            continue
        opts = model_admin.opts
        label = opts.label
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        obj = admin_object(model_admin, world)
        if obj is None and label not in MODELS_WITHOUT_ROWS:
            walk.unclassified.append(
                f"no {label} row in the walk's world for its change page: create one in "
                "access_walk_scenario or add it to MODELS_WITHOUT_ROWS"
            )
        names = {pattern.name for pattern in model_admin.get_urls() if pattern.name}
        extras = [
            pattern
            for pattern in model_admin.get_urls()
            if isinstance(pattern, URLPattern)
            and pattern.name
            and pattern.name not in standard_url_names(model_admin)
        ]
        for caller in CALLERS:
            user = world.callers[caller]
            if user is None:
                spec = AdminSpec(view=False, add=False, change=False, visible=False)
            else:
                spec = admin_spec(model_admin, user, world)
            name = f"{label} changelist"
            row_checks = {}
            if obj is not None and clinic_lookup(model_admin) is not None:
                row_checks = {"row": obj.pk, "row_visible": spec.visible}
            listing = ALLOWED if spec.view else FORBIDDEN
            call(caller, "get", name, reverse(f"{prefix}_changelist"), listing, **row_checks)
            add_expected = ALLOWED if spec.add else FORBIDDEN
            if f"{prefix}_add".removeprefix("admin:") in names:
                call(caller, "get", f"{label} add", reverse(f"{prefix}_add"), add_expected)
                call(caller, "post", f"{label} add", reverse(f"{prefix}_add"), add_expected)
            if obj is None or f"{prefix}_change".removeprefix("admin:") not in names:
                continue
            change_url = reverse(f"{prefix}_change", args=[quote(obj.pk)])
            call(
                caller,
                "get",
                f"{label} change",
                change_url,
                page_expected(spec),
                read_only=not spec.change,
            )
            call(caller, "post", f"{label} change", change_url, page_expected(spec, needs="change"))
            for pattern in extras:
                suffix = pattern.name.removeprefix(f"{opts.app_label}_{opts.model_name}_")
                if pattern.name in ADMIN_URL_SKIPS:
                    continue
                page = EXTRA_PAGES.get(suffix)
                if page is None:
                    walk.unclassified.append(
                        f"admin URL {pattern.name} ({pattern.pattern}) has no rule in "
                        "EXTRA_PAGES and is not in ADMIN_URL_SKIPS"
                    )
                    continue
                arguments, rule, _reason = page
                kwargs = arguments(world)
                # The one argument the rule does not fill names the row: object_id, or id.
                (row_argument,) = set(pattern.pattern.regex.groupindex) - set(kwargs)
                kwargs[row_argument] = quote(obj.pk)
                url = reverse(f"admin:{pattern.name}", kwargs=kwargs)
                expected = FORBIDDEN if user is None else rule(access_for(user), spec, world)
                call(caller, "get", f"{label} {suffix}", url, expected)


def _shown_pks(response: Any) -> set[Any] | None:
    changelist = (getattr(response, "context_data", None) or {}).get("cl")
    if changelist is None:
        return None
    return {row.pk for row in changelist.result_list}


# ---------------------------------------------------------------------------------------------
# The walk, once per module


@pytest.fixture(scope="module")
def walk(django_db_setup, django_db_blocker, tmp_path_factory) -> Walk:
    rest_framework = _generous_throttles()
    media = tmp_path_factory.mktemp("access-walk-media")
    result = Walk(answers=[], unclassified=[], operations=0, admin_pages=0)
    with (
        django_db_blocker.unblock(),
        override_settings(
            MEDIA_ROOT=str(media),
            REST_FRAMEWORK=rest_framework,
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
        rolled_back(),
    ):
        cache.clear()  # the throttles count in the cache
        world = build_scenario()
        walk_api(world, result)
        walk_admin(world, result)
        cache.clear()
    return result


def _generous_throttles() -> dict[str, Any]:
    from django.conf import settings

    return {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            name: "100000/minute" for name in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        },
    }


def _listing(answers: list[Answer]) -> str:
    return "\n".join(str(answer) for answer in answers)


# ---------------------------------------------------------------------------------------------
# The checks


def test_the_walk_classifies_every_operation_admin_and_page(walk):
    assert not walk.unclassified, "\n".join(walk.unclassified)
    assert walk.operations >= 80
    walked = len(walk.of("api"))
    assert walked == (walk.operations + len(CLINIC_A_WRITES)) * len(CALLERS)


def test_every_api_answer_is_what_the_access_module_says(walk):
    wrong = [a for a in walk.of("api") if not matches(a.expected, a.outcome, a.surface)]
    assert not wrong, f"{len(wrong)} API answers differ from providers.access:\n{_listing(wrong)}"


def test_every_admin_answer_is_what_the_access_module_says(walk):
    wrong = [a for a in walk.of("admin") if not matches(a.expected, a.outcome, a.surface)]
    assert not wrong, f"{len(wrong)} admin answers differ from providers.access:\n{_listing(wrong)}"


def test_nothing_answers_with_a_server_error(walk):
    errors = [answer for answer in walk.answers if answer.status >= 500]
    assert not errors, _listing(errors)


def test_auditors_never_write(walk):
    wrote = [
        answer
        for answer in walk.answers
        if answer.caller == "auditor"
        and answer.method != "get"
        and answer.what not in READ_ONLY_POSTS
        and answer.what not in OWN_SIGN_IN_WRITES
        and (200 <= answer.status < 300 or answer.status == 302 or answer.outcome == ALLOWED)
    ]
    assert not wrote, _listing(wrote)


def test_anonymous_callers_get_nothing_but_a_sign_in(walk):
    login = reverse("admin:login")
    let_in = [
        answer
        for answer in walk.answers
        if answer.caller == ANONYMOUS
        and not (answer.surface == "api" and answer.status == 401)
        and not (answer.surface == "api" and (answer.method, answer.what) in SIGN_IN_OPERATIONS)
        and not (
            answer.surface == "admin" and answer.status == 302 and answer.location.startswith(login)
        )
    ]
    assert not let_in, _listing(let_in)


def test_clinic_b_never_reads_clinic_a_patients_or_contact_data(walk):
    shown = [a for a in walk.answers if a.caller == "clinic B administrator" and a.leaked]
    assert not shown, _listing(shown)
    # and every clinic A patient's own pages and contact details are refused to clinic B
    refused_pages = [
        answer
        for answer in walk.answers
        if answer.caller == "clinic B administrator"
        and re.search(r"patient|treatment|contact", answer.what, re.IGNORECASE)
        and answer.expected != ALLOWED
        and answer.outcome == ALLOWED
    ]
    assert not refused_pages, _listing(refused_pages)


def test_network_roles_never_read_contact_data(walk):
    shown = [a for a in walk.answers if a.caller in ("quality manager", "auditor") and a.leaked]
    assert not shown, _listing(shown)
