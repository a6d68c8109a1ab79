"""A mail server that drops the connection in the middle of a message, and a webhook receiver that
answers too late: real servers (aiosmtpd, an HTTP server) misbehaving on purpose. The notice goes
back to the outbox with the reason, is retried under the same id, and is recorded sent once.
(A mail server that is down altogether, and a killed worker: tests/recalls/test_outage.py and
test_worker.py.)"""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from recalls import delivery
from recalls.delivery import TransientDeliveryError
from recalls.models import Channel, Notification, NotificationStatus
from recalls.tasks import notification_deliver
from tests.recalls import conftest as recall_fixtures
from tests.recalls.conftest import (
    SmtpServer,
    _SmtpHandler,
    affected_clinic,
    free_port,
    open_recall,
    recalled_lot,
    webhook_endpoint,
)

pytestmark = pytest.mark.django_db

webhook_receiver = recall_fixtures.webhook_receiver
smtp_server = recall_fixtures.smtp_server


@dataclass
class DroppingSmtpServer(SmtpServer):
    """Takes the whole message, then cuts the connection instead of answering it, the next
    `drops` times: the sender cannot tell whether the message was kept."""

    drops: int = 0
    dropped: list[str] = field(default_factory=list)

    def up(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(_Dropping(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()


class _Dropping(_SmtpHandler):
    inbox: DroppingSmtpServer

    async def handle_DATA(self, server, session, envelope):
        if self.inbox.drops:
            self.inbox.drops -= 1
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.inbox.dropped.append(str(message["Message-ID"]))
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def dropping_smtp(settings) -> Iterator[DroppingSmtpServer]:
    server = DroppingSmtpServer(port=free_port())
    server.up()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "recalls@traceability.example"
    try:
        yield server
    finally:
        server.down()


class _CutMidMessage(socketserver.StreamRequestHandler):
    """Speaks SMTP up to DATA, reads the first bytes of the message, then closes the socket:
    a mail server that crashes, or a link that breaks, while the message is on the wire."""

    received: list[bytes]

    def handle(self) -> None:
        self.wfile.write(b"220 cutter ESMTP\r\n")
        while line := self.rfile.readline():
            command = line[:4].upper()
            if command == b"DATA":
                self.wfile.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self.received.append(self.rfile.read(512))
                return
            self.wfile.write(b"221 Bye\r\n" if command == b"QUIT" else b"250 OK\r\n")


@pytest.fixture
def cutting_smtp(settings) -> Iterator[list[bytes]]:
    """An SMTP server that cuts every message short; what it read of each."""
    received: list[bytes] = []
    handler = type("Handler", (_CutMidMessage,), {"received": received})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.server_address[1]
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "recalls@traceability.example"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _message_id(notification: Notification) -> str:
    return f"<{notification.message_id}@traceability.example>"


def test_a_connection_dropped_mid_message_puts_the_notice_back_then_it_is_sent_once(
    quality_manager, dropping_smtp
):
    # Given an e-mail notice and a mail server that will drop the connection once,
    lot = recalled_lot()
    affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    notification = Notification.objects.get(recall=recall, channel=Channel.EMAIL)
    dropping_smtp.drops = 1

    # when it is delivered, the drop is a transient error: the notice is pending again, with
    # the reason, and counts its first failure;
    with pytest.raises(TransientDeliveryError):
        delivery.notification_deliver(notification.pk)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.PENDING
    assert notification.attempts == 1
    assert "SMTPServerDisconnected" in notification.last_error
    assert notification.failing_since is not None

    # then the retry sends it under the same Message-ID, and it is recorded sent, once.
    assert notification_deliver.apply(args=[notification.pk]).get() == "sent"
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.last_error) == (
        NotificationStatus.SENT,
        2,
        "",
    )
    assert dropping_smtp.dropped == [_message_id(notification)]
    assert dropping_smtp.message_ids() == [_message_id(notification)]
    assert notification_deliver.apply(args=[notification.pk]).get() == "not_claimed"
    assert dropping_smtp.message_ids() == [_message_id(notification)]


def test_a_connection_cut_while_the_message_is_on_the_wire_is_retried_and_sent_once(
    quality_manager, cutting_smtp, smtp_server, settings
):
    # Given an e-mail notice and a mail server that cuts the connection mid-message,
    lot = recalled_lot()
    affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    notification = Notification.objects.get(recall=recall, channel=Channel.EMAIL)

    # when it is delivered, the cut is a transient error: the notice is pending again, with the
    # reason, and the server got part of the message only;
    with pytest.raises(TransientDeliveryError):
        delivery.notification_deliver(notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 1)
    # (which error depends on whether the cut comes while the sender writes or waits)
    cut = ("SMTPServerDisconnected", "ConnectionResetError", "BrokenPipeError")
    assert notification.last_error.startswith(cut), notification.last_error
    [part] = cutting_smtp
    assert part and b"\r\n.\r\n" not in part

    # then, the mail server working again, the retry delivers it whole, once.
    settings.EMAIL_PORT = smtp_server.port
    assert notification_deliver.apply(args=[notification.pk]).get() == "sent"
    assert smtp_server.message_ids() == [_message_id(notification)]
    notification.refresh_from_db()
    assert (notification.status, notification.last_error) == (NotificationStatus.SENT, "")


def test_a_drop_in_a_batch_sends_the_rest_on_a_new_connection_and_retries_the_one_dropped(
    quality_manager, dropping_smtp
):
    # Given a recall round of four e-mail notices over one shared connection, and a mail server
    # that drops the connection on the first message,
    lot = recalled_lot()
    affected_clinic(lot, contacts=4)
    recall = open_recall(quality_manager, lot)
    dropping_smtp.drops = 1

    # when the round is delivered as one batch,
    batch = delivery.round_notices_deliver(recall.pk, 1, limit=25, seconds=15)

    # then the dropped notice waits for its own retry and the other three went out on a new
    # connection;
    notices = {n.pk: n for n in Notification.objects.filter(recall=recall)}
    [(dropped_id, retry_in)] = batch.retry
    assert retry_in > 0
    assert sorted(batch.sent) == sorted(set(notices) - {dropped_id})
    assert notices[dropped_id].status == NotificationStatus.PENDING
    assert dropping_smtp.dropped == [_message_id(notices[dropped_id])]
    # and the retry sends it once, under the Message-ID the dropped copy carried.
    assert notification_deliver.apply(args=[dropped_id]).get() == "sent"
    assert sorted(dropping_smtp.message_ids()) == sorted(map(_message_id, notices.values()))


def test_a_webhook_receiver_that_times_out_gets_the_event_again_under_the_same_id(
    quality_manager, settings, webhook_receiver
):
    # Given a webhook notice, a one-second timeout, and a receiver that takes two seconds,
    settings.RECALL_WEBHOOK_TIMEOUT_SECONDS = 1
    lot = recalled_lot()
    affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "slow")
    recall = open_recall(quality_manager, lot)
    notification = Notification.objects.get(recall=recall, endpoint=endpoint)
    webhook_receiver.delay_seconds = 2

    # when it is delivered, the timeout is a transient error: the notice is pending again;
    with pytest.raises(TransientDeliveryError):
        delivery.notification_deliver(notification.pk)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.PENDING
    assert "Timeout" in notification.last_error

    # then once the receiver answers in time, the retry is recorded sent, once, and the receiver
    # saw the same webhook-id both times, which is what it deduplicates on.
    webhook_receiver.delay_seconds = 0
    assert notification_deliver.apply(args=[notification.pk]).get() == "sent"
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 2)
    assert webhook_receiver.attempted == [str(notification.message_id)] * 2
    assert notification_deliver.apply(args=[notification.pk]).get() == "not_claimed"
    assert len(webhook_receiver.attempted) == 2
