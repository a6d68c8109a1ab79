"""How a delivery fails: transient (retry within the notice's delivery window) or permanent (the
notice is `failed`, with the reason an operator sees)."""

from __future__ import annotations

import smtplib
import socket

import requests

# Errors after which the same notice may well go through later. Everything else is either
# permanent (below) or unexpected; an unexpected error leaves the claim to expire, so the notice is
# retried by the stale-claim requeue, inside the same delivery window.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    ConnectionError,  # refused, reset, aborted
    TimeoutError,  # socket.timeout is TimeoutError
    socket.gaierror,
    requests.ConnectionError,
    requests.Timeout,
)


class DeliveryError(Exception):
    """A notice could not be delivered; `reason` is what an operator sees."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientDeliveryError(DeliveryError):
    """Retry later: the notice is back in `pending`. The delivery task retries on this alone,
    after `retry_in` seconds (set by `notification_deliver`)."""

    retry_in: float = 0.0


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: the notice is `failed`, with the reason."""


class EndpointGoneError(PermanentDeliveryError):
    """The endpoint answered 410 Gone: its owner removed it. Standard Webhooks asks senders to
    stop calling it, so the endpoint is deactivated and the quality managers are told."""
