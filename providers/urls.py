from django.urls import path

from providers import api
from providers.accounts_api import memberships, passwords, tokens, users

urlpatterns = [
    path("manufacturers/", api.ManufacturersApi.as_view(), name="manufacturers"),
    path(
        "manufacturers/<int:manufacturer_id>/",
        api.ManufacturerDetailApi.as_view(),
        name="manufacturer-detail",
    ),
    path("clinics/", api.ClinicsApi.as_view(), name="clinics"),
    path("clinics/<int:clinic_id>/", api.ClinicDetailApi.as_view(), name="clinic-detail"),
    path(
        "clinics/<int:clinic_id>/contacts/",
        api.ClinicContactAddApi.as_view(),
        name="clinic-contact-add",
    ),
    path("practitioners/", api.PractitionersApi.as_view(), name="practitioners"),
    path(
        "practitioners/<int:practitioner_id>/",
        api.PractitionerDetailApi.as_view(),
        name="practitioner-detail",
    ),
    path(
        "practitioners/<int:practitioner_id>/licences/",
        api.LicenceAddApi.as_view(),
        name="practitioner-licence-add",
    ),
    path(
        "practitioners/<int:practitioner_id>/clinics/",
        api.PractitionerClinicLinkApi.as_view(),
        name="practitioner-clinic-link",
    ),
    path(
        "practitioners/<int:practitioner_id>/clinics/<int:clinic_id>/unlink/",
        api.PractitionerClinicUnlinkApi.as_view(),
        name="practitioner-clinic-unlink",
    ),
    path("me/", api.MeApi.as_view(), name="me"),
    path("me/password/", passwords.OwnPasswordApi.as_view(), name="me-password"),
    # Accounts, roles and API tokens
    path("users/", users.AccountsApi.as_view(), name="users"),
    path("users/<int:user_id>/", users.AccountDetailApi.as_view(), name="user-detail"),
    path(
        "users/<int:user_id>/deactivate/",
        users.AccountDeactivateApi.as_view(),
        name="user-deactivate",
    ),
    path(
        "users/<int:user_id>/reactivate/",
        users.AccountReactivateApi.as_view(),
        name="user-reactivate",
    ),
    path(
        "users/<int:user_id>/password/",
        passwords.AccountPasswordSetApi.as_view(),
        name="user-password",
    ),
    path("users/<int:user_id>/unlock/", passwords.AccountUnlockApi.as_view(), name="user-unlock"),
    path(
        "users/<int:user_id>/memberships/",
        memberships.AccountMembershipsApi.as_view(),
        name="user-memberships",
    ),
    path(
        "users/<int:user_id>/memberships/<int:membership_id>/revoke/",
        memberships.AccountMembershipRevokeApi.as_view(),
        name="user-membership-revoke",
    ),
    path("users/<int:user_id>/tokens/", tokens.AccountTokensApi.as_view(), name="user-tokens"),
    path(
        "users/<int:user_id>/tokens/revoke/",
        tokens.AccountTokensRevokeApi.as_view(),
        name="user-tokens-revoke",
    ),
    path(
        "users/<int:user_id>/tokens/<str:token_key>/",
        tokens.AccountTokenDetailApi.as_view(),
        name="user-token-detail",
    ),
    path("auth/token/", tokens.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/tokens/", tokens.OwnTokensApi.as_view(), name="auth-tokens"),
    path("auth/tokens/revoke/", tokens.OwnTokensRevokeApi.as_view(), name="auth-tokens-revoke"),
    path(
        "auth/tokens/<str:token_key>/",
        tokens.OwnTokenDetailApi.as_view(),
        name="auth-token-detail",
    ),
]
