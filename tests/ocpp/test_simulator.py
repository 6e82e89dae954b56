"""The simulator: charge points that connect, boot and walk charging sessions."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import ChargePoint, ConnectorStatusHistory
from dashboard.simulator import simulate
from tests.servers import ROOT, free_port


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


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_simulator_stops_at_once_on_a_signal_even_as_a_background_job(
    app, world, stop_signal, database_url, tmp_path
):
    """`make run` starts it in the background, where the shell ignores SIGINT."""
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/flask"),
            "--app",
            "wsgi",
            "simulate",
            "--url",
            f"ws://127.0.0.1:{free_port()}/ocpp",
        ],  # nobody there: it keeps retrying
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "x"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    time.sleep(3)
    assert process.poll() is None
    process.send_signal(stop_signal)
    assert process.wait(timeout=5) == 0


def test_simulated_sessions_charge_with_meter_values(app, server, world):
    from dashboard.models import MeterValue, Transaction

    asyncio.run(
        simulate(server, ["CP-A"], connectors=2, rate=4, duration=6, seed=3, meter_interval=0.5)
    )
    with app.app_context():
        transactions = db.session.scalars(select(Transaction)).all()
        assert transactions and all(t.id_tag.startswith("DEMO-CARD-") for t in transactions)
        assert all(t.id_tag_status == "Accepted" for t in transactions)
        stopped = [t for t in transactions if t.stop_timestamp is not None]
        assert stopped and all(t.energy_wh >= 0 for t in stopped)
        samples = db.session.scalars(select(MeterValue)).all()
        measurands = {s.measurand for s in samples}
        assert measurands == {"Energy.Active.Import.Register", "Power.Active.Import"}
        assert any(s.normalised and s.measurand == "Power.Active.Import" for s in samples)


def test_the_simulator_answers_remote_operations(app, server, world, http):
    import threading
    import time

    from dashboard.models import Transaction

    runner = threading.Thread(
        target=lambda: asyncio.run(simulate(server, ["CP-A"], connectors=2, rate=0, duration=6))
    )
    runner.start()
    try:
        time.sleep(2)  # connected, booted, connectors reported
        path = f"/api/v1/chargepoints/{world.cp_a}"
        config = http("GET", f"{path}/configuration?key=NumberOfConnectors&key=Nope")
        assert config[1]["res_data"] == {
            "configuration_key": [{"key": "NumberOfConnectors", "readonly": True, "value": "2"}],
            "unknown_key": ["Nope"],
        }
        changed = http(
            "PUT", f"{path}/configuration", "admin", {"key": "HeartbeatInterval", "value": "60"}
        )
        assert changed[1]["res_data"] == {"status": "Accepted"}
        trigger = http(
            "POST", f"{path}/trigger", "admin", {"requested_message": "StatusNotification"}
        )
        assert trigger[1]["res_data"] == {"status": "Accepted"}
        started = http(
            "POST",
            "/api/v1/connectors/1/remote-start",
            "admin",
            {"connector_cp_id": world.cp_a, "id_tag": "remote-1"},
        )
        assert started[1]["res_data"] == {"status": "Accepted"}
        time.sleep(1)
        with app.app_context():
            transaction = db.session.scalar(
                select(Transaction).where(Transaction.id_tag == "remote-1")
            )
            assert transaction is not None and transaction.active
            transaction_id = transaction.id
        stopped = http("POST", f"/api/v1/transactions/{transaction_id}/remote-stop", "admin", {})
        assert stopped[1]["res_data"] == {"status": "Accepted"}
        time.sleep(1)
        with app.app_context():
            transaction = db.session.get(Transaction, transaction_id)
            assert transaction.stop_reason == "Remote"
    finally:
        runner.join(15)
