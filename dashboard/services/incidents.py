"""Incidents: a connector faulted, a charge point offline, a connector unavailable that no
operator made so, a charge point that keeps reconnecting.

A condition is recorded the moment it begins, as a *pending* incident, in the transaction
of the change that began it (a StatusNotification, a disconnection); it is deleted if the
condition ends within its rule's hold-down, and opened by the sweep once the hold-down has
passed. So a charger that reconnects at once, or a connector that recovers within the
hold-down, opens nothing, and everything is in the database: a restart loses nothing.

The unique index on (kind, subject) of unresolved incidents makes a second row for the
same condition impossible, whichever process or host sees it; inserts that would make one
are skipped (ON CONFLICT DO NOTHING). The sweep runs in every web worker, but only one
process at a time gets through (a PostgreSQL advisory lock; SQLite has one worker).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm.attributes import set_committed_value

from dashboard.extensions import (
    among,
    db,
    insert_all,
    insert_ignoring_duplicates,
    try_transaction_lock,
    unnest,
)
from dashboard.live.events import publish_after_commit
from dashboard.models import (
    ChargePoint,
    Command,
    Company,
    ConnectivityEvent,
    Incident,
    IncidentRule,
    User,
)
from dashboard.models.incident import KINDS
from dashboard.models.types import UTCDateTime, utcnow
from dashboard.services import outbox, uptime
from dashboard.services.errors import Conflict, Invalid, NotFound
from dashboard.services.pagination import Page, paginate
from dashboard.services.permissions import require
from dashboard.services.visibility import company_scope, scoped

log = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key of the sweep ("PBSWEEP").
SWEEP_LOCK = 0x5042535745455000


@dataclass(frozen=True)
class Rule:
    kind: str
    enabled: bool
    seconds: int  # hold-down, or the flapping window
    threshold: int | None = None  # flapping: more connections than this in the window

    @classmethod
    def of(cls, row: IncidentRule) -> Rule:
        return cls(row.kind, row.enabled, row.seconds, row.threshold)


DEFAULT_RULES = {
    "faulted": Rule("faulted", True, 120),
    "offline": Rule("offline", True, 300),
    "unavailable": Rule("unavailable", True, 600),
    "flapping": Rule("flapping", True, 3600, 5),
}
RULE_LABELS = {
    "faulted": "Connector Faulted",
    "offline": "Charge point offline or stale",
    "unavailable": "Connector Unavailable (not set by an operator)",
    "flapping": "Charge point reconnecting",
}
# A Faulted/NoError this soon after a BootNotification is a charger's self-test: ignored.
BOOT_GRACE = timedelta(seconds=120)


# --- rules ------------------------------------------------------------------------------


class _Rules:
    """Every company's rules, read once per sweep."""

    def __init__(self):
        self.defaults = dict(DEFAULT_RULES)
        self.overrides: dict[tuple[int, str], Rule] = {}
        for row in db.session.scalars(select(IncidentRule)):
            rule = Rule.of(row)
            if row.company_id is None:
                self.defaults[row.kind] = rule
            else:
                self.overrides[(row.company_id, row.kind)] = rule

    def get(self, company_id: int, kind: str) -> Rule:
        return self.overrides.get((company_id, kind)) or self.defaults[kind]

    def shortest(self) -> dict[str, int]:
        """For each kind, the shortest hold-down of its enabled rules (a kind no company
        has enabled is left out): a pending incident younger than it cannot be due."""
        shortest: dict[str, int] = {}
        for rule in (*self.defaults.values(), *self.overrides.values()):
            if rule.enabled:
                shortest[rule.kind] = min(rule.seconds, shortest.get(rule.kind, rule.seconds))
        return shortest


def rule_rows(user: User) -> tuple[dict[str, Rule], list[tuple[Company, str, Rule]]]:
    """For the settings page: the defaults, and every company override."""
    require(user, "update.incident_rule")
    defaults = _Rules().defaults
    rows = db.session.execute(
        select(Company, IncidentRule)
        .join(IncidentRule, IncidentRule.company_id == Company.id)
        .order_by(Company.name, IncidentRule.kind)
    )
    overrides = [(company, row.kind, Rule.of(row)) for company, row in rows]
    return defaults, overrides


def set_rule(
    user: User,
    kind: str,
    *,
    company_id: int | None,
    enabled: bool,
    seconds: int,
    threshold: int | None = None,
) -> Rule:
    """Set the default rule of `kind` (company_id None) or a company's override."""
    require(user, "update.incident_rule")
    if kind not in KINDS:
        raise NotFound(f"No incident rule {kind!r}")
    if not 0 < seconds <= 7 * 86400:
        raise Invalid("Invalid rule", {"seconds": ["Between 1 second and 7 days."]})
    if kind == "flapping" and (threshold is None or not 0 < threshold <= 1000):
        raise Invalid("Invalid rule", {"threshold": ["Between 1 and 1000 connections."]})
    if company_id is not None and db.session.get(Company, company_id) is None:
        raise NotFound(f"Company {company_id} not found")
    row = db.session.scalar(
        select(IncidentRule).where(
            IncidentRule.kind == kind,
            IncidentRule.company_id.is_(None)
            if company_id is None
            else IncidentRule.company_id == company_id,
        )
    )
    if row is None:
        row = IncidentRule(kind=kind, company_id=company_id)
        db.session.add(row)
    row.enabled = enabled
    row.seconds = seconds
    row.threshold = threshold if kind == "flapping" else None
    db.session.flush()
    return Rule(kind, enabled, seconds, row.threshold)


def remove_override(user: User, kind: str, company_id: int) -> None:
    """A company goes back to the default rule of `kind`."""
    require(user, "update.incident_rule")
    db.session.execute(
        delete(IncidentRule).where(IncidentRule.kind == kind, IncidentRule.company_id == company_id)
    )


# --- conditions begin and end -------------------------------------------------------------


def _subject(cp_id: int, connector_id: int | None = None) -> str:
    """What a condition is about: a charge point ("12") or one of its connectors ("12/1")."""
    return str(cp_id) if connector_id is None else f"{cp_id}/{connector_id}"


def _condition(
    kind, company_id, cp_id, connector_id, since, error_code=None, detail=None, opened_at=None
) -> dict:
    """The incident row of condition `kind` of a charge point (`connector_id` None) or a
    connector, begun at `since`: pending, or open at `opened_at`."""
    return {
        "kind": kind,
        "state": "pending" if opened_at is None else "open",
        "subject": _subject(cp_id, connector_id),
        "company_id": company_id,
        "cp_id": cp_id,
        "connector_id": connector_id,
        "since": since,
        "opened_at": opened_at,
        "error_code": error_code,
        "detail": detail,
    }


def _begin(
    kind, company_id, cp_id, connector_id, since, error_code=None, detail=None, opened_at=None
) -> None:
    """Record that condition `kind` of a charge point or connector began at `since`:
    pending, or open at `opened_at`. Nothing if it is recorded already."""
    row = _condition(kind, company_id, cp_id, connector_id, since, error_code, detail, opened_at)
    inserted = db.session.execute(
        insert_ignoring_duplicates(Incident).values(**row).returning(Incident.id)
    ).scalar()
    if inserted is not None and opened_at is not None:
        _announce([inserted], "opened")


def _end(kind: str, subject: str, at: datetime) -> None:
    """The condition `kind` of `subject` ended at `at`: a pending incident is forgotten,
    an open one is resolved."""
    _end_all(kind, {subject: at})


# A charge point connected and not stale (the sweep's reads).
_CONNECTED_NOT_STALE = (ChargePoint.connected_since.is_not(None), ChargePoint.stale_since.is_(None))


def _end_all(
    kind: str,
    ended: dict[str, datetime],
    begun_before: datetime | None = None,
    recurrences: dict[str, int] | None = None,
) -> None:
    """`_end` for many subjects (each with the time its condition ended) at once: one
    DELETE of the pending incidents and one UPDATE of the open ones (a fleet back after an
    outage ends thousands of pending offline conditions in a sweep).

    For a caller that read what ended (the sweep) and writes a moment later, when a
    charge point may have gone again in between: `begun_before`, only a pending incident
    begun before it is forgotten, not one begun since (a new condition, which stays; by id
    would not do, as SQLite gives a new row the id of the one just deleted);
    `recurrences`, each subject's count of recurrences as read: only a condition that has
    not begun again since ends. A charge point gone again while its condition was still
    recorded added no row but counted the recurrence on it (`on_disconnected`); ending the
    condition would leave it offline with no incident. A disconnection still being
    written holds that row's lock, so the DELETE or UPDATE waits for it and compares the
    count it committed (PostgreSQL re-checks a row updated meanwhile; a condition on the
    charge point instead, as before 30 November, was read from the statement's snapshot
    and missed it)."""
    if not ended:
        return
    # (subject, count) as one key among an array: a CASE of every subject would compare
    # each row with each subject (the resolution times' did: 3 s for 10,000, below).
    unchanged = (
        (
            among(
                Incident.subject + "#" + cast(Incident.recurrences, String),
                [f"{subject}#{count}" for subject, count in recurrences.items()],
            ),
        )
        if recurrences is not None
        else ()
    )
    ended_here = [Incident.kind == kind, among(Incident.subject, ended), *unchanged]
    forget = delete(Incident).where(*ended_here, Incident.state == "pending")
    if begun_before is not None:
        forget = forget.where(Incident.since < begun_before)
    db.session.execute(forget.execution_options(synchronize_session=False))
    still_open = db.session.scalars(
        select(Incident.subject).where(*ended_here, Incident.state == "open")
    ).all()
    if not still_open:
        return
    resolve = update(Incident).where(Incident.kind == kind, Incident.state == "open", *unchanged)
    if db.session.get_bind().dialect.name == "postgresql":
        # Each subject's time from a pair of arrays joined in (UPDATE ... FROM): a CASE of
        # every subject took 3 s to resolve 10,000 (each row compared with each subject,
        # and a statement of 20,000 parameters).
        table = Incident.__table__
        arrays, binds = unnest(table, ("subject", "resolved_at"))
        times = (
            text(f"SELECT * FROM {arrays} AS t(subject, resolved_at)")
            .bindparams(*binds)
            .bindparams(subject=still_open, resolved_at=[ended[s] for s in still_open])
            .columns(subject=table.c.subject.type, resolved_at=table.c.resolved_at.type)
            .subquery("ended")
        )
        resolve = resolve.where(Incident.subject == times.c.subject).values(
            resolved_at=times.c.resolved_at
        )
    else:
        resolve = resolve.where(among(Incident.subject, still_open)).values(
            resolved_at=case(
                {subject: literal(ended[subject], UTCDateTime()) for subject in still_open},
                value=Incident.subject,
            )
        )
    resolved = db.session.execute(
        resolve.values(state="resolved")
        .returning(Incident.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    _announce(list(resolved), "resolved")


def on_status(connector, previous: str | None, status: str, error_code: str, source: str, at):
    """A connector's status changed (from `apply_status`, any source)."""
    _status_changed(
        connector.chargepoint,
        connector.connector_id,
        previous,
        status,
        error_code,
        source,
        at,
        connector.info or connector.vendor_error_code,
    )


def on_chargepoint_status(chargepoint, previous: str | None, status: str, error_code: str):
    """The charge point's own status (connectorId 0) changed: the same rules, for
    "connector 0" (a charge point Faulted or Unavailable as a whole)."""
    _status_changed(chargepoint, 0, previous, status, error_code, "ocpp", utcnow(), None)


def _status_changed(chargepoint, number, previous, status, error_code, source, at, detail):
    subject = _subject(chargepoint.id, number)
    if previous == "Faulted" and status != "Faulted":
        _end("faulted", subject, at)
    if previous == "Unavailable" and status != "Unavailable":
        _end("unavailable", subject, at)
    if status == "Faulted" and not _boot_self_test(chargepoint, error_code, at):
        _begin("faulted", chargepoint.company_id, chargepoint.id, number, at, error_code, detail)
    elif (
        status == "Unavailable"
        and previous != "Unavailable"
        and not _operator_made(chargepoint.id, number, source)
    ):
        _begin("unavailable", chargepoint.company_id, chargepoint.id, number, at)


def _boot_self_test(chargepoint: ChargePoint, error_code: str, at: datetime) -> bool:
    return (
        error_code == "NoError"
        and chargepoint.last_boot is not None
        and abs(at - chargepoint.last_boot) <= BOOT_GRACE
    )


def _operator_made(cp_id: int, connector_id: int, source: str) -> bool:
    """Whether an operator made the connector Unavailable: set from a page, the API or the
    CLI, or asked of the charge point (ChangeAvailability Inoperative, accepted or
    scheduled, for this connector or the whole charge point) and not asked back since."""
    if source != "ocpp":
        return True
    answered = db.session.scalars(
        select(Command)
        .where(
            Command.cp_id == cp_id,
            Command.action == "ChangeAvailability",
            Command.outcome == "answered",
        )
        .order_by(Command.created.desc(), Command.id.desc())
        .limit(20)
    )
    for command in answered:
        request = json.loads(command.request)
        if request.get("connectorId") not in (0, connector_id):
            continue
        if json.loads(command.answer or "{}").get("status") not in ("Accepted", "Scheduled"):
            continue
        return request.get("type") == "Inoperative"
    return False


def on_disconnected(chargepoints: list[tuple[int, int]], at: datetime) -> None:
    """Charge points' sockets closed, each (cp_id, company_id): logged, and each one's
    offline condition begins (pending, unless recorded already). Two statements however
    many: a worker stopping for a deploy closes thousands at once, and a statement each
    kept it past gunicorn's graceful timeout."""
    if not chargepoints:
        return
    insert_all(
        ConnectivityEvent.__table__,
        [{"cp_id": cp_id, "kind": "disconnected", "at": at} for cp_id, _ in chargepoints],
    )
    insert_all(
        Incident.__table__,
        [
            _condition("offline", company_id, cp_id, None, at, detail="disconnected")
            for cp_id, company_id in chargepoints
        ],
        counting_in="recurrences",  # recorded already: gone again (see `_end_all`)
    )


def on_connected(cp_id: int, at: datetime) -> None:
    """A charge point connected: logged (flapping counts these). Its offline condition
    ends in the next sweep, which sees it connected."""
    db.session.add(ConnectivityEvent(cp_id=cp_id, kind="connected", at=at))


# --- the sweep --------------------------------------------------------------------------


def _set_stale_since(cp: ChargePoint, value: datetime | None) -> bool:
    """Set `cp`'s stale mark to `value` only if it is still what was read: whether this
    process changed it. The sweep's lock keeps a second sweeper out on PostgreSQL; on
    SQLite (no such lock) a second process that read the same row finds it changed here,
    so a charge point goes stale (or comes back) once, with one event."""
    changed = db.session.execute(
        update(ChargePoint)
        .where(
            ChargePoint.id == cp.id,
            ChargePoint.stale_since.is_(None)
            if cp.stale_since is None
            else ChargePoint.stale_since == cp.stale_since,
        )
        .values(stale_since=value)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        return False
    set_committed_value(cp, "stale_since", value)
    return True


def sweep(now: datetime | None = None) -> bool:
    """Evaluate the time-based rules: charge points gone stale or back, offline conditions
    ended, flapping, and pending incidents whose hold-down has passed. Commits. Returns
    False when another process holds the sweep."""
    from dashboard.services.chargepoints import stale_after

    now = now or utcnow()
    if not try_transaction_lock(SWEEP_LOCK):
        db.session.rollback()
        return False
    in_force = _Rules()
    silent_for = stale_after()
    last_heard = func.coalesce(ChargePoint.last_seen, ChargePoint.connected_since)
    # Connected charge points that fell silent: stale, the offline condition begins.
    for cp in db.session.scalars(
        select(ChargePoint).where(*_CONNECTED_NOT_STALE, last_heard < now - silent_for)
    ):
        if not _set_stale_since(cp, (cp.last_seen or cp.connected_since) + silent_for):
            continue  # another sweeper marked it first
        db.session.add(ConnectivityEvent(cp_id=cp.id, kind="stale", at=cp.stale_since))
        uptime.touch(cp.id, cp.stale_since, now)
        outbox.emit(
            None,
            "chargepoint.stale",
            cp.company_id,
            {"chargepoint_id": cp.id, "identity": cp.identity, "last_seen": cp.last_seen},
        )
        publish_after_commit(
            db.session,
            {"type": "chargepoint", "action": "stale", "cp_id": cp.id, "company_id": cp.company_id},
        )
        _begin("offline", cp.company_id, cp.id, None, cp.stale_since, detail="stale")
    # Stale ones heard again.
    for cp in db.session.scalars(
        select(ChargePoint).where(
            ChargePoint.connected_since.is_not(None),
            ChargePoint.stale_since.is_not(None),
            last_heard >= now - silent_for,
        )
    ):
        if not _set_stale_since(cp, None):
            continue
        db.session.add(ConnectivityEvent(cp_id=cp.id, kind="back", at=cp.last_seen))
        uptime.touch(cp.id, cp.last_seen, now)
        outbox.emit(
            None,
            "chargepoint.connected",
            cp.company_id,
            {"chargepoint_id": cp.id, "identity": cp.identity, "after_stale": True},
        )
    db.session.flush()
    # Offline conditions of charge points connected and heard now: ended.
    looked = utcnow()  # the real time, whatever `now` the sweep was given
    ended = db.session.execute(
        select(Incident, ChargePoint)
        .join(ChargePoint, Incident.cp_id == ChargePoint.id)
        .where(
            Incident.kind == "offline",
            Incident.state != "resolved",
            *_CONNECTED_NOT_STALE,
        )
    ).all()
    _end_all(
        "offline",
        {
            incident.subject: (
                cp.connected_since if cp.connected_since >= incident.since else cp.last_seen
            )
            or now
            for incident, cp in ended
        },
        # the conditions read above: not one begun since, nor one whose charge point
        # went again meanwhile
        begun_before=looked,
        recurrences={incident.subject: incident.recurrences for incident, _ in ended},
    )
    _flapping(now, in_force)
    # Pending incidents whose hold-down has passed: open. Only those old enough for the
    # shortest hold-down of their kind are loaded: after a deploy, thousands of charge
    # points have an offline condition pending for a few seconds, and loading them all
    # every second took most of a core from the workers they were reconnecting to.
    due = [
        and_(Incident.kind == kind, Incident.since <= now - timedelta(seconds=seconds))
        for kind, seconds in in_force.shortest().items()
    ]
    opened = []
    for incident in db.session.scalars(
        select(Incident)
        .where(Incident.state == "pending", or_(false(), *due))
        .order_by(Incident.since)
    ):
        rule = in_force.get(incident.company_id, incident.kind)
        if rule.enabled and incident.since <= now - timedelta(seconds=rule.seconds):
            incident.state = "open"
            incident.opened_at = now
            opened.append(incident.id)
    _announce(opened, "opened")
    db.session.commit()
    return True


def _flapping(now: datetime, in_force: _Rules) -> None:
    """Open an incident for each charge point that connected more often than its rule
    allows within the rule's window (no hold-down: the count is the evidence); resolve
    those that have calmed down."""
    rules = [in_force.defaults["flapping"]] + [
        rule for (_, kind), rule in in_force.overrides.items() if kind == "flapping"
    ]
    # The lowest threshold of each window: charge points under it flap under no rule, and
    # are not read (after a fleet reconnects, that is all of them).
    windows: dict[int, int] = {}
    for rule in rules:
        windows[rule.seconds] = min(
            windows.get(rule.seconds, rule.threshold or 0), rule.threshold or 0
        )
    counts: dict[tuple[int, int], tuple[int, datetime]] = {}
    for window, lowest in windows.items():  # one query per distinct window (usually one)
        rows = db.session.execute(
            select(ConnectivityEvent.cp_id, func.count(), func.min(ConnectivityEvent.at))
            .where(
                ConnectivityEvent.kind == "connected",
                ConnectivityEvent.at > now - timedelta(seconds=window),
            )
            .group_by(ConnectivityEvent.cp_id)
            .having(func.count() > lowest)
        )
        for cp_id, count, first in rows:
            counts[(cp_id, window)] = (count, first)
    owners = dict(
        db.session.execute(
            select(ChargePoint.id, ChargePoint.company_id).where(
                ChargePoint.id.in_({cp_id for cp_id, _ in counts})
            )
        ).all()
    )
    flapping_now = set()
    for cp_id, company_id in owners.items():
        rule = in_force.get(company_id, "flapping")
        count, first = counts.get((cp_id, rule.seconds), (0, now))
        if rule.enabled and count > (rule.threshold or 0):
            flapping_now.add(cp_id)
            detail = f"{count} connections in {rule.seconds // 60} min"
            _begin("flapping", company_id, cp_id, None, first, detail=detail, opened_at=now)
    for incident in db.session.scalars(
        select(Incident).where(Incident.kind == "flapping", Incident.state == "open")
    ):
        if incident.cp_id not in flapping_now:
            _end("flapping", incident.subject, now)


# --- reading and acknowledging ------------------------------------------------------------


def incident_data(incident: Incident) -> dict:
    """The incident as events and the API show it."""
    return {
        "id": incident.id,
        "kind": incident.kind,
        "state": incident.state,
        "chargepoint_id": incident.cp_id,
        "chargepoint_identity": incident.chargepoint.identity,
        "connector_id": incident.connector_id,
        "company_id": incident.company_id,
        "error_code": incident.error_code,
        "detail": incident.detail,
        "since": outbox.iso(incident.since),
        "opened_at": outbox.iso(incident.opened_at),
        "resolved_at": outbox.iso(incident.resolved_at),
        "duration_seconds": incident.duration_seconds,
        "acknowledged_at": outbox.iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by.email if incident.acknowledged_by else None,
        "acknowledgement_note": incident.acknowledgement_note,
    }


def _announce(ids: list[int], action: str) -> None:
    """Emit `incident.<action>` and tell the live views, for each incident of `ids`, as
    stored: written first, then read again all in one query (a sweep that opens or
    resolves 10,000 offline conditions after an outage took 12 s with a flush and a
    refresh for each)."""
    if not ids:
        return
    db.session.flush()
    stored = db.session.scalars(
        select(Incident)
        .where(among(Incident.id, ids))
        .order_by(Incident.id)
        .execution_options(populate_existing=True)
    ).unique()
    for incident in stored:
        outbox.emit(None, f"incident.{action}", incident.company_id, incident_data(incident))
        publish_after_commit(
            db.session,
            {
                "type": "incident",
                "action": action,
                "incident_id": incident.id,
                "cp_id": incident.cp_id,
                "connector_id": incident.connector_id,
                "company_id": incident.company_id,
            },
        )


def _visible(user: User):
    query = select(Incident).where(Incident.state != "pending")
    return scoped(query, Incident.company_id, user)


def list_incidents(
    user: User,
    *,
    state: str | None = None,
    kind: str | None = None,
    cp_id: int | None = None,
    connector_id: int | None = None,
    company_id: int | None = None,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """Incidents `user` may see, open ones first, newest first."""
    require(user, "read.incident")
    query = _visible(user)
    if state == "unacknowledged":
        query = query.where(Incident.state == "open", Incident.acknowledged_at.is_(None))
    elif state:
        query = query.where(Incident.state == state)
    if kind:
        query = query.where(Incident.kind == kind)
    if cp_id is not None:
        query = query.where(Incident.cp_id == cp_id)
    if connector_id is not None:
        query = query.where(Incident.connector_id == connector_id)
    if company_id is not None:
        query = query.where(Incident.company_id == company_id)
    query = query.order_by(
        (Incident.state == "open").desc(), Incident.opened_at.desc(), Incident.id.desc()
    )
    return paginate(query, page, per_page)


def open_count(user: User) -> int:
    """How many open incidents `user` may see (the navigation's badge)."""
    if not user.can("read.incident"):
        return 0
    return open_count_in(company_scope(user))


def open_count_in(scope: int | None) -> int:
    """How many incidents are open in company `scope` (None: every company)."""
    query = select(func.count()).select_from(Incident).where(Incident.state == "open")
    if scope is not None:
        query = query.where(Incident.company_id == scope)
    return db.session.scalar(query) or 0


def get_incident(user: User, incident_id: int) -> Incident:
    require(user, "read.incident")
    incident = db.session.scalar(_visible(user).where(Incident.id == incident_id))
    if incident is None:
        raise NotFound(f"Incident {incident_id} not found")
    return incident


def acknowledge(user: User, incident_id: int, note: str | None = None) -> Incident:
    """`user` has seen the incident and is on it (a note says what is being done)."""
    require(user, "update.incident")
    incident = get_incident(user, incident_id)
    if incident.acknowledged_at is not None:
        raise Conflict(
            f"Incident {incident_id} was acknowledged already, by "
            f"{incident.acknowledged_by.email if incident.acknowledged_by else 'a deleted user'}"
        )
    note = (note or "").strip() or None
    if note is not None and len(note) > 500:
        raise Invalid("Invalid note", {"note": ["At most 500 characters."]})
    incident.acknowledged_at = utcnow()
    incident.acknowledged_by_id = user.id
    incident.acknowledgement_note = note
    _announce([incident.id], "acknowledged")
    return incident
