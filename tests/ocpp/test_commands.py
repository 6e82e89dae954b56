"""Remote operations: every OCPP 1.6 Core call (and TriggerMessage) from the API to a charge
point run by the `ocpp` package on a real socket, with accepted, rejected, timed-out,
offline and malformed answers; permissions and company policy; the command log."""

from __future__ import annotations

import asyncio

import pytest

from dashboard.extensions import db
from dashboard.models import ChargePoint, Command
from dashboard.services import charging
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.ocpp.conftest import Session, open_socket, run


@pytest.fixture
def plug(app, world):
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        db.session.commit()


def connected(server, ask, *, identity="CP-A", prepare=None):
    """Connect and boot `identity`, run `ask()` (blocking: the API) in a thread, and return
    its result and what the charge point received."""

    async def scenario():
        async with open_socket(server, identity) as ws:
            session = Session(ws, identity)
            if prepare:
                prepare(session.cp)
            await session.boot()
            result = await asyncio.to_thread(ask)
            await session.stop()
            return result, session.cp.received

    return run(scenario())


CALLS = [
    ("POST", "reset", {"type": "Hard"}, "Reset", {"type": "Hard"}),
    (
        "POST",
        "trigger",
        {"requested_message": "StatusNotification", "connector_id": 1},
        "TriggerMessage",
        {"requested_message": "StatusNotification", "connector_id": 1},
    ),
    (
        "PUT",
        "configuration",
        {"key": "HeartbeatInterval", "value": "120"},
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "120"},
    ),
    ("POST", "clear-cache", {}, "ClearCache", {}),
    (
        "POST",
        "data-transfer",
        {"vendor_id": "com.acme", "message_id": "ping", "data": "hello"},
        "DataTransfer",
        {"vendor_id": "com.acme", "message_id": "ping", "data": "hello"},
    ),
]


@pytest.mark.parametrize(("method", "path", "req_data", "action", "sent"), CALLS)
def test_each_call_reaches_the_charge_point_and_its_answer_comes_back(
    app, server, world, http, plug, method, path, req_data, action, sent
):
    (status, body), received = connected(
        server, lambda: http(method, f"/api/v1/chargepoints/{world.cp_a}/{path}", "admin", req_data)
    )
    assert status == 200 and body["message"] == "Charge point answered", body
    from tests.ocpp.conftest import SimulatedChargePoint

    assert body["res_data"] == SimulatedChargePoint.answers[action]
    assert received == [(action, sent)]
    with app.app_context():
        (logged,) = db.session.scalars(db.select(Command)).all()
        assert (logged.action, logged.outcome, logged.source) == (action, "answered", "api")
        assert logged.user_id == world.admin and logged.duration_ms is not None


def test_get_configuration_reads_the_charge_points_keys(server, world, http, plug):
    def ask():
        every = http("GET", f"/api/v1/chargepoints/{world.cp_a}/configuration")
        some = http(
            "GET", f"/api/v1/chargepoints/{world.cp_a}/configuration?key=HeartbeatInterval&key=Nope"
        )
        return every, some

    ((status, every), (_, some)), _ = connected(server, ask)
    assert status == 200
    assert every["res_data"]["configuration_key"][1] == {
        "key": "NumberOfConnectors",
        "readonly": True,
        "value": "2",
    }
    assert some["res_data"] == {
        "configuration_key": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
        "unknown_key": ["Nope"],
    }


def test_remote_start_and_remote_stop(app, server, world, http, plug):
    with app.app_context():
        transaction, _ = charging.start_transaction(
            db.session.get(ChargePoint, world.cp_a),
            connector_id=1,
            id_tag="card",
            meter_start=0,
            timestamp=charging.utcnow(),
        )
        db.session.commit()
        transaction_id = transaction.id

    def ask():
        started = http(
            "POST",
            "/api/v1/connectors/1/remote-start",
            "admin",
            {"connector_cp_id": world.cp_a, "id_tag": "card-9"},
        )
        stopped = http("POST", f"/api/v1/transactions/{transaction_id}/remote-stop", "admin", {})
        return started, stopped

    (started, stopped), received = connected(server, ask)
    assert started == (200, started[1]) and started[1]["res_data"] == {"status": "Accepted"}
    assert stopped[0] == 200
    assert received == [
        ("RemoteStartTransaction", {"connector_id": 1, "id_tag": "card-9"}),
        ("RemoteStopTransaction", {"transaction_id": transaction_id}),
    ]


def test_a_rejected_answer_is_returned_as_it_is(server, world, http, plug):
    def prepare(cp):
        cp.answers = {**cp.answers, "Reset": {"status": "Rejected"}}

    (status, body), _ = connected(
        server,
        lambda: http("POST", f"/api/v1/chargepoints/{world.cp_a}/reset", "admin", {"type": "Soft"}),
        prepare=prepare,
    )
    assert (status, body["res_data"]) == (200, {"status": "Rejected"})


def test_a_malformed_answer_is_a_502_naming_what_was_wrong(app, server, world, http, plug):
    def prepare(cp):
        cp.answers = {**cp.answers, "ClearCache": {"status": "Maybe"}}

    (status, body), _ = connected(
        server,
        lambda: http("POST", f"/api/v1/chargepoints/{world.cp_a}/clear-cache", "admin", {}),
        prepare=prepare,
    )
    assert status == 502 and "PropertyConstraintViolation" in body["message"]
    assert "status" in body["message"]
    with app.app_context():
        (logged,) = db.session.scalars(db.select(Command)).all()
        assert logged.outcome == "error" and "PropertyConstraintViolation" in logged.error


def test_no_answer_in_time_is_a_504_and_offline_is_a_409(app, server, world, http, plug):
    def prepare(cp):
        async def silent(**request):
            await asyncio.sleep(10)

        cp.route_map["Reset"]["_on_action"] = silent

    (status, body), _ = connected(
        server,
        lambda: http("POST", f"/api/v1/chargepoints/{world.cp_a}/reset", "admin", {"type": "Soft"}),
        prepare=prepare,
    )
    assert status == 504
    offline = http("POST", f"/api/v1/chargepoints/{world.cp_a}/reset", "admin", {"type": "Soft"})
    assert offline[0] == 409 and "offline" in offline[1]["message"]
    with app.app_context():
        outcomes = [c.outcome for c in db.session.scalars(db.select(Command).order_by(Command.id))]
        assert outcomes == ["timeout", "offline"]


@pytest.mark.parametrize(("method", "path", "req_data", "action", "sent"), CALLS)
def test_company_users_get_403_on_their_own_and_404_on_others(
    world, http, plug, method, path, req_data, action, sent
):
    own = http(method, f"/api/v1/chargepoints/{world.cp_a}/{path}", "user_a", req_data)
    other = http(method, f"/api/v1/chargepoints/{world.cp_b}/{path}", "user_a", req_data)
    assert (own[0], other[0]) == (403, 404)


def test_the_command_log_is_read_under_company_policy(server, world, http, plug):
    connected(
        server,
        lambda: http("POST", f"/api/v1/chargepoints/{world.cp_a}/reset", "admin", {"type": "Soft"}),
    )
    status, body = http("GET", f"/api/v1/chargepoints/{world.cp_a}/commands", "user_a")
    assert status == 200
    (entry,) = body["res_data"]["items"]
    assert (entry["action"], entry["request"], entry["answer"]) == (
        "Reset",
        {"type": "Soft"},
        {"status": "Accepted"},
    )
    assert entry["outcome"] == "answered" and entry["user_email"] == "admin@example.com"
    assert http("GET", f"/api/v1/chargepoints/{world.cp_a}/commands", "user_b")[0] == 404


@pytest.mark.parametrize(
    ("path", "req_data"),
    [
        ("reset", {"type": "Medium"}),
        ("trigger", {"requested_message": "Coffee"}),
        ("trigger", {"requested_message": "Heartbeat", "connector_id": -1}),
        ("data-transfer", {"vendor_id": ""}),
    ],
)
def test_bad_requests_are_refused_before_any_call(world, http, path, req_data):
    status, body = http("POST", f"/api/v1/chargepoints/{world.cp_a}/{path}", "admin", req_data)
    assert status == 422 and body["res_data"]["errors"]
