"""The admission reads of the OCPP handshakes: one query for every handshake that asks while
the previous read is on its way."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event

from dashboard.extensions import db
from dashboard.ocpp16 import admissions as admissions_module
from dashboard.ocpp16.admissions import AdmissionReader
from dashboard.services.chargepoints import admissions, create_chargepoint
from dashboard.services.permissions import SYSTEM
from tests.conftest import recorded_statements


def _is_admission(statement: str) -> bool:
    return "auth_key_hash" in statement and statement.lstrip().upper().startswith("SELECT")


def _wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def fleet(app, world):
    """Ten more charge points of company A: their identity and id."""
    with app.app_context():
        made = {}
        for n in range(10):
            cp = create_chargepoint(SYSTEM, identity=f"ADMIT-{n}", company_id=world.company_a)
            made[cp.identity] = cp.id
        db.session.commit()
        return made


def test_admissions_reads_the_known_identities_in_one_query(app, fleet):
    asked = [*fleet, "NOBODY-1", "NOBODY-2"]
    with recorded_statements(app) as statements, app.app_context():
        rows = admissions(asked)
    assert sorted(rows) == sorted(fleet)
    for identity, row in rows.items():
        assert row.id == fleet[identity]
        assert row.auth_key_hash is None
        assert row.registration_status == "Accepted" or row.last_boot is None
    assert len([s for s in statements if _is_admission(s)]) == 1
    with app.app_context():
        assert admissions([]) == {}


def test_handshakes_that_ask_during_a_read_share_the_next_one(app, fleet):
    """One handshake's read is held in the database; nineteen more ask meanwhile (one of
    them for an identity nobody registered): they are read in one query after it."""
    reader = AdmissionReader(app)
    entered, release = threading.Event(), threading.Event()
    with app.app_context():
        engine = db.engine

    def hold_the_first(conn, cursor, statement, *args):
        if _is_admission(statement) and not entered.is_set():
            entered.set()
            assert release.wait(10)

    results: dict[str, object] = {}

    def ask(identity: str) -> None:
        results[identity] = reader.read(identity)

    identities = [*fleet, "NOBODY"]
    first, others = identities[0], identities[1:]
    threads = [threading.Thread(target=ask, args=(first,))]
    event.listen(engine, "before_cursor_execute", hold_the_first)
    try:
        with recorded_statements(app) as statements:
            threads[0].start()
            assert entered.wait(10)
            threads += [threading.Thread(target=ask, args=(i,)) for i in others for _ in (1, 2)]
            for thread in threads[1:]:
                thread.start()
            _wait_until(lambda: reader.backlog == 2 * len(others))
            release.set()
            for thread in threads:
                thread.join(10)
    finally:
        event.remove(engine, "before_cursor_execute", hold_the_first)
    assert len([s for s in statements if _is_admission(s)]) == 2
    assert results.pop("NOBODY") is None
    assert {identity: row.id for identity, row in results.items()} == fleet


def test_a_failed_read_fails_its_handshakes_and_the_next_read_is_made(app, fleet, monkeypatch):
    reader = AdmissionReader(app)
    calls = []

    def failing_once(identities):
        identities = list(identities)
        calls.append(identities)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return admissions(identities)

    monkeypatch.setattr(admissions_module, "admissions", failing_once)
    with pytest.raises(RuntimeError, match="went away"):
        reader.read("ADMIT-1")
    assert reader.read("ADMIT-1").id == fleet["ADMIT-1"]
    assert len(calls) == 2
