"""The simulator: charge points that connect, boot and walk charging sessions."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import ChargePoint, ConnectorStatusHistory
from dashboard.simulator import simulate


def test_simulated_chargepoints_report_statuses(app, server, world):
    asyncio.run(simulate(server, ["CP-A", "CP-B"], connectors=2, rate=10, duration=3, seed=1))
    with app.app_context():
        rows = db.session.scalars(select(ConnectorStatusHistory)).all()
        by_cp = {
            cp_id: [r for r in rows if r.connector_cp_id == cp_id]
            for cp_id in (world.cp_a, world.cp_b)
        }
        for cp_rows in by_cp.values():
            assert {r.connector_id for r in cp_rows} == {1, 2}
            assert len(cp_rows) > 4  # the two first reports, then session steps
        assert {r.source for r in rows} == {"ocpp"}
        assert not any(r.unexpected for r in rows if r.status != "Faulted")
        cp = db.session.get(ChargePoint, world.cp_a)
        assert (cp.vendor, cp.model, cp.status) == ("Plugboard", "Simulator", "Available")
