"""Delivering recall notices: sending one e-mail (`mail`) or webhook event (`webhook`), the
transient and permanent errors they raise (`errors`), and the outbox's claim, send, record, one
notice or a batch of a round, with the stale-claim requeue and the sweep of notices whose task the
broker refused (`outbox`). Reminders are a recall write:
`recalls.services.recall_reminders_send`.
"""

from recalls.delivery.errors import (
    TRANSIENT_ERRORS,
    DeliveryError,
    EndpointGoneError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from recalls.delivery.mail import send_email
from recalls.delivery.outbox import (
    ORPHANS_PER_RUN,
    Batch,
    Outcome,
    delivery_window,
    endpoint_gone,
    notice_queue_failed,
    notification_deliver,
    notifications_requeue_stale,
    retry_delay,
    retry_delay_longest,
    round_notices_deliver,
    round_queue_failed,
    round_queue_retry,
    rounds_queue_failed,
)
from recalls.delivery.webhook import (
    TRANSIENT_HTTP_STATUSES,
    USER_AGENT,
    send_webhook,
    webhook_body,
    webhook_signature,
)

__all__ = [
    "ORPHANS_PER_RUN",
    "TRANSIENT_ERRORS",
    "TRANSIENT_HTTP_STATUSES",
    "USER_AGENT",
    "Batch",
    "DeliveryError",
    "EndpointGoneError",
    "Outcome",
    "PermanentDeliveryError",
    "TransientDeliveryError",
    "delivery_window",
    "endpoint_gone",
    "notice_queue_failed",
    "notification_deliver",
    "notifications_requeue_stale",
    "retry_delay",
    "retry_delay_longest",
    "round_notices_deliver",
    "round_queue_failed",
    "round_queue_retry",
    "rounds_queue_failed",
    "send_email",
    "send_webhook",
    "webhook_body",
    "webhook_signature",
]
