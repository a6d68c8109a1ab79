"""The recall's writes, one module per use case; every public write is re-exported here, so callers
import it from `recalls.services`:

- `opening`: open a recall and widen it (`RecallScopeRequest` is the scope both take);
- `acknowledgements`: a clinic acknowledges, through the API, the admin or its e-mail's signed link;
- `accounting`: stock returned or destroyed, patient contact attempts;
- `closing`: close the recall, signed;
- `resending`: resend a notice that failed for good;
- `reminding`: remind clinics that have not acknowledged, escalate silent ones;
- `webhooks`: the webhook endpoints that receive recall notices (not a recall's writes, kept here
  beside the outbox writes that use them).

Read-only helpers (roles, locks, links, problem lists) stay beside their write and are imported from
its module.
"""

from recalls.services.accounting import recall_contact_attempt_record, recall_disposition_record
from recalls.services.acknowledgements import recall_acknowledge, recall_acknowledge_by_link
from recalls.services.closing import recall_close
from recalls.services.opening import RecallScopeRequest, recall_open, recall_widen
from recalls.services.reminding import ReminderReport, recall_reminders_send
from recalls.services.resending import recall_notice_resend
from recalls.services.webhooks import (
    webhook_endpoint_activate,
    webhook_endpoint_create,
    webhook_endpoint_deactivate,
    webhook_endpoint_deactivate_gone,
    webhook_endpoint_register,
    webhook_endpoint_rotate,
    webhook_endpoint_update,
)

__all__ = [
    "RecallScopeRequest",
    "ReminderReport",
    "recall_acknowledge",
    "recall_acknowledge_by_link",
    "recall_close",
    "recall_contact_attempt_record",
    "recall_disposition_record",
    "recall_notice_resend",
    "recall_open",
    "recall_reminders_send",
    "recall_widen",
    "webhook_endpoint_activate",
    "webhook_endpoint_create",
    "webhook_endpoint_deactivate",
    "webhook_endpoint_deactivate_gone",
    "webhook_endpoint_register",
    "webhook_endpoint_rotate",
    "webhook_endpoint_update",
]
