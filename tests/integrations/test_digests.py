"""The incident digest, sent to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import threading
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from dashboard.models.types import utcnow
from dashboard.services import digests
from tests.integrations.test_incidents import _ocpp, open_faults
from tests.servers import free_port


class Mailbox:
    def __init__(self):
        self.messages: list[tuple[list[str], email.message.Message]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.messages.append(
                (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content))
            )
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server for the session, on a free loopback port."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server, app):
    controller, box = smtp_server
    with box.lock:
        box.messages.clear()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
    yield box
    app.config["SMTP_URL"] = None


def test_the_digest_goes_to_each_company_and_every_superadmin(app, world, mailbox):
    open_faults(app, world)
    with app.app_context():
        sent = digests.send_due()
    assert sent == 3  # a@, b@ (their own) and admin@ (both)
    by_address = {to[0]: message for to, message in mailbox.messages}
    assert set(by_address) == {"a@example.com", "b@example.com", "admin@example.com"}
    a_text = by_address["a@example.com"].get_payload(decode=True).decode()
    assert "GroundFailure" in a_text and "OverVoltage" not in a_text and "CP-A" in a_text
    assert "OverVoltage" in by_address["b@example.com"].get_payload(decode=True).decode()
    admin_text = by_address["admin@example.com"].get_payload(decode=True).decode()
    assert "GroundFailure" in admin_text and "OverVoltage" in admin_text
    assert by_address["a@example.com"]["Subject"] == "Plugboard: 1 open incidents, 1 changed"
    # Not due again within DIGEST_MINUTES: nothing more is sent.
    with app.app_context():
        assert digests.send_due() == 0
    assert len(mailbox.messages) == 3


def test_the_next_digest_holds_only_what_changed_since(app, world, mailbox):
    open_faults(app, world)
    start = utcnow() + timedelta(minutes=4)  # after the (simulated) sweep that opened both
    with app.app_context():
        digests.send_due(start)
        mailbox.messages.clear()
        # A's incident resolves a minute later; B's does not change.
        _ocpp(app, world.cp_a, "Available", at=start + timedelta(minutes=1))
        assert digests.send_due(start + timedelta(minutes=61)) == 2  # a@ and admin@
    addresses = sorted(to[0] for to, _ in mailbox.messages)
    assert addresses == ["a@example.com", "admin@example.com"]
    assert "[resolved] faulted" in mailbox.messages[0][1].get_payload(decode=True).decode()


def test_no_smtp_url_no_mail(app, world, smtp_server):
    controller, box = smtp_server
    with box.lock:
        box.messages.clear()
    open_faults(app, world)
    with app.app_context():
        assert digests.send_due() == 0
    assert box.messages == []
