"""`/live/ws`: the browser's live channel. Signed-in users only, same origin only; it sends
htmx out-of-band fragments rendered from the same partials as the pages."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from simple_websocket import ConnectionClosed
from sqlalchemy.orm import joinedload

from dashboard.extensions import db, sock
from dashboard.live.channel import LiveSocket, hub
from dashboard.models import ChargePoint, Connector
from dashboard.services import chargepoints as chargepoint_service
from dashboard.services.status import STATUSES

bp = Blueprint("live", __name__)
log = logging.getLogger(__name__)
VIEWS = ("overview", "chargepoint", "connectors")
# How often an idle socket checks that the browser is still there.
KEEPALIVE = 25.0


@bp.before_request
def admit():
    """Refuse, before the upgrade, anyone not signed in and any other site's page."""
    if not current_user.is_authenticated:
        abort(401)
    origin = request.headers.get("Origin")
    if origin is None or urlsplit(origin).netloc != request.host:
        log.warning("live channel refused for origin %r", origin)
        abort(403)


def _fragments(socket_view: str, event: dict) -> str:
    """The out-of-band fragments that bring a page of `socket_view` up to date."""
    cp_id = event["cp_id"]
    if event["type"] == "connector" and socket_view != "overview":
        key = f"connector-{cp_id}-{event['connector_id']}"
        if event["action"] == "deleted":
            return f'<tr id="{key}" hx-swap-oob="delete"></tr>'
        connector = db.session.get(
            Connector, (event["connector_id"], cp_id), options=[joinedload(Connector.chargepoint)]
        )
        if connector is None:
            return ""
        return render_template(
            "pages/_connector_row.html",
            connector=connector,
            oob=True,
            show_chargepoint=socket_view == "connectors",
            cp_online=chargepoint_service.connection_state(connector.chargepoint) != "offline",
        )
    cp = db.session.get(ChargePoint, cp_id)
    if cp is None:
        return f'<tr id="chargepoint-{cp_id}" hx-swap-oob="delete"></tr>'
    if socket_view == "overview":
        return render_template(
            "pages/_chargepoint_row.html",
            cp=cp,
            oob=True,
            counts=chargepoint_service.connector_counts([cp.id]),
            statuses=STATUSES,
            connection_state=chargepoint_service.connection_state,
        )
    if socket_view == "chargepoint":
        state = chargepoint_service.connection_state(cp)
        return (
            f'<span class="badge conn-{state}" id="connection-{cp.id}" '
            f'hx-swap-oob="true">{state}</span>'
        )
    return ""


RESYNC = '<div id="live-resync" hx-swap-oob="true" data-resync="1"></div>'


@sock.route("/live/ws", bp=bp)
def live(ws):
    """Forward the user's events as fragments until the browser goes away."""
    view = request.args.get("view") if request.args.get("view") in VIEWS else "connectors"
    cp_id = request.args.get("cp", type=int) if view == "chargepoint" else None
    user = current_user._get_current_object()
    socket = LiveSocket(user.company_id, user.is_superadmin, cp_id)
    hub.add(socket)
    try:
        while True:
            if not socket.ready.wait(KEEPALIVE):
                ws.receive(timeout=0)  # raises ConnectionClosed once the browser has gone
                continue
            pending, overflowed = socket.take()
            if overflowed:
                ws.send(RESYNC)
                continue
            parts = []
            for event in pending:
                try:
                    parts.append(_fragments(view, event))
                finally:
                    db.session.rollback()  # read-only: release the connection at once
            html = "".join(part for part in parts if part)
            if html:
                ws.send(html)
    except ConnectionClosed:
        pass
    finally:
        hub.remove(socket)
