"""Exchange with the systems clinics, manufacturers and regulators already run: the record in their
standard formats (FHIR R5 for electronic health records), read-only, under the same access rules
as the rest of the API."""
