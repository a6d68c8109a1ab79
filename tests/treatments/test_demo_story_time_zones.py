"""The demo story puts each demo clinic on its own clock before it dates anything: treatments fall
in office hours on the clinic's clock, and adverse-event onsets on the clinic's days."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from pghistory.models import Events

from demo.data import CLINIC_TIME_ZONES, CLINICS
from providers.models import Clinic
from treatments.models import AdverseEvent, Treatment

pytestmark = pytest.mark.django_db


def test_demo_clinics_keep_their_own_time_zones_and_treat_in_local_office_hours():
    call_command("seed_demo", stdout=io.StringIO())

    names = {key: name for key, name, *_ in CLINICS}
    zones = {key: Clinic.objects.get(name=names[key]).time_zone for key in CLINIC_TIME_ZONES}
    assert zones == {"tx": "America/Chicago", "ca": "America/Los_Angeles", "de": "Europe/Berlin"}

    berlin = Clinic.objects.get(name=names["de"])
    change = Events.objects.filter(
        pgh_obj_model="providers.Clinic", pgh_obj_id=str(berlin.pk), pgh_label="update"
    ).get()
    assert change.pgh_diff == {"time_zone": ["UTC", "Europe/Berlin"], "language": ["en", "de"]}
    assert change.pgh_context["reason"]

    treatments = Treatment.objects.select_related("clinic")
    assert treatments.count() >= 200
    for treatment in treatments:
        local = treatment.performed_at.astimezone(treatment.clinic.zone).time()
        assert datetime.time(9) <= local <= datetime.time(17, 45), treatment.performed_at
    for event in AdverseEvent.objects.select_related("treatment__clinic"):
        clinic = event.treatment.clinic
        assert event.onset_on == clinic.local_date(
            event.treatment.performed_at
        ) + datetime.timedelta(days=1)
