"""The fleet benchmark's load generator writes its frames by hand (pre-serialised, no `ocpp`
package): each kind it sends must be a frame the server takes, or the benchmark measures
refusals."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

import pytest

from dashboard.ocpp16.frames import parse
from dashboard.ocpp16.validation import validate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import fleet_client  # noqa: E402


@pytest.fixture
def client():
    return fleet_client.Client(Namespace(prefix="CP", first=1, count=6, connectors=2))


@pytest.mark.parametrize(
    ("kind", "transaction", "action"),
    [
        ("status", None, "StatusNotification"),
        ("heartbeat", None, "Heartbeat"),
        ("start", None, "StartTransaction"),
        ("meter", None, "MeterValues"),
        ("meter", 41, "MeterValues"),
    ],
)
def test_every_frame_of_the_load_generator_is_valid_ocpp(client, kind, transaction, action):
    cp = client.charging[0]
    cp.transaction = transaction
    frame = parse(client._frame(kind, cp, "m-1", fleet_client._now()))
    assert (frame.action, frame.message_id) == (action, "m-1")
    validate(2, action, frame.payload)  # raises an OcppError for a bad payload
    if transaction is not None:
        assert frame.payload["transactionId"] == transaction
        sampled = frame.payload["meterValue"][0]["sampledValue"]
        assert {s["measurand"] for s in sampled} == {
            "Energy.Active.Import.Register",
            "Power.Active.Import",
        }


def test_a_third_of_the_fleet_charges_and_its_register_rises(client):
    assert [cp.identity for cp in client.charging] == ["CP00001", "CP00004"]
    cp = client.charging[0]
    cp.transaction = 7
    first = parse(client._frame("meter", cp, "a", fleet_client._now())).payload
    second = parse(client._frame("meter", cp, "b", fleet_client._now())).payload
    value = lambda payload: int(payload["meterValue"][0]["sampledValue"][0]["value"])  # noqa: E731
    assert value(second) - value(first) == fleet_client.POWER_W * 30 // 3600
