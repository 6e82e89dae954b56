"""Boot, heartbeat and StatusNotification move what the API shows; reconnects, retries and
late messages are handled as OCPP 1.6 asks; calls to the charge point come back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import ChargePoint, ConnectorStatusHistory
from tests.ocpp.conftest import Session, open_socket, raw_exchange, run


def history(app, cp_id):
    with app.app_context():
        query = (
            select(ConnectorStatusHistory)
            .where(ConnectorStatusHistory.connector_cp_id == cp_id)
            .order_by(ConnectorStatusHistory.id)
        )
        return db.session.scalars(query).all()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_boot_stores_description_and_accepts(app, server, world, http):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            session = Session(ws, "CP-A")
            reply = await session.boot(
                charge_point_serial_number="SN-1", firmware_version="1.2.3", iccid="8931"
            )
            await session.stop()
            return reply

    reply = run(scenario())
    assert reply.status == "Accepted" and reply.interval == 60
    assert datetime.fromisoformat(reply.current_time) > datetime.now(UTC) - timedelta(minutes=1)
    _, body = http("GET", f"/api/v1/chargepoints/{world.cp_a}")
    data = body["res_data"]
    assert (data["chargepoint_vendor"], data["chargepoint_model"]) == ("Acme", "M-1")
    assert data["chargepoint_serial_number"] == "SN-1"
    assert data["chargepoint_firmware_version"] == "1.2.3"
    assert data["chargepoint_last_boot"] is not None


@pytest.mark.parametrize("registration", ["Pending", "Rejected"])
def test_boot_answers_pending_or_rejected(app, server, world, http, registration):
    http(
        "PUT",
        f"/api/v1/chargepoints/{world.cp_a}",
        req_data={"chargepoint_registration_status": registration},
    )

    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            reply = await raw_exchange(
                ws,
                [2, "b", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "M"}],
            )
            heartbeat = await raw_exchange(ws, [2, "hb", "Heartbeat", {}])
            return reply, heartbeat

    reply, heartbeat = run(scenario())
    assert reply[2]["status"] == registration
    assert reply[2]["interval"] == 60  # the wait before the next boot
    assert heartbeat[2] == "SecurityError"


def test_heartbeat_answers_time_and_updates_last_seen(app, server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            await raw_exchange(
                ws,
                [2, "b", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "M"}],
            )
            with app.app_context():
                before = db.session.get(ChargePoint, world.cp_a).last_seen
            await asyncio.sleep(0.05)
            reply = await raw_exchange(ws, [2, "h", "Heartbeat", {}])
            with app.app_context():
                after = db.session.get(ChargePoint, world.cp_a).last_seen
            return reply, before, after

    reply, before, after = run(scenario())
    assert reply[0] == 3 and reply[2]["currentTime"].endswith("Z")
    assert after > before


def test_online_while_connected_offline_after(app, server, world, http):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            _, body = http("GET", f"/api/v1/chargepoints/{world.cp_a}")
            await session.stop()
        for _ in range(50):  # the server notices the close shortly after
            _, after = http("GET", f"/api/v1/chargepoints/{world.cp_a}")
            if after["res_data"]["chargepoint_connection"] == "offline":
                break
            await asyncio.sleep(0.05)
        return body, after

    during, after = run(scenario())
    assert during["res_data"]["chargepoint_connection"] == "online"
    assert after["res_data"]["chargepoint_connection"] == "offline"


def test_stale_when_silent_longer_than_heartbeats(app, world):
    from dashboard.models.types import utcnow
    from dashboard.services.chargepoints import connection_state

    with app.app_context():
        cp = db.session.get(ChargePoint, world.cp_a)
        cp.connected_since = cp.last_seen = utcnow() - timedelta(seconds=601)
        assert connection_state(cp) == "stale"  # 300 s heartbeat × 2
        cp.last_seen = utcnow()
        assert connection_state(cp) == "online"
        cp.connected_since = None
        assert connection_state(cp) == "offline"


def test_status_notifications_move_the_connector(app, server, world, http):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            shown = []
            for status in (
                "Preparing",
                "Charging",
                "SuspendedEV",
                "Charging",
                "Finishing",
                "Available",
                "Faulted",
            ):
                error = "GroundFailure" if status == "Faulted" else "NoError"
                await session.status(1, status, error, info="plug 1")
                _, body = http("GET", f"/api/v1/connectors/chargepoint/{world.cp_a}/1")
                shown.append(
                    (body["res_data"]["connector_status"], body["res_data"]["connector_error_code"])
                )
            await session.stop()
            return shown

    shown = run(scenario())
    assert shown == [
        ("Preparing", "NoError"),
        ("Charging", "NoError"),
        ("SuspendedEV", "NoError"),
        ("Charging", "NoError"),
        ("Finishing", "NoError"),
        ("Available", "NoError"),
        ("Faulted", "GroundFailure"),
    ]
    rows = history(app, world.cp_a)
    assert {r.source for r in rows} == {"ocpp"}
    assert rows[0].previous_status is None  # the connector was registered by its first status
    assert not any(r.unexpected for r in rows)
    assert rows[-1].info == "plug 1"


def test_unknown_connector_is_registered_with_defaults(app, server, world, http):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            await session.status(3, "Unavailable")
            await session.stop()

    run(scenario())
    _, body = http("GET", f"/api/v1/connectors/chargepoint/{world.cp_a}")
    assert [
        (c["connector_id"], c["connector_status"], c["connector_enabled"], c["connector_type"])
        for c in body["res_data"]
    ] == [(3, "Unavailable", True, None)]


def test_connector_zero_sets_the_chargepoint_status(app, server, world, http):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            await session.status(0, "Unavailable", "OtherError")
            await session.stop()

    run(scenario())
    _, body = http("GET", f"/api/v1/chargepoints/{world.cp_a}")
    assert (body["res_data"]["chargepoint_status"], body["res_data"]["chargepoint_error_code"]) == (
        "Unavailable",
        "OtherError",
    )
    _, connectors = http("GET", f"/api/v1/connectors/chargepoint/{world.cp_a}")
    assert connectors["res_data"] == []


def test_older_event_goes_to_history_only(app, server, world, http):
    now = datetime.now(UTC)

    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            await session.status(1, "Charging", timestamp=iso(now))
            late = await session.status(1, "Available", timestamp=iso(now - timedelta(minutes=5)))
            await session.stop()
            return late

    assert run(scenario()) is not None  # answered {} all the same
    _, body = http("GET", f"/api/v1/connectors/chargepoint/{world.cp_a}/1")
    assert body["res_data"]["connector_status"] == "Charging"
    rows = history(app, world.cp_a)
    assert [(r.status, r.applied) for r in rows] == [("Charging", True), ("Available", False)]


def test_repeated_message_id_is_answered_without_second_row(app, server, world):
    frame = [
        2,
        "retry-1",
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Charging",
            "timestamp": iso(datetime.now(UTC)),
        },
    ]

    async def scenario():
        replies = []
        for _ in range(2):  # the same connection, then across a reconnect
            async with open_socket(server, "CP-A") as ws:
                await raw_exchange(
                    ws,
                    [
                        2,
                        "b",
                        "BootNotification",
                        {"chargePointVendor": "A", "chargePointModel": "M"},
                    ],
                )
                replies.append(await raw_exchange(ws, frame))
                replies.append(await raw_exchange(ws, frame))
        return replies

    replies = run(scenario())
    assert replies == [[3, "retry-1", {}]] * 4
    assert len(history(app, world.cp_a)) == 1


def test_reused_message_id_with_new_content_is_recorded(app, server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            await raw_exchange(
                ws,
                [2, "b", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "M"}],
            )
            for status in ("Preparing", "Charging"):
                await raw_exchange(
                    ws,
                    [
                        2,
                        f"{status}-1",
                        "StatusNotification",
                        {"connectorId": 1, "errorCode": "NoError", "status": status},
                    ],
                )
        async with open_socket(server, "CP-A") as ws:  # rebooted: ids start again
            await raw_exchange(
                ws,
                [
                    2,
                    "Preparing-1",
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Finishing"},
                ],
            )

    run(scenario())
    assert [r.status for r in history(app, world.cp_a)] == ["Preparing", "Charging", "Finishing"]


def test_unexpected_transition_is_accepted_and_flagged(app, server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            await session.status(1, "Available")
            await session.status(1, "Finishing")  # Available → Finishing is not in §4.9
            await session.stop()

    run(scenario())
    rows = history(app, world.cp_a)
    assert [(r.status, r.unexpected, r.applied) for r in rows] == [
        ("Available", False, True),
        ("Finishing", True, True),
    ]


def test_reconnect_closes_the_older_socket(app, server, world, http):
    async def scenario():
        async with open_socket(server, "CP-A") as first:
            await raw_exchange(
                first,
                [2, "b", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "M"}],
            )
            async with open_socket(server, "CP-A") as second:
                await first.wait_closed()
                reply = await raw_exchange(second, [2, "h", "Heartbeat", {}])
                _, body = http("GET", f"/api/v1/chargepoints/{world.cp_a}")
                return first.close_code, reply, body

    close_code, reply, body = run(scenario())
    assert close_code == 1000
    assert reply[0] == 3  # registration is kept per charge point, not per socket
    assert body["res_data"]["chargepoint_connection"] == "online"


class TestCallsToTheChargePoint:
    """ChangeAvailability and UnlockConnector, through the API, to a connected client."""

    def _with_client(self, server, world, http, requests, configure=None):
        async def scenario():
            async with open_socket(server, "CP-A") as ws:
                session = Session(ws, "CP-A")
                if configure:
                    configure(session.cp)
                await session.boot()
                await session.status(1, "Available")
                answers = [await asyncio.to_thread(http, *request) for request in requests]
                await session.stop()
                return answers, session.cp.received

        return run(scenario())

    def test_change_availability_of_a_connector(self, server, world, http):
        answers, received = self._with_client(
            server,
            world,
            http,
            [
                (
                    "POST",
                    "/api/v1/connectors/1/availability",
                    "admin",
                    {"connector_cp_id": world.cp_a, "type": "Inoperative"},
                )
            ],
        )
        assert answers == [(200, answers[0][1])]
        assert answers[0][1]["res_data"] == {"status": "Accepted"}
        assert received == [("ChangeAvailability", {"connector_id": 1, "type": "Inoperative"})]

    def test_change_availability_of_the_chargepoint(self, server, world, http):
        answers, received = self._with_client(
            server,
            world,
            http,
            [
                (
                    "POST",
                    f"/api/v1/chargepoints/{world.cp_a}/availability",
                    "admin",
                    {"type": "Operative"},
                )
            ],
            configure=lambda cp: setattr(cp, "availability_status", "Scheduled"),
        )
        assert answers[0][0] == 200 and answers[0][1]["res_data"] == {"status": "Scheduled"}
        assert received == [("ChangeAvailability", {"connector_id": 0, "type": "Operative"})]

    def test_inoperative_with_a_reason_is_maintenance_excluded_from_uptime(
        self, app, server, world, http
    ):
        from dashboard.extensions import db
        from dashboard.models import UptimeExclusion

        reason = {"connector_cp_id": world.cp_a, "type": "Inoperative", "reason": "New cable"}
        answers, _ = self._with_client(
            server,
            world,
            http,
            [
                ("POST", "/api/v1/connectors/1/availability", "admin", reason),
                ("POST", "/api/v1/connectors/1/availability", "admin", {**reason, "reason": ""}),
                (
                    "POST",
                    "/api/v1/connectors/1/availability",
                    "admin",
                    {"connector_cp_id": world.cp_a, "type": "Operative"},
                ),
            ],
        )
        assert [code for code, _ in answers] == [200, 422, 200]
        assert "reason" in answers[1][1]["res_data"]["errors"]
        with app.app_context():
            [row] = db.session.scalars(db.select(UptimeExclusion)).all()
            assert (row.cp_id, row.connector_id, row.cause, row.reason) == (
                world.cp_a,
                1,
                "maintenance",
                "New cable",
            )
            assert row.ends is not None and row.ends >= row.starts  # ended by Operative
            assert row.created_by.email == "admin@example.com"

    def test_unlock_connector(self, server, world, http):
        answers, received = self._with_client(
            server,
            world,
            http,
            [("POST", "/api/v1/connectors/1/unlock", "admin", {"connector_cp_id": world.cp_a})],
        )
        assert answers[0][0] == 200 and answers[0][1]["res_data"] == {"status": "Unlocked"}
        assert received == [("UnlockConnector", {"connector_id": 1})]

    def test_company_user_may_not(self, server, world, http):
        answers, received = self._with_client(
            server,
            world,
            http,
            [("POST", "/api/v1/connectors/1/unlock", "user_a", {"connector_cp_id": world.cp_a})],
        )
        assert answers[0][0] == 403 and received == []

    def test_no_answer_in_time_is_504(self, server, world, http):
        answers, _ = self._with_client(
            server,
            world,
            http,
            [
                (
                    "POST",
                    "/api/v1/connectors/1/availability",
                    "admin",
                    {"connector_cp_id": world.cp_a, "type": "Inoperative"},
                )
            ],
            configure=lambda cp: setattr(cp, "silent", True),
        )
        assert answers[0][0] == 504
        assert "did not answer" in answers[0][1]["message"]

    def test_offline_chargepoint_is_409(self, app, world, http, live_port):
        from dashboard.services.connectors import create_connector
        from dashboard.services.permissions import SYSTEM

        with app.app_context():
            create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
            db.session.commit()
        status, body = http(
            "POST", "/api/v1/connectors/1/unlock", "admin", {"connector_cp_id": world.cp_a}
        )
        assert status == 409 and body["message"] == "Charge point CP-A is offline"

    def test_invalid_type_is_422(self, server, world, http):
        answers, received = self._with_client(
            server,
            world,
            http,
            [
                (
                    "POST",
                    "/api/v1/connectors/1/availability",
                    "admin",
                    {"connector_cp_id": world.cp_a, "type": "Sideways"},
                )
            ],
        )
        assert answers[0][0] == 422 and received == []
