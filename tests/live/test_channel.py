"""The live channel: who gets which events, newest-wins queues, and admission."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from dashboard.live import events
from dashboard.live.channel import MAX_PENDING, Hub, LiveSocket
from tests.conftest import PASSWORD


def event(cp_id, company_id, connector_id=1, status="Charging"):
    return {
        "type": "connector",
        "action": "updated",
        "cp_id": cp_id,
        "company_id": company_id,
        "connector_id": connector_id,
        "status": status,
    }


def test_company_policy_decides_who_gets_an_event():
    hub = Hub()
    mine, other, admin = LiveSocket(1, False), LiveSocket(2, False), LiveSocket(None, True)
    page_of_cp = LiveSocket(1, False, cp_id=7)
    for socket in (mine, other, admin, page_of_cp):
        hub.add(socket)
    hub.dispatch(event(5, 1))
    assert [len(s.take()[0]) for s in (mine, other, admin, page_of_cp)] == [1, 0, 1, 0]
    hub.dispatch(event(7, 1))
    assert len(page_of_cp.take()[0]) == 1
    admin.take()
    hub.dispatch({"type": "token.other"})  # the bus carries more than pages show
    assert not admin.ready.is_set() and admin.take()[0] == []


def test_an_account_change_wakes_every_socket_to_check_its_user():
    hub = Hub()
    sockets = [LiveSocket(1, False, user_id=1), LiveSocket(None, True, user_id=2)]
    for socket in sockets:
        hub.add(socket)
    hub.dispatch({"type": "auth"})
    assert all(s.recheck and s.ready.is_set() and s.take()[0] == [] for s in sockets)


def test_a_charge_point_leaving_the_company_is_still_sent_to_it_to_be_removed():
    mine = LiveSocket(1, False)
    moved = {**event(5, 2), "type": "chargepoint", "previous_company_id": 1}
    assert mine.wants(moved) and not LiveSocket(3, False).wants(moved)


def test_redis_coming_back_makes_every_socket_reload():
    hub = Hub()
    socket = LiveSocket(1, False)
    hub.add(socket)
    socket.offer(event(5, 1))
    hub.dispatch({"type": events.BUS_RESUMED})
    assert socket.take() == ([], True)


def test_newest_event_per_connector_wins():
    socket = LiveSocket(1, False)
    for status in ("Preparing", "Charging", "Finishing"):
        socket.offer(event(5, 1, status=status))
    socket.offer(event(5, 1, connector_id=2))
    pending, overflowed = socket.take()
    assert [e["status"] for e in pending] == ["Finishing", "Charging"] and not overflowed
    assert not socket.ready.is_set()


def test_a_flooded_socket_is_told_to_reload():
    socket = LiveSocket(None, True)
    for n in range(MAX_PENDING + 1):
        socket.offer(event(n, 1))
    pending, overflowed = socket.take()
    assert overflowed and len(pending) <= MAX_PENDING


def test_the_bus_reaches_the_hub():
    hub = Hub()
    socket = LiveSocket(3, False)
    hub.add(socket)
    try:
        events.publish(event(9, 3))
        assert socket.take()[0][0]["cp_id"] == 9
    finally:
        hub.remove(socket)


def _signed_in_cookie(port: int, email: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://127.0.0.1:{port}/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": token})
    opener.open(f"http://127.0.0.1:{port}/login", data=data.encode())
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def _status(port: int, headers: dict) -> int:
    async def attempt():
        try:
            async with connect(
                f"ws://127.0.0.1:{port}/live/ws?view=overview",
                additional_headers=headers,
                proxy=None,
                open_timeout=5,
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(attempt())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_admission(live_port, world):
    site = f"http://127.0.0.1:{live_port}"
    assert _status(live_port, {"Origin": site}) == 401
    cookie = _signed_in_cookie(live_port, "a@example.com")
    assert _status(live_port, {"Cookie": cookie, "Origin": "http://evil.example"}) == 403
    assert _status(live_port, {"Cookie": cookie}) == 403
    secure_twin = f"https://127.0.0.1:{live_port}"  # same host, another origin
    assert _status(live_port, {"Cookie": cookie, "Origin": secure_twin}) == 403
    assert _status(live_port, {"Cookie": cookie, "Origin": site}) == 101


def test_an_event_is_rendered_once_for_every_socket_that_shows_it_alike():
    import threading
    import time

    from dashboard.live.views import _RenderCache

    cache, calls = _RenderCache(size=10), []

    def render(indexes):
        calls.append(len(indexes))
        time.sleep(0.05)  # the other sockets ask while it renders
        return ["<tr>row</tr>"] * len(indexes)

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(cache.get_many([("e1", "connectors")], render))
        )
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == [["<tr>row</tr>"]] * 20
    assert calls == [1]
    other = cache.get_many([("e1", "chargepoint")], lambda indexes: ["other"])  # another page
    assert other == ["other"]


def test_a_socket_renders_what_no_one_has_together_and_waits_for_the_rest():
    """Socket B asks for events 1 to 3 while socket A renders 2: B renders 1 and 3 in one
    call (one read of the database for both), then takes A's 2."""
    import threading

    from dashboard.live.views import _RenderCache

    cache, started, release = _RenderCache(size=10), threading.Event(), threading.Event()
    calls = []

    def slow(indexes):
        calls.append(("A", indexes))
        started.set()
        release.wait(5)
        return ["two"]

    a = threading.Thread(target=lambda: cache.get_many([("e2", "v")], slow))
    a.start()
    started.wait(5)
    keys = [("e1", "v"), ("e2", "v"), ("e3", "v")]
    got = []

    def b():
        got.append(
            cache.get_many(
                keys,
                lambda indexes: calls.append(("B", indexes)) or [f"e{i + 1}" for i in indexes],
            )
        )

    thread = threading.Thread(target=b)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive()  # waiting for A's render of e2
    release.set()
    thread.join(5)
    a.join(5)
    assert got == [["e1", "two", "e3"]]
    assert calls == [("A", [0]), ("B", [0, 2])]


def test_a_failed_render_is_tried_again_and_the_cache_stays_bounded():
    from dashboard.live.views import _RenderCache

    cache = _RenderCache(size=3)

    def fails(indexes):
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        cache.get_many([("e1", "v")], fails)
    assert cache.get_many([("e1", "v")], lambda indexes: ["ok"]) == ["ok"]
    for n in range(10):
        cache.get_many([(f"e{n + 2}", "v")], lambda indexes: ["x"])
    assert len(cache._items) == 3


def _rendered(app, user_id: int, events_: list[dict], shown=None) -> tuple[list[str], list[str]]:
    """What the connectors list's live socket of user `user_id` renders for `events_` (the
    browser showing `shown`), and the SQL statements it ran: the user loaded and then kept
    out of the session, as the socket does."""
    from flask_login import login_user

    from dashboard.extensions import db
    from dashboard.live.views import fragments_for
    from dashboard.models import User
    from tests.conftest import recorded_statements

    with app.test_request_context("/live/ws"):
        user = db.session.get(User, user_id)
        scope = LiveSocket(user.company_id, user.is_superadmin).scope
        rights = (user.can("update.connector"), user.can("delete.connector"))
        db.session.expunge(user.role)
        db.session.expunge(user)
        db.session.rollback()
        login_user(user)
        with recorded_statements(app) as statements:
            html = fragments_for("connectors", scope, rights, events_, shown)
        return html, statements


def test_live_rows_show_the_company_to_a_superadmin_only_and_cost_one_read_a_batch(app, world):
    """The rows of a batch of events are read in one query (with the charge points, and
    their companies only for a superadmin, whose list shows the company column)."""
    import uuid

    from dashboard.extensions import db
    from dashboard.services.connectors import create_connector
    from dashboard.services.permissions import SYSTEM

    with app.app_context():
        for cp_id in (world.cp_a, world.cp_b):
            for number in (1, 2):
                create_connector(SYSTEM, connector_id=number, connector_cp_id=cp_id, source="test")
        db.session.commit()

    def batch(*keys):
        return [
            {**event(cp_id, company, number), "event_id": uuid.uuid4().hex}
            for cp_id, company, number in keys
        ]

    both = batch((world.cp_a, world.company_a, 1), (world.cp_b, world.company_b, 2))
    html, statements = _rendered(app, world.admin, both)
    assert [f'id="connector-{world.cp_a}-1"' in html[0], "Company A" in html[0]] == [True, True]
    assert [f'id="connector-{world.cp_b}-2"' in html[1], "Company B" in html[1]] == [True, True]
    assert len(statements) == 1, statements

    mine = batch((world.cp_a, world.company_a, 1), (world.cp_a, world.company_a, 2))
    html, statements = _rendered(app, world.user_a, mine)
    for number, row in zip((1, 2), html, strict=True):
        assert f'id="connector-{world.cp_a}-{number}"' in row
    assert not any("Company A" in row for row in html)  # no company column for a user
    assert len(statements) == 1, statements
    assert "companies" not in statements[0]  # and no company read for it

    html, statements = _rendered(app, world.user_a, batch((world.cp_a, world.company_a, 2)))
    assert f'id="connector-{world.cp_a}-2"' in html[0]
    assert len(statements) == 1, statements


def test_what_a_browser_says_it_shows_is_read_strictly():
    from dashboard.live.views import MAX_SHOWN, shown_rows

    shown = shown_rows('{"shown": ["connector-12-1", "connector-12-2", "connector-7-1"]}')
    assert shown.rows == {(12, 1), (12, 2), (7, 1)}
    assert shown.chargepoints == {12: {1, 2}, 7: {1}}
    assert shown_rows('{"shown": []}').rows == frozenset()
    too_many = json.dumps({"shown": ["connector-1-1"] * (MAX_SHOWN + 1)})
    for message, reason in (
        ("not json", "expected"),
        ("[1, 2]", "expected"),
        ('{"rows": []}', "expected"),
        ('{"shown": "connector-1-1"}', "list"),
        (too_many, "at most"),
        ('{"shown": ["chargepoint-1"]}', "not a connector row id"),
        ('{"shown": [12]}', "not a connector row id"),
        ('{"shown": ["connector-1-1 "]}', "not a connector row id"),
    ):
        with pytest.raises(ValueError, match=reason):
            shown_rows(message)


def test_what_a_browser_says_of_its_filters_is_read_strictly():
    from dashboard.live.views import MAX_FILTERS, shown_rows

    assert shown_rows('{"shown": []}').filters is None  # a page that does not say them
    told = shown_rows('{"shown": [], "filters": {"status": " Charging ", "q": "", "type": "CCS"}}')
    assert told.filters == {"status": "Charging", "type": "CCS"}  # trimmed, empty ones dropped
    assert shown_rows('{"shown": [], "filters": {}}').filters == {}
    too_many = json.dumps({"shown": [], "filters": {f"f_{n}": "x" for n in range(MAX_FILTERS + 1)}})
    for filters, reason in (
        ("[]", "an object"),
        ('"status"', "an object"),
        (too_many.split('"filters": ')[1][:-1], "an object"),
        ('{"Status": "Charging"}', "not a filter"),
        ('{"status": 1}', "not a filter"),
        ('{"status": null}', "not a filter"),
        ('{"q": "' + "x" * 201 + '"}', "not a filter"),
    ):
        with pytest.raises(ValueError, match=reason):
            shown_rows('{"shown": [], "filters": ' + filters + "}")


def test_a_list_that_says_its_filters_gets_only_the_stubs_that_change_its_notice(app, world):
    """A row the browser does not show comes as a stub only when it could change the
    list's notice: a status event that made it match the filters or stop matching, a
    connector new to the list that matches them; any other change only when the list
    filters on something a status event does not change. What needs no stub is neither
    read nor rendered. Rows shown, and deletions, come as before."""
    import uuid

    from dashboard.extensions import db
    from dashboard.live.channel import Shown
    from dashboard.services.connectors import create_connector
    from dashboard.services.permissions import SYSTEM

    with app.app_context():
        for number in (1, 2):
            create_connector(SYSTEM, connector_id=number, connector_cp_id=world.cp_a, source="test")
        db.session.commit()

    def status(number, now, was, error=("NoError", "NoError")):
        return {
            **event(world.cp_a, world.company_a, number, now),
            "error_code": error[1],
            "was_status": was,
            "was_error_code": error[0] if was else "",
        }

    changes = {
        "to charging": status(2, "Charging", "Available"),
        "to faulted": status(2, "Faulted", "Charging", ("NoError", "GroundFailure")),
        "new": status(2, "Available", ""),
        "meter value": event(world.cp_a, world.company_a, 2),
        "connected": {
            "type": "chargepoint",
            "action": "connected",
            "cp_id": world.cp_a,
            "company_id": world.company_a,
        },
        "deleted": {**event(world.cp_a, world.company_a, 2), "action": "deleted"},
    }

    def sent(filters):
        shown = Shown(frozenset({(world.cp_a, 1)}), {world.cp_a: frozenset({1})}, filters)
        batch = [{**change, "event_id": uuid.uuid4().hex} for change in changes.values()]
        html, statements = _rendered(app, world.user_a, batch, shown)
        outcome = {}
        for name, fragment in zip(changes, html, strict=True):
            stub = re.search(rf'<tr id="connector-{world.cp_a}-2"[^>]*data-stub></tr>', fragment)
            whole_row_1 = f'id="connector-{world.cp_a}-1"' in fragment and "<td" in fragment
            outcome[name] = ("stub" if stub else "") + ("+row 1" if whole_row_1 else "")
            if "delete" in fragment:
                outcome[name] = "delete"
            elif fragment and not outcome[name]:
                outcome[name] = fragment
        return outcome, statements

    unfiltered, statements = sent({})
    assert unfiltered == {
        "to charging": "",
        "to faulted": "",
        "new": "stub",
        "meter value": "",
        "connected": "+row 1",
        "deleted": "delete",
    }
    # read: the new connector; the charge point and its connectors (nothing for the rest)
    assert len(statements) == 3, statements
    assert sent({"status": "Charging"})[0] == {
        "to charging": "stub",  # came to match
        "to faulted": "stub",  # stopped matching
        "new": "",  # new, and not matching
        "meter value": "",
        "connected": "+row 1",
        "deleted": "delete",
    }
    assert sent({"error_code": "GroundFailure"})[0]["to charging"] == ""
    assert sent({"error_code": "GroundFailure"})[0]["to faulted"] == "stub"
    # the text (a charge point's name) may change in an edit or a connection event
    assert sent({"status": "Charging", "q": "one"})[0] == {
        "to charging": "stub",
        "to faulted": "stub",
        "new": "",
        "meter value": "stub",
        "connected": "stub+row 1",
        "deleted": "delete",
    }
    # a page that does not say its filters gets every stub, as before
    assert set(sent(None)[0].values()) == {"stub", "stub+row 1", "delete"}

    # nothing to send: nothing read
    quiet = [
        {**changes[name], "event_id": uuid.uuid4().hex} for name in ("to charging", "meter value")
    ]
    shown = Shown(frozenset({(world.cp_a, 1)}), {world.cp_a: frozenset({1})}, {})
    html, statements = _rendered(app, world.user_a, quiet, shown)
    assert html == ["", ""] and statements == []


def test_rows_a_browser_does_not_show_are_sent_as_stubs(app, world):
    """Once the browser has said which rows its list shows, the others come as their
    opening tags alone (what its filters look at), a charge point's connection change
    too; shown rows, and every row for a browser that has not said, are whole."""
    import uuid

    from dashboard.extensions import db
    from dashboard.live.channel import Shown
    from dashboard.services.connectors import create_connector
    from dashboard.services.permissions import SYSTEM

    with app.app_context():
        for number in (1, 2):
            create_connector(SYSTEM, connector_id=number, connector_cp_id=world.cp_a, source="test")
        db.session.commit()

    def batch():
        connectors = [
            {**event(world.cp_a, world.company_a, number), "event_id": uuid.uuid4().hex}
            for number in (1, 2)
        ]
        connected = {
            "type": "chargepoint",
            "action": "connected",
            "cp_id": world.cp_a,
            "company_id": world.company_a,
            "event_id": uuid.uuid4().hex,
        }
        return [*connectors, connected]

    shown = Shown(frozenset({(world.cp_a, 1)}), {world.cp_a: frozenset({1})})
    one, two, connected = _rendered(app, world.user_a, batch(), shown)[0]
    assert f'id="connector-{world.cp_a}-1"' in one and "<td" in one and "data-stub" not in one
    assert f'id="connector-{world.cp_a}-2"' in two and "data-stub" in two and "<td" not in two
    assert 'data-status="Available"' in two and 'data-search="cp-a a one"' in two
    assert 'hx-swap-oob="true"' in two
    # its connection changed: the row shown comes whole, the other as a stub
    assert connected.count("data-stub") == 1 and connected.count("<td") > 0
    assert re.search(rf'id="connector-{world.cp_a}-2"[^>]*data-stub></tr>', connected)

    hidden = Shown(frozenset({(world.cp_b, 1)}), {world.cp_b: frozenset({1})})
    one, two, connected = _rendered(app, world.user_a, batch(), hidden)[0]
    for html in (one, two, connected):
        assert "data-stub" in html and "<td" not in html
    assert connected.count("data-stub") == 2

    for html in _rendered(app, world.user_a, batch(), None)[0]:
        assert "<td" in html and "data-stub" not in html


def test_a_status_event_says_what_the_connector_was_and_its_rows_carry_it(app, world):
    """A list tells a row that came to match its filters from one that matched already
    (and is on another page) by what the connector was before the status event."""
    import uuid

    from dashboard.extensions import db
    from dashboard.live.channel import Shown
    from dashboard.models import Connector
    from dashboard.services.connectors import apply_status, create_connector
    from dashboard.services.permissions import SYSTEM

    heard = []
    unsubscribe = events.subscribe(heard.append)
    try:
        with app.app_context():
            create_connector(
                SYSTEM,
                connector_id=1,
                connector_cp_id=world.cp_a,
                connector_status="Charging",
                source="api",
            )
            db.session.commit()
            heard.clear()
            connector = db.session.get(Connector, (1, world.cp_a))
            apply_status(connector, status="Faulted", error_code="GroundFailure", source="ocpp")
            db.session.commit()
    finally:
        unsubscribe()
    (changed,) = [e for e in heard if e["type"] == "connector"]
    assert (changed["was_status"], changed["was_error_code"]) == ("Charging", "NoError")
    assert (changed["status"], changed["error_code"]) == ("Faulted", "GroundFailure")

    hidden = Shown(frozenset(), {})
    for shown in (hidden, None):  # as a stub and as a whole row
        batch = [{**changed, "event_id": uuid.uuid4().hex}]
        (html,) = _rendered(app, world.user_a, batch, shown)[0]
        assert 'data-was-status="Charging" data-was-error-code="NoError"' in html
        assert 'data-status="Faulted"' in html
