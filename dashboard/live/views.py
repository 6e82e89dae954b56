"""`/live/ws`: the browser's live channel. Signed-in users only, same origin only; it sends
htmx out-of-band fragments rendered from the same partials as the pages."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

from flask import Blueprint, abort, get_template_attribute, render_template, request, url_for
from flask_login import current_user
from simple_websocket import ConnectionClosed
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from dashboard.extensions import among, db, reads_only, sock
from dashboard.live.channel import LiveSocket, Shown, hub
from dashboard.models import ChargePoint, Connector, Role, User
from dashboard.services import chargepoints as chargepoint_service
from dashboard.services import incidents as incident_service
from dashboard.services.status import STATUSES
from dashboard.websocket import SERVICE_RESTART, websocket_handler

bp = Blueprint("live", __name__)
log = logging.getLogger(__name__)
VIEWS = ("overview", "chargepoint", "connectors", "connector", "incidents")
# How often an idle socket checks that the browser is still there.
KEEPALIVE = 25.0


@bp.before_request
def admit():
    """Refuse, before the upgrade, anyone not signed in and any other site's page."""
    if not current_user.is_authenticated:
        abort(401)
    origin = request.headers.get("Origin")
    parts = urlsplit(origin or "")
    if (parts.scheme, parts.netloc) != (request.scheme, request.host):
        log.warning("live channel refused for origin %r", origin)
        abort(403)


def _may_see(scope: int | None, chargepoint: ChargePoint) -> bool:
    """Company policy on the charge point as it is now: `scope` None sees every company."""
    return scope is None or chargepoint.company_id == scope


def _fragments(
    socket_view: str,
    scope: int | None,
    event: dict,
    whole: bool | frozenset = True,
    stubs: bool = True,
) -> str:
    """The out-of-band fragments that bring a page of `socket_view` up to date, for a user
    who sees the charge points of company `scope` (None: every company). What is rendered
    is checked against what that user may see *now*: a row of a charge point that has
    left the user's company is removed, never rendered. `whole`, `stubs`: which connector
    rows are rendered whole, and whether the others come as stubs (`_connector_rows`)."""
    cp_id = event["cp_id"]
    if event["type"] == "incident":
        return _incident_fragments(socket_view, scope, event)
    if socket_view == "incidents":
        return ""
    if socket_view == "connector":
        # A connector's page (its status, timeline, shares and history) is reloaded
        # whole when that connector or its charge point's connection changes.
        reads_only()
        cp = db.session.get(ChargePoint, cp_id)
        if cp is None or not _may_see(scope, cp):
            return ""
        if event["type"] == "chargepoint" and event["action"] not in ROW_CHANGING_ACTIONS:
            return ""
        return RESYNC
    if event["type"] == "connector" and socket_view != "overview":
        key = f"connector-{cp_id}-{event['connector_id']}"
        delete = f'<tr id="{key}" hx-swap-oob="delete"></tr>'
        if event["action"] == "deleted":
            return delete
        reads_only()
        connector = db.session.get(
            Connector, (event["connector_id"], cp_id), options=_ROW_LOADING[scope is None]
        )
        if connector is None:
            return ""
        if not _may_see(scope, connector.chargepoint):
            return delete
        was = (event["was_status"], event["was_error_code"]) if "was_status" in event else None
        return _connector_rows(socket_view, [connector], whole, was, stubs)
    reads_only()
    cp = db.session.get(ChargePoint, cp_id)
    if cp is None or not _may_see(scope, cp):
        if socket_view == "overview":
            return f'<tr id="chargepoint-{cp_id}" hx-swap-oob="delete"></tr>'
        return ""
    if socket_view == "overview":
        return render_template(
            "pages/_chargepoint_row.html",
            cp=cp,
            oob=True,
            counts=chargepoint_service.connector_counts([cp.id]),
            statuses=STATUSES,
            connection_state=chargepoint_service.connection_state,
        )
    # Its connectors' rows show their status as current or as last known, by whether the
    # charge point is connected, and its name (and company) beside them.
    rows = ""
    if event["action"] in ROW_CHANGING_ACTIONS:
        rows = _connector_rows(
            socket_view,
            db.session.scalars(
                select(Connector)
                .where(Connector.connector_cp_id == cp.id)
                .options(*_ROW_LOADING[scope is None])
            ).all(),
            whole,
            stubs=stubs,
        )
    if socket_view == "chargepoint":
        state = chargepoint_service.connection_state(cp)
        return rows + (
            f'<span class="badge conn-{state}" id="connection-{cp.id}" '
            f'hx-swap-oob="true">{state}</span>'
        )
    return rows


def _incident_fragments(socket_view: str, scope: int | None, event: dict) -> str:
    """An incident opened, acknowledged or resolved: the pages that list incidents (the
    incidents page, a charge point's, a connector's) reload their parts; the others get
    the navigation's count of open incidents."""
    if scope is not None and event.get("company_id") != scope:
        return ""
    if socket_view in ("incidents", "chargepoint", "connector"):
        return RESYNC
    reads_only()
    count = incident_service.open_count_in(scope)
    label = f' <span class="count" aria-label="{count} open">{count}</span>' if count else ""
    return (
        f'<a id="nav-incidents" data-live-refresh hx-swap-oob="true" '
        f'href="{url_for("pages.incidents")}">Incidents{label}</a>'
    )


# What a charge point event changes in its connectors' rows too.
ROW_CHANGING_ACTIONS = frozenset({"connected", "disconnected", "updated"})


# How a connector row's objects are loaded, by whether the row shows the company's name
# (a superadmin's lists: `scope` None): built once, not for every fragment (building the
# options cost about a tenth of the live channel's CPU in a worker under load).
_ROW_LOADING = {
    True: (joinedload(Connector.chargepoint).joinedload(ChargePoint.company),),
    False: (joinedload(Connector.chargepoint).lazyload(ChargePoint.company),),
}


def _connector_rows(
    socket_view: str,
    connectors,
    whole: bool | frozenset = True,
    was: tuple | None = None,
    stubs: bool = True,
) -> str:
    """The rows of `connectors` for a page of `socket_view`: whole if `whole` is True or
    holds their connector id; else, if `stubs`, stubs, the rows' opening tags alone (what
    the list's filters look at: a browser keeps a notice of the rows that came to match
    its filters, or stopped matching, and swaps none of them in), for rows the browser
    does not show: with the read, about half a whole row's cost (371–401 µs an event
    against 638–686 µs, loops of 40 on PostgreSQL); else nothing. `was`: see
    `connector_row_tag`."""
    return "".join(
        render_template(
            "pages/_connector_row.html",
            connector=connector,
            oob=True,
            show_chargepoint=socket_view == "connectors",
            was=was,
        )
        if whole is True or connector.connector_id in whole
        else str(_row_tag()(connector, True, True, was))
        if stubs
        else ""
        for connector in connectors
    )


def _row_tag():
    """The `connector_row_tag` macro (a stub), looked up only where a stub is rendered."""
    return get_template_attribute("pages/_macros.html", "connector_row_tag")


class _Rendering:
    __slots__ = ("done", "html")

    def __init__(self):
        self.done = threading.Event()
        self.html: str | None = None


class _RenderCache:
    """Fragments already rendered in this process, by event and by what makes them differ
    between sockets (the page, the user's rights). The sockets an event wakes all ask at
    once: the first renders, the others wait for its result instead of rendering too.
    Bounded: the oldest go first."""

    def __init__(self, size: int = 2000):
        self._items: OrderedDict[tuple, _Rendering] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get_many(self, keys: list[tuple], render_many) -> list[str | None]:
        """The fragment of each key. Those no one has rendered yet are claimed and
        rendered here, all together (`render_many(indexes)` returns their fragments, in
        order); those another socket is rendering are waited for, after."""
        entries, mine = [], []
        with self._lock:
            for index, key in enumerate(keys):
                entry = self._items.get(key)
                if entry is None:
                    entry = self._items[key] = _Rendering()
                    mine.append(index)
                entries.append(entry)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        if mine:
            try:
                for index, html in zip(mine, render_many(mine), strict=True):
                    entries[index].html = html
            finally:
                for index in mine:
                    if entries[index].html is None:  # it failed: let the next one try again
                        with self._lock:
                            self._items.pop(keys[index], None)
                    entries[index].done.set()
        missing = []
        for index, entry in enumerate(entries):
            entry.done.wait()
            if entry.html is None:
                missing.append(index)
        if missing:  # its renderer failed: render it here
            for index, html in zip(missing, render_many(missing), strict=True):
                entries[index].html = html
        return [entry.html for entry in entries]


_rendered = _RenderCache()


def fragments_for(
    view: str, scope: int | None, rights: tuple, events: list[dict], shown: Shown | None = None
) -> list[str]:
    """`_fragments` of each event, rendered once per event for every socket that would
    render it alike: the same view, the same company `scope`, the same `rights` (what
    the row's controls depend on), and whether the browser shows the rows (`shown`, what
    the browser said it shows; None: everything is rendered whole). What this socket
    renders itself is read from the database in one query for all (`_prefetch`), and the
    session is given back after. An event that changes nothing the browser shows, or
    its notice, is neither read nor rendered: its fragment is empty."""
    plans = [_shows(view, shown, event) for event in events]
    sent = [index for index, (whole, stubs) in enumerate(plans) if whole or stubs]

    def render_many(indexes: list[int]) -> list[str]:
        try:
            chosen = [events[sent[index]] for index in indexes]
            loaded = _prefetch(chosen, scope) if view in ROW_VIEWS else []
            htmls = [
                _fragments(view, scope, events[sent[index]], *plans[sent[index]])
                for index in indexes
            ]
            del loaded
            return htmls
        finally:
            db.session.rollback()  # read-only: release the connection at once

    rendered = _rendered.get_many(
        [(events[index]["event_id"], view, scope, *rights, plans[index]) for index in sent],
        render_many,
    )
    fragments = [""] * len(events)
    for index, html in zip(sent, rendered, strict=True):
        fragments[index] = html
    return fragments


# Every row whole (no stubs then).
EVERY_ROW = (True, False)


def _shows(view: str, shown: Shown | None, event: dict) -> tuple[bool | frozenset, bool]:
    """Which rows `event` changes on a page of `view` are rendered whole, and whether the
    others come as stubs. On the connectors list, once the browser has said what it
    shows: a connector's row if it shows it, of a charge point's connectors those it
    shows (their connector ids); the others as stubs only where a stub could change the
    list's notice (`_may_change_notice`). On any other page, before the browser said, and
    for a deleted connector (no read, and a row on screen the server does not know of yet
    leaves too): every row whole."""
    if shown is None or view != "connectors" or event["type"] not in ("connector", "chargepoint"):
        return EVERY_ROW
    if event["type"] == "connector":
        key = (event["cp_id"], event.get("connector_id"))
        if key in shown.rows or event["action"] == "deleted":
            return EVERY_ROW
        return frozenset(), _may_change_notice(shown.filters, event)
    whole = shown.chargepoints.get(event["cp_id"], frozenset())
    return whole, _may_change_notice(shown.filters, event)


# The list's filters a status event changes a row's match on (live.js `matches`); what the
# others look at (type, enabled, company, the text) is the same before and after it.
STATUS_FILTERS = frozenset({"status", "error_code"})


def _may_change_notice(filters: dict | None, event: dict) -> bool:
    """Whether the stub of a row the browser does not show could change its list's notice
    (static/js/live.js counts a row not on screen as "new matching" when its status event
    made it match the list's filters, and forgets it once it matches no more): for a
    status event, when it made the row match or stop matching the status and error code
    filters (a connector it created: when it matches them); for any other change (a
    connection, an edit, a meter value), only when the list filters on anything else.
    On an unfiltered list no stub is needed but a new connector's. A browser that did not
    say its filters gets every stub, as before."""
    if filters is None:
        return True
    if event["type"] == "connector" and "was_status" in event:
        now = _matches(filters, event["status"], event["error_code"])
        if event["was_status"] == "":
            return now
        return now != _matches(filters, event["was_status"], event["was_error_code"])
    return not STATUS_FILTERS.issuperset(filters)


def _matches(filters: dict, status: str, error_code: str) -> bool:
    return filters.get("status", status) == status and (
        filters.get("error_code", error_code) == error_code
    )


# The most rows a browser may say it shows (a page of the list has 50).
MAX_SHOWN = 1000
_ROW_ID = re.compile(r"connector-([0-9]{1,18})-([0-9]{1,18})")


def shown_rows(message: str) -> Shown:
    """What a browser's message `{"shown": ["connector-<cp>-<n>", ...], "filters": {name:
    value}}` says it shows (`filters`, the list's filters, may be left out); ValueError,
    with the reason, for anything else."""
    try:
        told = json.loads(message)
        ids = told["shown"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError('expected {"shown": [row ids]}') from exc
    if not isinstance(ids, list) or len(ids) > MAX_SHOWN:
        raise ValueError(f'"shown" must be a list of at most {MAX_SHOWN} row ids')
    rows = set()
    for row_id in ids:
        found = _ROW_ID.fullmatch(row_id) if isinstance(row_id, str) else None
        if found is None:
            raise ValueError(f"not a connector row id: {str(row_id)[:60]!r}")
        rows.add((int(found[1]), int(found[2])))
    by_chargepoint: dict[int, set] = {}
    for cp_id, connector_id in rows:
        by_chargepoint.setdefault(cp_id, set()).add(connector_id)
    return Shown(
        frozenset(rows),
        {cp_id: frozenset(ids) for cp_id, ids in by_chargepoint.items()},
        _filters(told.get("filters")),
    )


MAX_FILTERS = 16
_FILTER_NAME = re.compile(r"[a-z_]{1,32}")


def _filters(told: object) -> dict | None:
    """The list filters a browser said (name: value; those left empty are dropped, values
    trimmed as live.js compares them); None if it said none."""
    if told is None:
        return None
    if not isinstance(told, dict) or len(told) > MAX_FILTERS:
        raise ValueError(f'"filters" must be an object of at most {MAX_FILTERS} filters')
    filters = {}
    for name, value in told.items():
        if not _FILTER_NAME.fullmatch(name) or not isinstance(value, str) or len(value) > 200:
            raise ValueError(f"not a filter: {str(name)[:40]!r}")
        if wanted := value.strip():
            filters[name] = wanted
    return filters


def _read_browser(ws, socket: LiveSocket, user_id: int) -> None:
    """Take what the browser sent (what it shows, after each change of its page); raises
    ConnectionClosed once it has gone. A message that makes no sense is logged, and the
    socket goes back to rendering every row whole."""
    while (message := ws.receive(timeout=0)) is not None:
        try:
            socket.shown = shown_rows(message)
        except ValueError as exc:
            log.warning("live socket of user %s: message ignored (%s)", user_id, exc)
            socket.shown = None


# The views whose fragment for a connector event is the connector's row.
ROW_VIEWS = frozenset({"connectors", "chargepoint"})


def _prefetch(events: list[dict], scope: int | None) -> list[Connector]:
    """The connectors that the connector events among `events` are about (with the others
    of their charge points), their charge points and, for a superadmin (`scope` None, whose
    rows show it), their companies, read in one query: their fragments then render from
    the session. Returned, to be kept while they render (the identity map holds only what
    something refers to). One such event is read by its own fragment, in one query too."""
    about = [
        event["cp_id"]
        for event in events
        if event["type"] == "connector" and event["action"] != "deleted"
    ]
    if len(about) < 2:
        return []
    cp_ids = set(about)
    reads_only()
    return db.session.scalars(
        select(Connector)
        .where(among(Connector.connector_cp_id, cp_ids))
        .options(*_ROW_LOADING[scope is None])
    ).all()


def account_state(user_id: int) -> tuple | None:
    """What a live socket's access rests on: whether the user is active, their company,
    role and rights, and their sessions (the session token). None when the user is gone."""
    row = db.session.execute(
        select(
            User.active,
            User.company_id,
            User.role_id,
            User.session_token,
            Role.all_companies,
            Role.permissions,
        )
        .join(Role, User.role_id == Role.id)
        .where(User.id == user_id)
    ).first()
    return None if row is None else tuple(row)


# A socket closed because its user's account changed; the browser reconnects, and is
# admitted (or not) for the account as it is now.
ACCOUNT_CHANGED = 4001


RESYNC = '<div id="live-resync" hx-swap-oob="true" data-resync="1"></div>'


@sock.route("/live/ws", bp=bp)
@websocket_handler
def live(ws):
    """Forward the user's events as fragments until the browser goes away."""
    view = request.args.get("view") if request.args.get("view") in VIEWS else "connectors"
    cp_id = request.args.get("cp", type=int) if view in ("chargepoint", "connector") else None
    user = current_user._get_current_object()
    socket = LiveSocket(user.company_id, user.is_superadmin, cp_id, user.id)
    if view == "connector":
        socket.connector_id = request.args.get("connector", type=int)
    rights = (user.can("update.connector"), user.can("delete.connector"))
    admitted = account_state(user.id)
    # The user as admitted, kept loaded out of the session: each fragment below ends with
    # a rollback, which would expire them, and the row templates read the role
    # (`current_user.is_superadmin`, `.can`): a query for every fragment rendered. An
    # account changed meanwhile closes the socket (`recheck`).
    db.session.expunge(user.role)
    db.session.expunge(user)
    # Loading the user opened a transaction: give its connection back to the pool, or a
    # few dozen open browsers would hold every database connection of this process.
    db.session.rollback()
    hub.add(socket)
    try:
        while True:
            if not socket.ready.wait(KEEPALIVE):
                _read_browser(ws, socket, user.id)  # raises ConnectionClosed once gone
                socket.recheck = True  # and, should an announcement have been missed
            if socket.closing:  # the process is stopping: the browser comes back elsewhere
                ws.close(reason=SERVICE_RESTART, message="service restart")
                return
            if socket.recheck:
                socket.recheck = False
                try:
                    reads_only()
                    changed = account_state(user.id) != admitted
                finally:
                    db.session.rollback()
                if changed:
                    log.info("live socket of user %s closed: the account changed", user.id)
                    ws.close(reason=ACCOUNT_CHANGED, message="account changed")
                    return
            _read_browser(ws, socket, user.id)
            pending, overflowed = socket.take()
            if overflowed:
                ws.send(RESYNC)
                continue
            parts = fragments_for(view, socket.scope, rights, pending, socket.shown)
            html = "".join(part for part in parts if part)
            if html:
                ws.send(html)
    except ConnectionClosed:
        pass
    finally:
        hub.remove(socket)
