"""REST API for patients, consent texts, treatments, adverse events and scan resolution: one
module per use case. Every read is scoped to the clinics the caller may see, and another clinic's
patient or treatment is a 404, never a hint that it exists.

The serializers the trace API reuses stay importable from here.
"""

from treatments.api.patients import PatientOutputSerializer, PatientRefSerializer
from treatments.api.treatments import PractitionerRefSerializer, TreatmentLineOutputSerializer

__all__ = [
    "PatientOutputSerializer",
    "PatientRefSerializer",
    "PractitionerRefSerializer",
    "TreatmentLineOutputSerializer",
]
