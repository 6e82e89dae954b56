"""Charging sessions over a real socket: Authorize, StartTransaction, MeterValues,
StopTransaction, DataTransfer and the two status notifications are answered as OCPP 1.6
says (every answer checked against the 1.6 JSON schemas), stored once however often a
charge point resends them, and authorized by each company's tags and mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ocpp.messages import get_validator
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import (
    ChargePoint,
    Company,
    Connector,
    DataTransferMessage,
    IdTag,
    MeterValue,
    Transaction,
)
from dashboard.ocpp16.validation import parse_datetime
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.ocpp.conftest import open_socket, raw_exchange, run

BOOT = [2, "boot", "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "M"}]
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def conforms(action: str, reply: list) -> dict:
    """The CALLRESULT payload of `reply`, checked against the OCPP 1.6 schema of
    `action`'s answer (date-times checked too: the schemas' validator does not)."""
    assert reply[0] == 3, reply
    payload = reply[2]
    get_validator(3, action, "1.6").validate(payload)
    info = payload.get("idTagInfo") or {}
    if "expiryDate" in info:
        parse_datetime(info["expiryDate"])
    return payload


def session(server, *calls, identity="CP-A"):
    """Boot, then send each (action, payload); returns the replies."""

    async def scenario():
        async with open_socket(server, identity) as ws:
            await raw_exchange(ws, BOOT)
            replies = []
            for n, (action, payload) in enumerate(calls):
                replies.append(await raw_exchange(ws, [2, f"m{n}", action, payload]))
            return replies

    return run(scenario())


def meter(moment, energy_wh, power_w=None, unit="Wh", **extra):
    samples = [{"value": str(energy_wh), "unit": unit, **extra}]
    if power_w is not None:
        samples.append({"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"})
    return {"timestamp": iso(moment), "sampledValue": samples}


@pytest.fixture
def connector(app, world):
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        db.session.commit()


def rows(app, model, **filters):
    with app.app_context():
        return db.session.scalars(select(model).filter_by(**filters)).all()


def test_a_whole_charging_session(app, server, world, connector, http):
    start = {"connectorId": 1, "idTag": "card-1", "meterStart": 1000, "timestamp": iso(T0)}
    replies = session(
        server,
        ("Authorize", {"idTag": "card-1"}),
        ("StartTransaction", start),
    )
    assert conforms("Authorize", replies[0]) == {"idTagInfo": {"status": "Accepted"}}
    started = conforms("StartTransaction", replies[1])
    assert started["idTagInfo"] == {"status": "Accepted"}
    tx = started["transactionId"]
    replies = session(
        server,
        (
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [
                    meter(T0 + timedelta(minutes=1), "1.5", 11000, unit="kWh"),
                    meter(T0 + timedelta(minutes=2), 2800, 10800),
                ],
            },
        ),
        (
            "StopTransaction",
            {
                "transactionId": tx,
                "meterStop": 4000,
                "timestamp": iso(T0 + timedelta(minutes=5)),
                "idTag": "card-1",
                "transactionData": [meter(T0 + timedelta(minutes=5), 4000)],
            },
        ),
        ("DataTransfer", {"vendorId": "com.acme", "messageId": "hello", "data": "x=1"}),
        ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
        ("FirmwareStatusNotification", {"status": "Installing"}),
    )
    assert conforms("MeterValues", replies[0]) == {}
    assert conforms("StopTransaction", replies[1]) == {"idTagInfo": {"status": "Accepted"}}
    assert conforms("DataTransfer", replies[2]) == {"status": "UnknownVendorId"}
    assert conforms("DiagnosticsStatusNotification", replies[3]) == {}
    assert conforms("FirmwareStatusNotification", replies[4]) == {}

    (transaction,) = rows(app, Transaction)
    assert (transaction.id, transaction.meter_start, transaction.meter_stop) == (tx, 1000, 4000)
    assert transaction.energy_wh == 3000 and transaction.stop_reason == "Local"
    assert transaction.peak_power_w == Decimal("11000") and not transaction.active
    samples = rows(app, MeterValue, transaction_id=tx)
    energy = [s.normalised for s in samples if s.measurand == "Energy.Active.Import.Register"]
    assert energy == [Decimal("1500"), Decimal("2800"), Decimal("4000")]  # kWh in Wh
    assert [s.value for s in samples][:1] == ["1.5"]  # kept as sent too
    with app.app_context():
        plug = db.session.get(Connector, (1, world.cp_a))
        assert plug.transaction_id is None and plug.energy_wh == Decimal("4000")
        cp = db.session.get(ChargePoint, world.cp_a)
        assert (cp.diagnostics_status, cp.firmware_status) == ("Uploaded", "Installing")
    (message,) = rows(app, DataTransferMessage)
    assert (message.vendor_id, message.message_id, message.data) == ("com.acme", "hello", "x=1")
    # The API shows it, with the right energy, to its company and to nobody else.
    status, body = http("GET", f"/api/v1/transactions/{tx}", "user_a")
    assert status == 200 and body["res_data"]["energy_wh"] == 3000
    assert body["res_data"]["peak_power_w"] == "11000"
    assert len(body["res_data"]["meter_values"]) == 5
    assert http("GET", f"/api/v1/transactions/{tx}", "user_b")[0] == 404


def test_a_resent_start_gets_the_same_transaction_and_a_resent_stop_changes_nothing(
    app, server, world, connector
):
    start = {"connectorId": 1, "idTag": "card-1", "meterStart": 10, "timestamp": iso(T0)}
    first, again = session(server, ("StartTransaction", start), ("StartTransaction", start))
    tx = conforms("StartTransaction", first)["transactionId"]
    assert conforms("StartTransaction", again)["transactionId"] == tx
    stop = {
        "transactionId": tx,
        "meterStop": 510,
        "timestamp": iso(T0 + timedelta(hours=1)),
        "reason": "EVDisconnected",
        "transactionData": [meter(T0 + timedelta(hours=1), 510)],
    }
    replies = session(server, ("StopTransaction", stop), ("StopTransaction", stop))
    assert [conforms("StopTransaction", r) for r in replies] == [{}, {}]
    (transaction,) = rows(app, Transaction)
    assert (transaction.energy_wh, transaction.stop_reason) == (500, "EVDisconnected")
    assert len(rows(app, MeterValue)) == 1


def test_a_stop_for_a_transaction_never_given_is_answered_and_kept_as_an_orphan(app, server, world):
    stop = {"transactionId": 777, "meterStop": 50, "timestamp": iso(T0), "idTag": "card-9"}
    replies = session(server, ("StopTransaction", stop), ("StopTransaction", stop))
    assert conforms("StopTransaction", replies[0])["idTagInfo"]["status"] == "Accepted"
    (orphan,) = rows(app, Transaction)
    assert orphan.orphan and orphan.reported_id == 777 and orphan.cp_id == world.cp_a


def test_meter_values_without_transaction_and_on_the_main_meter(app, server, world, connector):
    replies = session(
        server,
        ("MeterValues", {"connectorId": 1, "meterValue": [meter(T0, 123, 7400)]}),
        ("MeterValues", {"connectorId": 0, "meterValue": [meter(T0, 99999)]}),
        (
            "MeterValues",
            {
                "connectorId": 1,
                "meterValue": [
                    {
                        "timestamp": iso(T0 + timedelta(seconds=30)),
                        "sampledValue": [
                            {"value": "230.1", "measurand": "Voltage", "unit": "V", "phase": "L1"},
                            {"value": "AbCdEf==", "format": "SignedData"},
                            {"value": "55", "measurand": "SoC", "unit": "Percent"},
                        ],
                    }
                ],
            },
        ),
    )
    assert all(conforms("MeterValues", r) == {} for r in replies)
    with app.app_context():
        plug = db.session.get(Connector, (1, world.cp_a))
        assert (plug.energy_wh, plug.power_w) == (Decimal("123"), Decimal("7400"))
    values = {(s.connector_id, s.measurand, s.value) for s in rows(app, MeterValue)}
    assert (0, "Energy.Active.Import.Register", "99999") in values
    assert (1, "Voltage", "230.1") in values and (1, "SoC", "55") in values
    signed = rows(app, MeterValue, format="SignedData")
    assert signed[0].value == "AbCdEf==" and signed[0].normalised is None


@pytest.fixture
def tags(app, world):
    """Company A in `list` mode with a tag of each status; company B has tag B-ONLY."""
    with app.app_context():
        db.session.get(Company, world.company_a).authorization_mode = "list"
        past, future = T0 - timedelta(days=1), datetime.now(UTC) + timedelta(days=30)
        for tag, status, expiry in (
            ("GOOD", "Accepted", future),
            ("STOLEN", "Blocked", None),
            ("OLD", "Accepted", past),
            ("BROKEN", "Invalid", None),
        ):
            db.session.add(
                IdTag(
                    company_id=world.company_a,
                    tag=tag,
                    tag_key=tag,
                    status=status,
                    expiry=expiry,
                    parent_tag="FLEET-1" if tag == "GOOD" else None,
                )
            )
        db.session.add(IdTag(company_id=world.company_b, tag="B-ONLY", tag_key="B-ONLY"))
        db.session.commit()


@pytest.mark.parametrize(
    ("tag", "status"),
    [
        ("GOOD", "Accepted"),
        ("good", "Accepted"),  # idTokens match case-insensitively
        ("STOLEN", "Blocked"),
        ("OLD", "Expired"),
        ("BROKEN", "Invalid"),
        ("NOBODY", "Invalid"),
        ("B-ONLY", "Invalid"),  # another company's tag means nothing here
    ],
)
def test_list_mode_answers_each_tag_by_its_registration(app, server, world, tags, tag, status):
    (reply,) = session(server, ("Authorize", {"idTag": tag}))
    info = conforms("Authorize", reply)["idTagInfo"]
    assert info["status"] == status
    if tag.upper() == "GOOD":
        assert info["parentIdTag"] == "FLEET-1" and "expiryDate" in info


def test_list_mode_still_gives_a_transaction_id_to_an_invalid_tag(app, server, world, tags):
    start = {"connectorId": 1, "idTag": "NOBODY", "meterStart": 0, "timestamp": iso(T0)}
    (reply,) = session(server, ("StartTransaction", start))
    payload = conforms("StartTransaction", reply)
    assert payload["idTagInfo"]["status"] == "Invalid" and payload["transactionId"] > 0
    (transaction,) = rows(app, Transaction)
    assert transaction.id_tag_status == "Invalid"


def test_open_mode_accepts_an_unknown_tag_and_remembers_it_as_seen(app, server, world):
    replies = session(
        server, ("Authorize", {"idTag": "New-Card"}), ("Authorize", {"idTag": "NEW-CARD"})
    )
    assert [conforms("Authorize", r)["idTagInfo"]["status"] for r in replies] == ["Accepted"] * 2
    (seen,) = rows(app, IdTag)
    assert (seen.tag, seen.registered, seen.company_id) == ("New-Card", False, world.company_a)
    assert seen.last_seen is not None


WHEN = "2026-01-01T00:00:00Z"
PCV = "PropertyConstraintViolation"


def _start(**changes):
    return {"connectorId": 1, "idTag": "x", "meterStart": 0, "timestamp": WHEN, **changes}


def _meter(timestamp=WHEN, **sample):
    return {
        "connectorId": 1,
        "meterValue": [{"timestamp": timestamp, "sampledValue": [{"value": "1", **sample}]}],
    }


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("StartTransaction", _start(connectorId=0), PCV),
        ("StartTransaction", _start(idTag="x" * 21), PCV),
        ("StartTransaction", _start(timestamp="soon"), PCV),
        ("StopTransaction", {"transactionId": 1, "meterStop": 2**31, "timestamp": WHEN}, PCV),
        ("MeterValues", _meter(timestamp="x"), PCV),
        ("MeterValues", _meter(unit="parsec"), PCV),
        ("Authorize", {}, "ProtocolError"),
        ("DataTransfer", {"vendorId": "v" * 256}, PCV),
        ("FirmwareStatusNotification", {"status": "Exploded"}, PCV),
    ],
)
def test_bad_input_gets_the_right_callerror(app, server, world, action, payload, code):
    (reply,) = session(server, (action, payload))
    assert reply[0] == 4 and reply[2] == code, reply


def test_a_huge_or_odd_meter_value_is_kept_as_sent_never_an_error(app, server, world, connector):
    values = [{"value": "1e30"}, {"value": "NaN"}, {"value": "-5"}, {"value": "12.3456789"}]
    (reply,) = session(
        server,
        (
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"timestamp": iso(T0), "sampledValue": values}]},
        ),
    )
    assert conforms("MeterValues", reply) == {}
    normalised = {s.value: s.normalised for s in rows(app, MeterValue)}
    assert normalised["1e30"] is None and normalised["NaN"] is None
    assert normalised["-5"] == Decimal("-5") and normalised["12.3456789"] == Decimal("12.346")
