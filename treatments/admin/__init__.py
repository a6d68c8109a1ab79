"""Admin for patients, their contact details, consent texts, treatments and adverse events, and the
two trace pages (forward from a lot, back from a patient or a treatment), one module per use case.

Clinic staff see only their own clinics' records (DESIGN rule 8) and add them through the
services; network roles (quality manager, auditor) see every clinic but never a patient's contact
details, which only the staff of the patient's own clinic see.

Importing the package registers every page.
"""

# The modules register their pages when imported.
from treatments.admin import patients, traces, treatments  # noqa: F401
