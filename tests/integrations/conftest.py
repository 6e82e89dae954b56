"""Shared by the tests of events, webhooks and incidents: connector 1 on each company's
charge point."""

from __future__ import annotations

import pytest

from dashboard.extensions import db
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM


def add_connectors(app, world) -> None:
    """Connector 1 (Available) on the charge points of company A and of company B."""
    with app.app_context():
        for cp_id in (world.cp_a, world.cp_b):
            create_connector(SYSTEM, connector_id=1, connector_cp_id=cp_id, source="api")
        db.session.commit()


@pytest.fixture
def connectors(app, world) -> None:
    add_connectors(app, world)
