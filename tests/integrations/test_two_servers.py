"""Two servers sweeping one PostgreSQL (think: two hosts): one incident per condition, one
`incident.opened` event, one delivery."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Incident, OutboxEvent
from dashboard.services import incidents
from dashboard.services.permissions import SYSTEM
from tests.conftest import LIVE_SERVER_ENV
from tests.integrations.receiver import Receiver
from tests.integrations.test_live_events import _api
from tests.integrations.test_webhooks import _endpoint
from tests.servers import serve_two


@pytest.fixture(scope="module")
def two_servers(postgresql_url, redis_server, tmp_path_factory):
    """Two gunicorn servers (one gevent worker each) on one PostgreSQL and one Redis, both
    sweeping and delivering webhooks."""
    env = {**LIVE_SERVER_ENV, "WEBHOOK_CONCURRENCY": "4"}
    logs = tmp_path_factory.mktemp("two-sweepers")
    yield from serve_two(postgresql_url, redis_server.url, logs, env)


@pytest.fixture
def backend():
    """Two servers' writers need PostgreSQL."""
    return "postgresql"


def test_one_incident_and_one_delivery_with_two_servers_sweeping(
    app, world, connectors, as_, two_servers
):
    first, second = two_servers
    with app.app_context():
        incidents.set_rule(SYSTEM, "faulted", company_id=None, enabled=True, seconds=1)
        db.session.commit()
    receiver = Receiver()
    try:
        hook = _endpoint(as_, "user_a", receiver.url, event_types=["incident.opened"])
        admin = world.tokens["admin"]
        for port, cp_id in ((first, world.cp_a), (second, world.cp_b)):
            _api(
                port,
                admin,
                "PUT",
                "/api/v1/connectors/1",
                {"connector_cp_id": cp_id, "connector_status": "Faulted"},
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with app.app_context():
                opened = db.session.scalar(
                    select(func.count()).select_from(Incident).where(Incident.state == "open")
                )
            if opened == 2:
                break
            time.sleep(0.2)
        time.sleep(3)  # both servers sweep a few more times
        with app.app_context():
            rows = db.session.execute(select(Incident.kind, Incident.state, Incident.subject)).all()
            events = db.session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.type == "incident.opened")
            )
        assert sorted(rows) == [
            ("faulted", "open", f"{world.cp_a}/1"),
            ("faulted", "open", f"{world.cp_b}/1"),
        ]
        assert events == 2
        delivered = receiver.wait_for(1)
        time.sleep(1)
        assert len(receiver.accepted()) == 1  # A's only, once
        assert receiver.verified(hook["secret"])[0]["data"]["chargepoint_id"] == world.cp_a
    finally:
        receiver.stop()
    assert delivered
