"""Webhooks delivered in-process (the jobs called directly) to a real HTTP receiver."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from dashboard.extensions import db
from dashboard.models import WebhookDelivery, WebhookEndpoint
from dashboard.models.types import utcnow
from dashboard.services import webhooks
from dashboard.services.connectors import update_connector
from dashboard.services.permissions import SYSTEM
from tests.integrations.receiver import Receiver


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def _endpoint(as_, who, url, **more) -> dict:
    response = as_(who).post("/api/v1/webhooks", {"url": url, **more})
    assert response.status_code == 201, response.json
    return response.json["res_data"]


def _status(app, cp_id, status, connector_id=1):
    with app.app_context():
        update_connector(SYSTEM, cp_id, connector_id, source="api", connector_status=status)
        db.session.commit()


def _deliver(app) -> int:
    with app.app_context():
        try:
            return webhooks.deliver_due()
        finally:
            db.session.remove()


def test_deliveries_are_signed_in_order_and_company_scoped(app, world, as_, connectors, receiver):
    hook = _endpoint(as_, "user_a", receiver.url, event_types=["connector.status_changed"])
    assert hook["company_id"] == world.company_a and hook["secret"].startswith("whsec_")
    for status in ("Preparing", "Charging", "Finishing", "Available"):
        _status(app, world.cp_a, status)
        _status(app, world.cp_b, status)  # company B's: never sent to A's endpoint
    _deliver(app)
    events = receiver.verified(hook["secret"])
    assert [e["data"]["status"] for e in events] == [
        "Preparing",
        "Charging",
        "Finishing",
        "Available",
    ]
    assert {e["company_id"] for e in events} == {world.company_a}
    assert {e["data"]["chargepoint_id"] for e in events} == {world.cp_a}
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    first = receiver.requests[0]
    assert first["headers"]["webhook-id"] == f"evt_{ids[0]}"
    assert events[0]["data"]["previous_status"] == "Available"
    # A wrong secret does not verify; the secret is never shown again.
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(first["body"], first["headers"])
    shown = as_("user_a").get(f"/api/v1/webhooks/{hook['webhook_id']}").json["res_data"]
    assert "secret" not in shown and shown["last_event_id"] == ids[-1]
    # Delivery log: one successful attempt each.
    log = as_("user_a").get(f"/api/v1/webhooks/{hook['webhook_id']}/deliveries").json
    assert [d["status_code"] for d in log["res_data"]["items"]] == [200] * 4


def test_a_failing_receiver_gets_the_event_again_and_in_order(
    app, world, as_, connectors, receiver
):
    hook = _endpoint(as_, "admin", receiver.url, company_id=world.company_a)
    receiver.answers = [500]
    _status(app, world.cp_a, "Preparing")
    _status(app, world.cp_a, "Charging")
    assert _deliver(app) == 1  # the first failed: nothing after it is sent
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, hook["webhook_id"])
        assert endpoint.attempts == 1 and endpoint.failing_since is not None
        assert endpoint.next_attempt_at > utcnow()
        endpoint.next_attempt_at = utcnow()  # the back-off has passed
        db.session.commit()
    _deliver(app)
    statuses = [
        (r["status"], json.loads(r["body"])["data"].get("status")) for r in receiver.requests
    ]
    assert statuses == [(500, "Preparing"), (200, "Preparing"), (200, "Charging")]
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, hook["webhook_id"])
        assert endpoint.attempts == 0 and endpoint.failing_since is None
        attempts = [
            (d.attempt, d.status_code, d.response_excerpt)
            for d in db.session.scalars(db.select(WebhookDelivery).order_by(WebhookDelivery.id))
        ]
    assert attempts == [(1, 500, "nope"), (2, 200, "ok"), (1, 200, "ok")]


def test_an_endpoint_failing_for_a_day_is_disabled_and_says_why(
    app, world, as_, connectors, receiver
):
    hook = _endpoint(as_, "user_a", receiver.url)
    receiver.answers = [503, 503]
    _status(app, world.cp_a, "Faulted")
    _deliver(app)
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, hook["webhook_id"])
        endpoint.failing_since = utcnow() - timedelta(hours=24, minutes=1)
        endpoint.next_attempt_at = utcnow()
        db.session.commit()
    _deliver(app)
    shown = as_("user_a").get(f"/api/v1/webhooks/{hook['webhook_id']}").json["res_data"]
    assert shown["enabled"] is False
    assert (
        "failed for 24 hours" in shown["disabled_reason"] and "HTTP 503" in shown["disabled_reason"]
    )
    assert _deliver(app) == 0  # disabled: nothing is tried
    # Enabled again, it catches up from where it stopped.
    as_("user_a").put(f"/api/v1/webhooks/{hook['webhook_id']}", {"enabled": True})
    _deliver(app)
    assert [e["data"].get("status") for e in receiver.accepted()] == ["Faulted"]


def test_rolled_back_changes_send_nothing(app, world, as_, connectors, receiver):
    _endpoint(as_, "user_a", receiver.url)
    with app.app_context():
        update_connector(SYSTEM, world.cp_a, 1, source="api", connector_status="Faulted")
        db.session.rollback()
    _deliver(app)
    assert receiver.requests == []
    _status(app, world.cp_a, "Unavailable")
    _deliver(app)
    assert [e["data"]["status"] for e in receiver.accepted()] == ["Unavailable"]


def test_manual_redelivery(app, world, as_, connectors, receiver):
    hook = _endpoint(as_, "user_a", receiver.url)
    _status(app, world.cp_a, "Faulted")
    _deliver(app)
    event_id = receiver.accepted()[0]["id"]
    path = f"/api/v1/webhooks/{hook['webhook_id']}/deliveries"
    again = as_("user_a").post(path, {"event_id": event_id})
    assert again.status_code == 201 and again.json["res_data"]["manual"] is True
    assert again.json["res_data"]["attempt"] == 2
    assert [e["id"] for e in receiver.accepted()] == [event_id, event_id]
    # Company B's user cannot see, nor redeliver to, A's endpoint.
    assert as_("user_b").post(path, {"event_id": event_id}).status_code == 404
    assert as_("user_a").post(path, {"event_id": event_id + 1000}).status_code == 404


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://10.1.2.3/hook", "private"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://[::1]:8080/", "loopback"),
        ("http://127.0.0.2:9/", "loopback"),
        ("ftp://example.com/", "http:// or https://"),
        ("http://user:pw@example.com/", "No user name"),
        ("http://no-such-host.invalid/", "cannot be resolved"),
    ],
)
def test_endpoints_on_special_addresses_are_refused(as_, world, url, problem):
    response = as_("admin").post("/api/v1/webhooks", {"url": url, "company_id": world.company_a})
    assert response.status_code == 422
    assert problem in " ".join(response.json["res_data"]["errors"]["url"])


def test_the_address_is_checked_again_at_delivery(app, world, as_, connectors, receiver):
    hook = _endpoint(as_, "user_a", receiver.url)
    app.config["WEBHOOK_ALLOWED_NETWORKS"] = []  # 127.0.0.1 no longer allowed
    try:
        _status(app, world.cp_a, "Faulted")
        _deliver(app)
    finally:
        app.config["WEBHOOK_ALLOWED_NETWORKS"] = ["127.0.0.1/32"]
    assert receiver.requests == []
    log = as_("user_a").get(f"/api/v1/webhooks/{hook['webhook_id']}/deliveries").json
    assert "loopback" in log["res_data"]["items"][0]["error"]


def test_company_users_manage_only_their_own_endpoints(as_, world, receiver):
    mine = _endpoint(as_, "user_a", receiver.url, company_id=world.company_a)
    assert (
        as_("user_a")
        .post("/api/v1/webhooks", {"url": receiver.url, "company_id": world.company_b})
        .status_code
        == 404
    )
    assert as_("user_b").get(f"/api/v1/webhooks/{mine['webhook_id']}").status_code == 404
    assert as_("user_b").delete(f"/api/v1/webhooks/{mine['webhook_id']}").status_code == 404
    assert as_("user_b").get("/api/v1/webhooks").json["res_data"]["items"] == []
    listed = as_("admin").get("/api/v1/webhooks").json["res_data"]["items"]
    assert [w["webhook_id"] for w in listed] == [mine["webhook_id"]]
    bad = as_("user_a").post("/api/v1/webhooks", {"url": receiver.url, "event_types": ["nope"]})
    assert bad.status_code == 422
    rotated = as_("user_a").post(f"/api/v1/webhooks/{mine['webhook_id']}/secret")
    assert rotated.json["res_data"]["secret"] not in (None, mine["secret"])
    assert as_("user_a").delete(f"/api/v1/webhooks/{mine['webhook_id']}").status_code == 200


def test_the_body_is_the_event_as_the_stream_shows_it(app, world, connectors):
    from dashboard.models import OutboxEvent
    from dashboard.services.outbox import as_dict

    _status(app, world.cp_a, "Charging")
    with app.app_context():
        assert webhooks.has_work() is False  # no endpoint
        rows = db.session.scalars(db.select(OutboxEvent)).all()
        assert rows
        for row in rows:
            assert json.loads(webhooks.event_body(row)) == as_dict(row)
