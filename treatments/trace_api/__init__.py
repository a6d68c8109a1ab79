"""The two traces over HTTP, one module each: forward from lots to every treatment, patient
reference, practitioner and clinic plus the stock on hand; backward from a patient or treatment to
every lot, donor with marker results, QC result and certificate.

Each runs a fixed number of queries whatever the size of the result. Both answer JSON, or CSV
(`?format=csv` or `Accept: text/csv`) streamed from the database in chunks so memory stays flat
however many treatments a recall reaches. Results are scoped like every read (clinic staff: their
own clinics); patient contact details never appear in a trace.
"""

from treatments.trace_api.backward import BackwardTraceApi, _Evidence
from treatments.trace_api.forward import ForwardTraceApi

__all__ = ["BackwardTraceApi", "ForwardTraceApi", "_Evidence"]
