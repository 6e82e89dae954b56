"""Constructed histories for the uptime tests: rows written as a charge point's messages
would have left them, at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime

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
