"""Sending one webhook event, signed per the Standard Webhooks spec: a 2xx is delivered, 408, 429
and 5xx are worth retrying, 410 Gone means the endpoint was removed, anything else is permanent."""

from __future__ import annotations

import datetime
import json
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone
from standardwebhooks import Webhook

from recalls.delivery.errors import (
    EndpointGoneError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from recalls.models import WebhookEndpoint

# HTTP answers worth retrying: request timeout, rate limited, and every server error.
TRANSIENT_HTTP_STATUSES = frozenset({408, 429})
USER_AGENT = "exosome-traceability-recalls/1"


def webhook_body(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def webhook_signature(
    *, endpoint: WebhookEndpoint, webhook_id: str, at: datetime.datetime, body: str
) -> str:
    """The webhook-signature header: one `v1,<base64>` per secret in use, space-separated. Right
    after a rotation the previous secret signs too, so a receiver still holding it verifies."""
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and at < expires:
        secrets.append(endpoint.previous_secret)
    signatures = []
    for secret in secrets:
        try:
            signatures.append(Webhook(secret).sign(webhook_id, at, body))
        except Exception as error:  # malformed base64 or an empty secret: the endpoint is invalid
            raise PermanentDeliveryError(
                f"endpoint {endpoint.name} has an invalid secret"
            ) from error
    return " ".join(signatures)


def send_webhook(
    *,
    endpoint: WebhookEndpoint,
    webhook_id: str,
    payload: dict[str, Any],
    session: requests.Session | None = None,
) -> None:
    """POST one event, signed per the Standard Webhooks spec (webhook-id, webhook-timestamp,
    webhook-signature over `id.timestamp.body`). A batch passes its `session`, so its events to
    one receiver share a kept-alive connection rather than open one each."""
    if not endpoint.active:
        raise PermanentDeliveryError(f"endpoint {endpoint.name} is deactivated")
    body = webhook_body(payload)
    now = timezone.now()
    signature = webhook_signature(endpoint=endpoint, webhook_id=webhook_id, at=now, body=body)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        response = (session or requests).post(
            endpoint.url,
            data=body.encode(),
            headers=headers,
            timeout=settings.RECALL_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except (requests.ConnectionError, requests.Timeout) as error:
        raise TransientDeliveryError(f"{type(error).__name__}: {error}") from error
    except requests.RequestException as error:  # invalid URL, schema, ...
        raise PermanentDeliveryError(f"invalid endpoint {endpoint.url}: {error}") from error
    status = response.status_code
    if 200 <= status < 300:
        return
    summary = f"HTTP {status} from {endpoint.url}: {response.text[:200]}"
    if status == 410:
        raise EndpointGoneError(summary)
    if status >= 500 or status in TRANSIENT_HTTP_STATUSES:
        raise TransientDeliveryError(summary)
    raise PermanentDeliveryError(summary)
