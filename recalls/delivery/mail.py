"""Sending one e-mail through the configured backend, its SMTP replies classified: 4xx transient,
5xx permanent (RFC 5321 4.2.1)."""

from __future__ import annotations

import smtplib

from django.core.mail import EmailMessage

from recalls.delivery.errors import (
    TRANSIENT_ERRORS,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)


def _text(message: bytes | str) -> str:
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def _smtp_error(error: Exception) -> DeliveryError | None:
    """Classify an SMTP reply: 4xx is transient, 5xx permanent (RFC 5321 4.2.1)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        detail = "; ".join(
            f"{address}: {code} {_text(message)}"
            for address, (code, message) in error.recipients.items()
        )
        if codes and all(400 <= code < 500 for code in codes):
            return TransientDeliveryError(f"recipient deferred: {detail}")
        return PermanentDeliveryError(f"recipient refused: {detail}")
    if isinstance(error, smtplib.SMTPResponseException):
        text = _text(error.smtp_error)
        if isinstance(error, smtplib.SMTPConnectError) or 400 <= error.smtp_code < 500:
            return TransientDeliveryError(f"SMTP {error.smtp_code} {text}")
        return PermanentDeliveryError(f"SMTP {error.smtp_code} {text}")
    return None


def send_email(message: EmailMessage) -> None:
    """Send one message through the configured backend; raise DeliveryError when it did not go."""
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPResponseException as error:
        raise _smtp_error(error) or PermanentDeliveryError(str(error)) from error
    except smtplib.SMTPRecipientsRefused as error:
        raise _smtp_error(error) or PermanentDeliveryError(str(error)) from error
    except TRANSIENT_ERRORS as error:
        raise TransientDeliveryError(f"{type(error).__name__}: {error}") from error
