"""Constructed histories for the uptime tests: rows written as a charge point's messages
would have left them, at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.extensions import db
from dashboard.models import ConnectivityEvent, Connector, ConnectorStatusHistory


def at(text: str) -> datetime:
    """'2026-09-10 10:00' as a UTC time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Histories:
    """Writes ports, statuses and the charge point log (inside an app context)."""

    def port(self, cp_id: int, number: int, created: str) -> None:
        db.session.add(
            Connector(
                connector_id=number,
                connector_cp_id=cp_id,
                connector_status="Available",
                connector_created=at(created),
            )
        )
        db.session.flush()

    def status(self, cp_id: int, number: int, when: str, status: str, code="NoError") -> None:
        db.session.add(
            ConnectorStatusHistory(
                connector_id=number,
                connector_cp_id=cp_id,
                status=status,
                error_code=code,
                event_time=at(when),
                received=at(when),
                source="ocpp",
            )
        )

    def log(self, cp_id: int, when: str, kind: str, status=None, code=None) -> None:
        db.session.add(
            ConnectivityEvent(cp_id=cp_id, kind=kind, at=at(when), status=status, error_code=code)
        )


@pytest.fixture
def history(app, world):
    """Port 1 of A's charge point: offline 150 minutes and Faulted 60 in September; port 1
    of B's: always up."""
    with app.app_context():
        h = Histories()
        for cp in (world.cp_a, world.cp_b):
            h.port(cp, 1, "2026-08-31 00:00")
            h.log(cp, "2026-08-31 00:00", "connected")
            h.status(cp, 1, "2026-08-31 00:00", "Available")
        h.log(world.cp_a, "2026-09-10 10:00", "disconnected")
        h.log(world.cp_a, "2026-09-10 12:30", "connected")
        h.status(world.cp_a, 1, "2026-09-15 08:00", "Faulted", "GroundFailure")
        h.status(world.cp_a, 1, "2026-09-15 09:00", "Available")
        db.session.commit()


@pytest.fixture
def connectors_now(app, world):
    """Connector 1 on A's and B's charge point, created now through the service."""
    from tests.integrations.conftest import add_connectors

    add_connectors(app, world)
