"""The yardsticks of the fleet benchmark (bench/stack_floor.py): the bare asyncio server
and the same answers on Plugboard's own stack (Flask, flask-sock, gunicorn's gevent
workers) must acknowledge what the load generator sends with valid OCPP answers, or the
floor they measure is that of refusals."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from pathlib import Path

import pytest
from websockets.sync.client import connect

from dashboard.ocpp16.validation import validate
from tests.servers import stop_process

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bare_server  # noqa: E402
import fleet_client  # noqa: E402
import stack_floor  # noqa: E402

KINDS = [
    ("status", "StatusNotification"),
    ("heartbeat", "Heartbeat"),
    ("start", "StartTransaction"),
]


@pytest.fixture
def client():
    return fleet_client.Client(Namespace(prefix="CP", first=1, count=6, connectors=2))


def test_the_bare_answers_are_valid_callresults(client):
    cp = client.charging[0]
    for kind, action in KINDS:
        frame = client._frame(kind, cp, "m-1", fleet_client._now())
        kind_, message_id, payload = json.loads(bare_server.answer(frame))
        assert (kind_, message_id) == (3, "m-1")
        validate(3, action, payload)  # raises an OcppError for a bad answer
    assert bare_server.answer('[3, "x", {}]') is None  # an answer is not answered


def test_the_flask_sock_floor_answers_over_its_socket(client):
    process, port, workers = stack_floor.start_flask_sock(1)
    try:
        assert len(workers) == 1
        with connect(f"ws://127.0.0.1:{port}/ocpp/CP1", subprotocols=["ocpp1.6"]) as ws:
            assert ws.subprotocol == "ocpp1.6"
            ws.send(client._frame("heartbeat", client.charging[0], "h-1", fleet_client._now()))
            kind, message_id, payload = json.loads(ws.recv(timeout=10))
        assert (kind, message_id) == (3, "h-1")
        validate(3, "Heartbeat", payload)
    finally:
        stop_process(process)
