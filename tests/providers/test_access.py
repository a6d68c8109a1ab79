"""The one access module: every answer follows from the user's active memberships, for every set
of memberships a user can hold, and is read with one query per request."""

from __future__ import annotations

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from providers.access import (
    NO_ACCESS,
    Access,
    _role_needed,
    access_cache,
    access_for,
    access_forget,
)
from providers.models import Clinic, Role
from tests.factories import ClinicFactory, MembershipFactory, UserFactory

CLINICS = (1, 2, 3)
ROLES = tuple(role.value for role in Role)
NETWORK_CAPABLE = {Role.QUALITY_MANAGER.value, Role.AUDITOR.value}

memberships = st.frozensets(
    st.one_of(
        st.tuples(st.sampled_from(ROLES), st.sampled_from(CLINICS)),
        st.tuples(st.sampled_from(sorted(NETWORK_CAPABLE)), st.none()),
    ),
    max_size=6,
)


def access(held: frozenset[tuple[str, int | None]]) -> Access:
    return Access(user_id=1, memberships=held)


@given(memberships)
def test_visible_clinics_are_every_clinic_only_for_network_readers(held):
    seen = access(held).visible_clinic_ids
    network = any(at is None for _, at in held)
    if network:
        assert seen is None
    else:
        assert seen == sorted({at for _, at in held})


@given(memberships, st.sampled_from(CLINICS))
def test_contact_details_only_for_the_clinics_own_administrators_and_clinicians(held, clinic):
    may = access(held).may_read_contact(clinic)
    assert may == any(
        role in {"clinic_administrator", "clinician"} and at == clinic for role, at in held
    )
    assert not access(held).may_read_contact(None)


@given(memberships, st.sampled_from(ROLES), st.sampled_from((None, *CLINICS)))
def test_a_role_holds_at_its_clinic_or_everywhere_when_network_wide(held, role, clinic):
    answer = access(held).holds(role, clinic_id=clinic)
    expected = (role, None) in held or (clinic is not None and (role, clinic) in held)
    assert answer == expected


@given(memberships)
def test_auditors_alone_never_write(held):
    result = access(held)
    only_auditor = bool(held) and all(role == "auditor" for role, _ in held)
    if only_auditor:
        assert not result.writes_clinic_work
        assert not result.writes_network
    assert result.writes_network == (("quality_manager", None) in held)


@given(memberships, st.sampled_from(ROLES))
def test_clinic_ids_for_a_role_are_where_it_is_held(held, role):
    ids = access(held).clinic_ids([role])
    if (role, None) in held:
        assert ids is None
    else:
        assert ids == frozenset(at for r, at in held if r == role and at is not None)


@pytest.mark.django_db
def test_access_is_read_once_per_request_and_afresh_outside_one(django_assert_num_queries):
    user = UserFactory()
    clinic = ClinicFactory()
    MembershipFactory(user=user, role=Role.CLINICIAN, clinic=clinic)

    with access_cache():
        with django_assert_num_queries(1):
            first = access_for(user)
            second = access_for(user)
        assert first is second
        MembershipFactory(user=user, role=Role.AUDITOR, clinic=None)
        access_forget(user)
        assert access_for(user).is_network
    with django_assert_num_queries(2):
        access_for(user)
        access_for(user)


@pytest.mark.django_db
def test_inactive_anonymous_and_roleless_users_have_no_access():
    from django.contrib.auth.models import AnonymousUser

    roleless = UserFactory()
    inactive = UserFactory(is_active=False)
    MembershipFactory(user=inactive, role=Role.AUDITOR, clinic=None)
    revoked = UserFactory()
    MembershipFactory(user=revoked, role=Role.AUDITOR, clinic=None, active=False)

    assert access_for(AnonymousUser()) == NO_ACCESS
    assert access_for(inactive) == NO_ACCESS
    for user in (roleless, revoked):
        assert not access_for(user).has_role
        assert access_for(user).visible_clinic_ids == []


@pytest.mark.parametrize(
    ("roles", "at", "english", "german"),
    [
        (
            (Role.QUALITY_MANAGER,),
            None,
            "This needs the quality manager role.",
            "Hierfür wird die Rolle Qualitätsmanagement benötigt.",
        ),
        (
            (Role.CLINICIAN, Role.CLINIC_ADMINISTRATOR),
            "Praxis Mitte",
            "This needs the clinician or clinic administrator role at Praxis Mitte.",
            "Hierfür wird die Rolle Behandler oder Klinikadministration in Praxis Mitte benötigt.",
        ),
        (
            (Role.CLINIC_ADMINISTRATOR, Role.CLINICIAN, Role.QUALITY_MANAGER),
            "Praxis Mitte",
            "This needs the clinic administrator or clinician or quality manager role at "
            "Praxis Mitte.",
            "Hierfür wird die Rolle Klinikadministration oder Behandler oder "
            "Qualitätsmanagement in Praxis Mitte benötigt.",
        ),
    ],
)
def test_role_required_is_one_translatable_sentence_with_the_english_unchanged(
    roles, at, english, german
):
    """Issue 11: the roles and the clinic are placeholders of one sentence, the roles named as a
    sentence names them in each language (lower case in English, German nouns capitalised)."""
    clinic = None if at is None else Clinic(name=at)
    for language, message in (("en", english), ("de", german)):
        with translation.override(language):
            problem = _role_needed(roles, clinic)
        assert problem.as_dict() == {"code": "role_required", "message": message, "field": None}
