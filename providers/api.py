"""REST API for manufacturers, clinics, practitioners and the signed-in user: one view per
use case."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    TextChoiceField,
    id_field,
)
from common.api_views import Api, ListApi, get_or_404, validated
from providers import services
from providers.filters import ClinicFilter, ManufacturerFilter, PractitionerFilter
from providers.models import (
    Clinic,
    ClinicContact,
    ClinicPractitioner,
    Licence,
    Manufacturer,
    Membership,
    Practitioner,
    Profession,
    Role,
)
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from providers.selectors import clinic_list, manufacturer_list, practitioner_list

REASON_MAX_LENGTH = 2000

# ---------------------------------------------------------------------------------------------
# Output serializers


class ClinicRefSerializer(serializers.ModelSerializer[Clinic]):
    class Meta:
        model = Clinic
        fields = ["id", "name"]
        read_only_fields = fields


class ManufacturerOutputSerializer(serializers.ModelSerializer[Manufacturer]):
    class Meta:
        model = Manufacturer
        fields = ["id", "legal_name", "country", "registration_number", "created_at"]
        read_only_fields = fields


class ClinicContactOutputSerializer(serializers.ModelSerializer[ClinicContact]):
    class Meta:
        model = ClinicContact
        fields = ["id", "name", "email", "active"]
        read_only_fields = fields


class ClinicOutputSerializer(serializers.ModelSerializer[Clinic]):
    contacts = ClinicContactOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Clinic
        fields = [
            "id",
            "name",
            "address",
            "jurisdiction",
            "time_zone",
            "language",
            "requires_sec",
            "contacts",
            "created_at",
        ]
        read_only_fields = fields


class LicenceOutputSerializer(serializers.ModelSerializer[Licence]):
    class Meta:
        model = Licence
        fields = ["id", "number", "jurisdiction", "valid_from", "valid_until"]
        read_only_fields = fields


class PractitionerOutputSerializer(serializers.ModelSerializer[Practitioner]):
    licences = LicenceOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Practitioner
        fields = ["id", "name", "profession", "user", "licences", "created_at"]
        read_only_fields = fields


class RoleOutputSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)
    clinic = serializers.IntegerField(
        source="clinic_id", allow_null=True, help_text="Empty for a network-wide role."
    )


class MeOutputSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    full_name = serializers.CharField()
    roles = RoleOutputSerializer(many=True)


# ---------------------------------------------------------------------------------------------
# Input serializers


class ManufacturerCreateInputSerializer(serializers.Serializer[Any]):
    legal_name = serializers.CharField(max_length=200)
    country = serializers.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code, e.g. US.")
    registration_number = serializers.CharField(
        max_length=50, required=False, allow_blank=True, default=""
    )


class ManufacturerUpdateInputSerializer(serializers.Serializer[Any]):
    legal_name = serializers.CharField(max_length=200, required=False)
    country = serializers.CharField(max_length=2, required=False)
    registration_number = serializers.CharField(max_length=50, required=False, allow_blank=True)
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH, allow_blank=True, help_text="Why the record changes."
    )


class ClinicContactInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254)


class ClinicCreateInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    address = serializers.CharField(max_length=2000)
    jurisdiction = serializers.CharField(max_length=6, help_text="ISO 3166 code: DE, US-TX.")
    time_zone = serializers.CharField(
        max_length=64,
        default="UTC",
        help_text="IANA time zone such as Europe/Berlin or America/Chicago; the clinic's calendar "
        "day (lot expiry, treatment and receipt dates) is judged in it. Unknown names are "
        "refused (time_zone_unknown).",
    )
    language = TextChoiceField(
        choices=settings.LANGUAGES,
        default="en",
        help_text="The language of the recall notices and acknowledgement page the clinic "
        "receives.",
    )
    requires_sec = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Refuse human-derived lots without a Single European Code here. Left out or "
        "null: as the jurisdiction's law asks (EU and EEA states).",
    )
    contacts = ClinicContactInputSerializer(  # type: ignore[call-arg]  # ListSerializer takes it
        many=True, required=False, default=list, max_length=50
    )


class ClinicUpdateInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False)
    address = serializers.CharField(max_length=2000, required=False)
    jurisdiction = serializers.CharField(
        max_length=6, required=False, help_text="ISO 3166 code: DE, US-TX."
    )
    time_zone = serializers.CharField(
        max_length=64,
        required=False,
        help_text="IANA time zone; the clinic's calendar day is judged in it from now on.",
    )
    language = TextChoiceField(
        choices=settings.LANGUAGES,
        required=False,
        help_text="The language of the recall notices the clinic receives from now on.",
    )
    requires_sec = serializers.BooleanField(
        required=False,
        help_text="Refuse human-derived lots without a Single European Code here from now on.",
    )
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH, allow_blank=True, help_text="Why the record changes."
    )


class PractitionerCreateInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    profession = TextChoiceField(choices=Profession.choices)
    user = id_field(
        get_user_model().objects.all(),
        allow_null=True,
        default=None,
        help_text="The id of the practitioner's user account, if they sign in.",
    )


class LicenceInputSerializer(serializers.Serializer[Any]):
    number = serializers.CharField(max_length=50)
    jurisdiction = serializers.CharField(max_length=6, help_text="ISO 3166 code: DE, US-TX.")
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()


# ---------------------------------------------------------------------------------------------
# Manufacturers


class ManufacturersApi(ListApi):
    serializer_class = ManufacturerOutputSerializer
    filterset_class = ManufacturerFilter

    def get_queryset(self) -> QuerySet[Manufacturer]:
        return manufacturer_list()

    @extend_schema(
        summary="List manufacturers",
        responses={200: ManufacturerOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a manufacturer",
        request=ManufacturerCreateInputSerializer,
        responses={201: ManufacturerOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(ManufacturerCreateInputSerializer, request.data)
        manufacturer = services.manufacturer_create(actor=request.user, **data)
        return Response(
            ManufacturerOutputSerializer(manufacturer).data, status=status.HTTP_201_CREATED
        )


class ManufacturerDetailApi(Api):
    @extend_schema(
        summary="One manufacturer", responses={200: ManufacturerOutputSerializer, **READ_ERRORS}
    )
    def get(self, request: Request, manufacturer_id: int) -> Response:
        manufacturer = get_or_404(manufacturer_list(), manufacturer_id, what="manufacturer")
        return Response(ManufacturerOutputSerializer(manufacturer).data)

    @extend_schema(
        summary="Correct a manufacturer (with the reason)",
        request=ManufacturerUpdateInputSerializer,
        responses={200: ManufacturerOutputSerializer, **WRITE_ERRORS},
    )
    def patch(self, request: Request, manufacturer_id: int) -> Response:
        manufacturer = get_or_404(manufacturer_list(), manufacturer_id, what="manufacturer")
        data = validated(ManufacturerUpdateInputSerializer, request.data)
        reason = data.pop("reason")
        manufacturer = services.manufacturer_update(
            actor=request.user, manufacturer=manufacturer, reason=reason, **data
        )
        return Response(ManufacturerOutputSerializer(manufacturer).data)


# ---------------------------------------------------------------------------------------------
# Clinics


class ClinicsApi(ListApi):
    serializer_class = ClinicOutputSerializer
    filterset_class = ClinicFilter

    def get_queryset(self) -> QuerySet[Clinic]:
        if getattr(self, "swagger_fake_view", False):
            return Clinic.objects.none()  # schema generation: no user to scope by
        return clinic_list(user=self.request.user)

    @extend_schema(
        summary="List clinics",
        description="Network roles see every clinic; clinic staff see only their own clinics.",
        responses={200: ClinicOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a clinic with its notification contacts",
        request=ClinicCreateInputSerializer,
        responses={201: ClinicOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(ClinicCreateInputSerializer, request.data)
        clinic = services.clinic_create(actor=request.user, **data)
        clinic = clinic_list(user=request.user).get(pk=clinic.pk)
        return Response(ClinicOutputSerializer(clinic).data, status=status.HTTP_201_CREATED)


class ClinicDetailApi(Api):
    @extend_schema(summary="One clinic", responses={200: ClinicOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, clinic_id: int) -> Response:
        clinic = get_or_404(clinic_list(user=request.user), clinic_id, what="clinic")
        return Response(ClinicOutputSerializer(clinic).data)

    @extend_schema(
        summary="Correct a clinic (with the reason)",
        description="Quality managers only. Changing the jurisdiction or the time zone changes "
        "which products may be used there and on which calendar day its dates are judged, "
        "from the next request on; what was recorded stays as it was.",
        request=ClinicUpdateInputSerializer,
        responses={200: ClinicOutputSerializer, **WRITE_ERRORS},
    )
    def patch(self, request: Request, clinic_id: int) -> Response:
        clinic = get_or_404(clinic_list(user=request.user), clinic_id, what="clinic")
        data = validated(ClinicUpdateInputSerializer, request.data)
        reason = data.pop("reason")
        services.clinic_update(actor=request.user, clinic=clinic, reason=reason, **data)
        clinic = clinic_list(user=request.user).get(pk=clinic.pk)
        return Response(ClinicOutputSerializer(clinic).data)


class ClinicContactAddApi(Api):
    @extend_schema(
        summary="Add a notification contact to a clinic",
        request=ClinicContactInputSerializer,
        responses={201: ClinicContactOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, clinic_id: int) -> Response:
        clinic = get_or_404(clinic_list(user=request.user), clinic_id, what="clinic")
        data = validated(ClinicContactInputSerializer, request.data)
        contact = services.clinic_contact_add(actor=request.user, clinic=clinic, **data)
        return Response(ClinicContactOutputSerializer(contact).data, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------------------------------------
# Practitioners


class PractitionersApi(ListApi):
    serializer_class = PractitionerOutputSerializer
    filterset_class = PractitionerFilter

    def get_queryset(self) -> QuerySet[Practitioner]:
        return practitioner_list()

    @extend_schema(
        summary="List practitioners with their licences",
        responses={200: PractitionerOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a practitioner",
        request=PractitionerCreateInputSerializer,
        responses={201: PractitionerOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(PractitionerCreateInputSerializer, request.data)
        practitioner = services.practitioner_create(actor=request.user, **data)
        practitioner = practitioner_list().get(pk=practitioner.pk)
        return Response(
            PractitionerOutputSerializer(practitioner).data, status=status.HTTP_201_CREATED
        )


class PractitionerDetailApi(Api):
    @extend_schema(
        summary="One practitioner with their licences",
        responses={200: PractitionerOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, practitioner_id: int) -> Response:
        practitioner = get_or_404(practitioner_list(), practitioner_id, what="practitioner")
        return Response(PractitionerOutputSerializer(practitioner).data)


class LicenceAddApi(Api):
    @extend_schema(
        summary="Record a practitioner's licence",
        request=LicenceInputSerializer,
        responses={201: LicenceOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, practitioner_id: int) -> Response:
        practitioner = get_or_404(practitioner_list(), practitioner_id, what="practitioner")
        data = validated(LicenceInputSerializer, request.data)
        licence = services.licence_add(actor=request.user, practitioner=practitioner, **data)
        return Response(LicenceOutputSerializer(licence).data, status=status.HTTP_201_CREATED)


class ClinicPractitionerOutputSerializer(serializers.ModelSerializer[ClinicPractitioner]):
    class Meta:
        model = ClinicPractitioner
        fields = ["id", "clinic", "practitioner", "active", "since"]
        read_only_fields = fields


class PractitionerClinicLinkInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="The clinic where the practitioner works.")
    since = serializers.DateField(required=False, allow_null=True, default=None)


class PractitionerClinicUnlinkInputSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH, allow_blank=True, help_text="Why the link ends."
    )


class PractitionerClinicLinkApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Link a practitioner to a clinic",
        description="A quality manager, or the clinic's administrator. Only linked practitioners "
        "may be named on the clinic's treatments; linking again re-activates an ended link.",
        request=PractitionerClinicLinkInputSerializer,
        responses={201: ClinicPractitionerOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, practitioner_id: int) -> Response:
        practitioner = get_or_404(practitioner_list(), practitioner_id, what="practitioner")
        data = validated(PractitionerClinicLinkInputSerializer, request.data)
        link = services.clinic_practitioner_link(
            actor=request.user, practitioner=practitioner, **data
        )
        return Response(
            ClinicPractitionerOutputSerializer(link).data, status=status.HTTP_201_CREATED
        )


class PractitionerClinicUnlinkApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="End a practitioner's link to a clinic (kept, inactive, with the reason)",
        request=PractitionerClinicUnlinkInputSerializer,
        responses={200: ClinicPractitionerOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, practitioner_id: int, clinic_id: int) -> Response:
        practitioner = get_or_404(practitioner_list(), practitioner_id, what="practitioner")
        clinic = get_or_404(clinic_list(user=request.user), clinic_id, what="clinic")
        data = validated(PractitionerClinicUnlinkInputSerializer, request.data)
        link = services.clinic_practitioner_unlink(
            actor=request.user, clinic=clinic, practitioner=practitioner, **data
        )
        return Response(ClinicPractitionerOutputSerializer(link).data)


# ---------------------------------------------------------------------------------------------
# The signed-in user


class MeApi(Api):
    @extend_schema(
        summary="Who am I: username, full name and active roles",
        responses={200: MeOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        user = cast(AbstractUser, request.user)  # HasActiveRole lets only signed-in users in
        # No selector lists a user's memberships with their clinics yet; this read is that one.
        memberships = Membership.objects.filter(user_id=user.pk, active=True).order_by(
            "role", "clinic_id"
        )
        return Response(
            MeOutputSerializer(
                {
                    "username": user.get_username(),
                    "full_name": user.get_full_name(),
                    "roles": list(memberships),
                }
            ).data
        )
