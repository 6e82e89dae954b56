"""Uptime of charging ports (a port is a connector), as the US NEVI rule computes it
(23 CFR 680.116(b) and 680.112).

A port is *up* while its charge point is connected and not stale, the charge point's own
status (connectorId 0) is neither Faulted nor Unavailable, and the port's status is one of
Available, Preparing, Charging, SuspendedEV, SuspendedEVSE, Finishing or Reserved. It is
*out* otherwise: offline, stale, the charge point Faulted or Unavailable, the port Faulted
or Unavailable, or no status known yet. Each stretch of out-time with one cause is an
outage. Out-time an operator excluded (maintenance, a utility outage, vandalism, a natural
disaster, a vehicle's fault; `UptimeExclusion`) is T_excluded, and

    uptime % = (minutes of the period − (T_outage − T_excluded)) / minutes of the period × 100

where the period is the port's own: from its creation if it was created within the period,
and up to now if the period has not ended. Times are UTC; a month is a UTC month.

One computation (`outages_of`) answers every question, over the history of statuses and
the charge point's log (connected, disconnected, stale, back, its own statuses). Reports
over months add daily aggregates (`UptimeDay`), which one process computes once a day is
over (`aggregate_due`, from the sweep) and computes again for a day that late history
reached (`touch` marks it, in the transaction that wrote the history).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import sleep

from sqlalchemy import and_, case, delete, func, or_, select, update

from dashboard.extensions import (
    db,
    insert_ignoring_duplicates,
    try_transaction_lock,
    upsert_statement,
)
from dashboard.models import (
    EXCLUSION_CAUSES,
    ChargePoint,
    ConnectivityEvent,
    Connector,
    ConnectorStatusHistory,
    JobMark,
    UptimeDay,
    UptimeDirty,
    UptimeExclusion,
    User,
)
from dashboard.models.types import utcnow
from dashboard.services.errors import Invalid, NotFound
from dashboard.services.pagination import Page
from dashboard.services.permissions import require
from dashboard.services.status import OPERATIVE
from dashboard.services.visibility import connectors_visible_to

# NEVI: each port up more than this share of the time.
TARGET = 97.0
CHARGEPOINT_OUT = frozenset({"Faulted", "Unavailable"})
# The charge point log's connection kinds, and the link state each one begins.
LINK = {"connected": "up", "back": "up", "disconnected": "offline", "stale": "stale"}
CAUSES = {
    "offline": "Charge point offline",
    "stale": "Charge point silent (stale)",
    "chargepoint_faulted": "Charge point Faulted",
    "chargepoint_unavailable": "Charge point Unavailable",
    "faulted": "Faulted",
    "unavailable": "Unavailable",
    "unknown": "No status known",
}
# A day is aggregated this long after it ended: the history of its last moments is
# committed by then.
AGGREGATE_GRACE = timedelta(minutes=5)
DAY = timedelta(days=1)
MARK = "uptime_days"  # JobMark: the first day not aggregated yet (its midnight)
AGGREGATE_LOCK = 0x5042555054494D45  # pg_try_advisory_xact_lock key ("PBUPTIME")
CHUNK = 500  # charge points per query


# --- the arithmetic ---------------------------------------------------------------------


@dataclass(frozen=True)
class Exclusion:
    id: int
    connector_id: int | None  # None: every port of the charge point
    starts: datetime
    ends: datetime | None
    cause: str
    reason: str


@dataclass
class History:
    """What is known of one port, each list in time order and holding the last entry
    before the period too (the state the period begins in)."""

    statuses: list[tuple[datetime, str, str]] = field(default_factory=list)  # at, status, code
    # at, kind (connected, disconnected, stale, back, status), status, error code
    log: list[tuple[datetime, str, str | None, str | None]] = field(default_factory=list)
    exclusions: list[Exclusion] = field(default_factory=list)


@dataclass
class Outage:
    start: datetime
    end: datetime
    cause: str
    error_code: str | None = None
    began_before: bool = False  # it began before the period (`start` is the period's)
    lasts: bool = False  # still going on at the period's end
    excluded_seconds: float = 0.0
    exclusions: list[Exclusion] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def excluded(self) -> bool:
        return self.excluded_seconds > 0


@dataclass
class PortUptime:
    """One port over one period: its own part of the period (`start`, `end`, `seconds`),
    T_outage and T_excluded in seconds, how many outages, and (when asked for) the list."""

    cp_id: int
    connector_id: int
    identity: str
    start: datetime
    end: datetime
    seconds: float = 0.0
    outage_seconds: float = 0.0
    excluded_seconds: float = 0.0
    outage_count: int = 0
    outages: list[Outage] | None = None

    @property
    def uptime(self) -> float | None:
        """The NEVI uptime in percent; None for a port that did not exist in the period."""
        if self.seconds <= 0:
            return None
        counted = self.outage_seconds - self.excluded_seconds
        return (self.seconds - counted) / self.seconds * 100

    @property
    def meets_target(self) -> bool | None:
        uptime = self.uptime
        return None if uptime is None else uptime > TARGET


def outages_of(history: History, start: datetime, end: datetime, connector_id: int) -> list[Outage]:
    """The outages of a port from `start` to `end`, from its history: the one place where
    up and out are decided."""
    events = sorted(
        [
            (at, 1, n, "status", status, code)
            for n, (at, status, code) in enumerate(history.statuses)
        ]
        + [
            (at, 0, n, kind, status, code) for n, (at, kind, status, code) in enumerate(history.log)
        ],
        key=lambda event: event[:3],
    )
    link = port = port_code = chargepoint = chargepoint_code = None

    def apply(event) -> None:
        nonlocal link, port, port_code, chargepoint, chargepoint_code
        _, source, _, kind, status, code = event
        if source == 1:
            port, port_code = status, code
        elif kind == "status":
            chargepoint, chargepoint_code = status, code
        else:
            link = LINK.get(kind, link)

    def cause() -> tuple[str, str | None] | None:
        if link is None or link == "offline":
            return "offline", None
        if link == "stale":
            return "stale", None
        if chargepoint in CHARGEPOINT_OUT:
            return f"chargepoint_{chargepoint.lower()}", chargepoint_code
        if port is None:
            return "unknown", None
        if port in OPERATIVE:
            return None
        return port.lower(), port_code

    n = 0
    while n < len(events) and events[n][0] < start:
        apply(events[n])
        n += 1
    before = cause() if n else None
    while n < len(events) and events[n][0] <= start:
        apply(events[n])
        n += 1
    points = [(start, cause())]
    while n < len(events) and events[n][0] < end:
        at = events[n][0]
        while n < len(events) and events[n][0] == at:
            apply(events[n])
            n += 1
        now = cause()
        if (now and now[0]) != (points[-1][1] and points[-1][1][0]):
            points.append((at, now))
    outages = []
    for k, (at, state) in enumerate(points):
        if state is None:
            continue
        last = k == len(points) - 1
        outage = Outage(
            start=at,
            end=end if last else points[k + 1][0],
            cause=state[0],
            error_code=state[1],
            began_before=k == 0 and before is not None and before[0] == state[0],
            lasts=last,
        )
        _exclude(outage, history.exclusions, connector_id)
        outages.append(outage)
    return outages


def _exclude(outage: Outage, exclusions: list[Exclusion], connector_id: int) -> None:
    """How much of the outage the operators' exclusions cover, and which do."""
    outage.excluded_seconds = _covered(
        outage.start, outage.end, exclusions, connector_id, outage.exclusions
    )


def _covered(
    start: datetime,
    end: datetime,
    exclusions: list[Exclusion],
    connector_id: int,
    used: list[Exclusion] | None = None,
) -> float:
    """Seconds from `start` to `end` that the exclusions of the port cover (overlaps
    counted once); those that cover some are added to `used`."""
    spans = []
    for exclusion in exclusions:
        if exclusion.connector_id not in (None, connector_id):
            continue
        begin = max(start, exclusion.starts)
        finish = min(end, exclusion.ends or end)
        if finish > begin:
            spans.append((begin, finish))
            if used is not None:
                used.append(exclusion)
    covered, reach = 0.0, None
    for begin, finish in sorted(spans):
        if reach is not None and begin < reach:
            begin = reach
        if finish > begin:
            covered += (finish - begin).total_seconds()
            reach = finish
    return covered


def port_uptime(
    port: tuple[int, int, str, datetime],
    history: History,
    start: datetime,
    end: datetime,
    *,
    keep_outages: bool = True,
) -> PortUptime:
    """The uptime of `port` (cp id, connector id, identity, created) over its part of the
    period from `start` to `end`."""
    cp_id, connector_id, identity, created = port
    begin = max(start, created)
    result = PortUptime(cp_id, connector_id, identity, begin, max(begin, end))
    if end <= begin:
        result.outages = [] if keep_outages else None
        return result
    outages = outages_of(history, begin, end, connector_id)
    result.seconds = (end - begin).total_seconds()
    result.outage_seconds = sum(outage.seconds for outage in outages)
    result.excluded_seconds = sum(outage.excluded_seconds for outage in outages)
    result.outage_count = len(outages)
    result.outages = outages if keep_outages else None
    return result


# --- reading the history ------------------------------------------------------------------


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


def load_histories(
    ports: list[tuple[int, int, str, datetime]], start: datetime, end: datetime
) -> dict[tuple[int, int], History]:
    """The history of each port from `start` to `end` (and the state before), in a few
    queries per CHUNK charge points."""
    histories = {(port[0], port[1]): History() for port in ports}
    by_cp: dict[int, list[History]] = defaultdict(list)
    for (cp_id, _), history in histories.items():
        by_cp[cp_id].append(history)
    H, L = ConnectorStatusHistory, ConnectivityEvent
    status_columns = (H.connector_cp_id, H.connector_id, H.event_time, H.status, H.error_code)
    log_columns = (L.cp_id, L.at, L.kind, L.status, L.error_code)
    for cp_ids in _chunks(sorted(by_cp)):
        # The state each port and charge point began the period in (one index probe each),
        # then what happened in the period: separate queries, each served by an index.
        last_status = (
            select(H.id)
            .where(
                H.connector_cp_id == Connector.connector_cp_id,
                H.connector_id == Connector.connector_id,
                H.event_time < start,
            )
            .order_by(H.event_time.desc(), H.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        first = select(last_status).where(Connector.connector_cp_id.in_(cp_ids))
        statuses = db.session.execute(select(*status_columns).where(H.id.in_(first))).all()
        statuses += db.session.execute(
            select(*status_columns)
            .where(H.connector_cp_id.in_(cp_ids), H.event_time >= start, H.event_time < end)
            .order_by(H.connector_cp_id, H.connector_id, H.event_time, H.id)
        ).all()
        for cp_id, connector_id, at, status, code in statuses:
            history = histories.get((cp_id, connector_id))
            if history is not None:
                history.statuses.append((at, status, code))
        log = []
        for which in (L.kind != "status", L.kind == "status"):
            last = _last_log(start, which)
            first = select(last).where(ChargePoint.id.in_(cp_ids))
            log += db.session.execute(select(*log_columns).where(L.id.in_(first))).all()
        log.sort(key=lambda row: row[1])
        log += db.session.execute(
            select(*log_columns)
            .where(L.cp_id.in_(cp_ids), L.at >= start, L.at < end)
            .order_by(L.cp_id, L.at, L.id)
        ).all()
        for cp_id, at, kind, status, code in log:
            for history in by_cp[cp_id]:
                history.log.append((at, kind, status, code))
        for exclusion in db.session.scalars(
            select(UptimeExclusion).where(
                UptimeExclusion.cp_id.in_(cp_ids),
                UptimeExclusion.starts < end,
                or_(UptimeExclusion.ends.is_(None), UptimeExclusion.ends > start),
            )
        ):
            value = Exclusion(
                exclusion.id,
                exclusion.connector_id,
                exclusion.starts,
                exclusion.ends,
                exclusion.cause,
                exclusion.reason,
            )
            for history in by_cp[exclusion.cp_id]:
                history.exclusions.append(value)
    return histories


def _last_log(start: datetime, which) -> object:
    L = ConnectivityEvent
    return (
        select(L.id)
        .where(L.cp_id == ChargePoint.id, L.at < start, which)
        .order_by(L.at.desc(), L.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def compute(
    ports: list[tuple[int, int, str, datetime]],
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    keep_outages: bool = True,
) -> list[PortUptime]:
    """The uptime of each port from `start` to `end` (up to now), from the history."""
    end = min(end, now or utcnow())
    histories = load_histories(ports, start, end) if end > start else {}
    return [
        port_uptime(port, histories.get(port[:2], History()), start, end, keep_outages=keep_outages)
        for port in ports
    ]


# --- daily aggregates ---------------------------------------------------------------------


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def touch(cp_id: int, at: datetime, now: datetime | None = None) -> None:
    """History of `cp_id` dated `at` is being written: if `at` is in a day that is over,
    mark that day to be aggregated again (in the caller's transaction). Writes nothing for
    today's history, the usual case."""
    now = now or utcnow()
    if at >= midnight(now.date()):
        return
    _mark_dirty([(cp_id, at.date())], now)


def _mark_dirty(days: Iterable[tuple[int, date]], now: datetime) -> None:
    rows = [{"cp_id": cp_id, "day": day, "marked": now} for cp_id, day in set(days)]
    if not rows:
        return
    statement = upsert_statement(UptimeDirty, ["cp_id", "day"], ["marked"])
    db.session.execute(statement, rows)


def _next_day() -> date | None:
    """The first day not aggregated yet (None: nothing aggregated so far)."""
    mark = db.session.get(JobMark, MARK)
    return mark.at.date() if mark is not None else None


def _ports(cp_ids: list[int] | None, existing_before: datetime) -> list[tuple]:
    query = (
        select(
            Connector.connector_cp_id,
            Connector.connector_id,
            ChargePoint.identity,
            Connector.connector_created,
        )
        .join(ChargePoint, Connector.connector_cp_id == ChargePoint.id)
        .where(Connector.connector_created < existing_before)
        .order_by(Connector.connector_cp_id, Connector.connector_id)
    )
    if cp_ids is not None:
        query = query.where(Connector.connector_cp_id.in_(cp_ids))
    return [tuple(row) for row in db.session.execute(query)]


def aggregate_days(first: date, until: date, cp_ids: list[int] | None = None) -> set[int]:
    """Compute the aggregates of the days from `first` to before `until` for every port
    (of `cp_ids`) that existed then, replacing what was there: each port's outages over
    the whole span in one pass, cut at midnights. Returns the charge points whose state at
    the last day's end changed (their next day is to be computed again)."""
    start, end = midnight(first), midnight(until)
    last = until - DAY
    ports = _ports(cp_ids, end)
    changed = set()
    for chunk in _chunks(ports, CHUNK * 2):
        chunk_cps = sorted({port[0] for port in chunk})
        in_span = (UptimeDay.cp_id.in_(chunk_cps), UptimeDay.day >= first, UptimeDay.day < until)
        before = {
            (cp_id, number): state
            for cp_id, number, state in db.session.execute(
                select(UptimeDay.cp_id, UptimeDay.connector_id, UptimeDay.end_state).where(
                    UptimeDay.cp_id.in_(chunk_cps), UptimeDay.day == last
                )
            )
        }
        db.session.execute(
            delete(UptimeDay).where(*in_span).execution_options(synchronize_session=False)
        )
        histories = load_histories(chunk, start, end)
        rows = []
        for port in chunk:
            cp_id, number, _, created = port
            begin = max(start, created)
            if begin >= end:
                continue
            history = histories[(cp_id, number)]
            outages = outages_of(history, begin, end, number)
            rows += _day_rows(cp_id, number, begin, end, outages, history.exclusions)
            if (cp_id, number) in before and before[(cp_id, number)] != rows[-1]["end_state"]:
                changed.add(cp_id)
        if rows:
            # An upsert: on SQLite (one worker, no advisory lock) a second process that
            # aggregates the same day at once writes the same figures, not an error.
            db.session.execute(
                upsert_statement(
                    UptimeDay,
                    ["cp_id", "connector_id", "day"],
                    [
                        "seconds",
                        "outage_seconds",
                        "excluded_seconds",
                        "outages",
                        "starts_out",
                        "end_state",
                    ],
                ),
                rows,
            )
        sleep(0)  # under gevent: let the worker's other greenlets run between chunks
    return changed


def _day_rows(cp_id, number, begin, end, outages, exclusions) -> list[dict]:
    """The aggregates of each day from `begin` to `end` (midnight) of one port, from its
    outages over that span: the same figures as computing each day on its own."""
    rows = []
    first = 0
    day = begin.date()
    while midnight(day) < end:
        day_start, day_end = max(midnight(day), begin), midnight(day + DAY)
        row = {
            "cp_id": cp_id,
            "connector_id": number,
            "day": day,
            "seconds": (day_end - day_start).total_seconds(),
            "outage_seconds": 0.0,
            "excluded_seconds": 0.0,
            "outages": 0,
            "starts_out": False,
            "end_state": "",
        }
        while first < len(outages) and outages[first].end <= day_start:
            first += 1
        n = first
        while n < len(outages) and outages[n].start < day_end:
            outage = outages[n]
            part_start, part_end = max(outage.start, day_start), min(outage.end, day_end)
            row["outage_seconds"] += (part_end - part_start).total_seconds()
            if outage.exclusions:
                row["excluded_seconds"] += _covered(part_start, part_end, exclusions, number)
            earlier = outage.start < day_start or (outage.start == begin and outage.began_before)
            if outage.start >= day_start and not earlier:
                row["outages"] += 1
            if part_start == day_start and earlier:
                row["starts_out"] = True
            if outage.end >= day_end:
                row["end_state"] = outage.cause
            n += 1
        rows.append(row)
        day += DAY
    return rows


def aggregate_due(now: datetime | None = None, max_days: int = 31) -> int:
    """Aggregate the days that are over and not aggregated yet (at most `max_days` per
    call: a long backfill goes on at the next sweep), then the days marked by late
    history. Runs after the sweep; each transaction holds a lock, so one process at a time
    aggregates (and reads where the last one stopped). Commits; returns the days done."""
    now = now or utcnow()
    last_over = (now - AGGREGATE_GRACE).date() - DAY
    if not try_transaction_lock(AGGREGATE_LOCK):
        db.session.rollback()
        return 0
    next_day = _next_day()
    if next_day is None:  # from the first port's first day (no port yet: nothing to do)
        first = db.session.scalar(select(func.min(Connector.connector_created)))
        if first is None:
            db.session.rollback()
            return 0
        db.session.execute(
            insert_ignoring_duplicates(JobMark).values(name=MARK, at=midnight(first.date()))
        )
        next_day = _next_day()
    done = 0
    if next_day <= last_over:
        until = min(last_over + DAY, next_day + timedelta(days=max_days))
        aggregate_days(next_day, until)
        done += (until - next_day).days
        next_day = until
        _set_next_day(next_day)
        db.session.commit()
        if not try_transaction_lock(AGGREGATE_LOCK) or _next_day() != next_day:
            db.session.rollback()
            return done
    done += _aggregate_dirty(next_day, now)
    db.session.commit()
    return done


def _set_next_day(day: date) -> None:
    db.session.execute(
        update(JobMark)
        .where(JobMark.name == MARK)
        .values(at=midnight(day))
        .execution_options(synchronize_session=False)
    )


def _aggregate_dirty(next_day: date, now: datetime, limit: int = 5000) -> int:
    """Compute again the marked days that were aggregated already; a mark made while this
    runs (a newer `marked`) stays for the next run."""
    marks = db.session.execute(
        select(UptimeDirty.cp_id, UptimeDirty.day, UptimeDirty.marked)
        .where(UptimeDirty.day < next_day)
        .order_by(UptimeDirty.day)
        .limit(limit)
    ).all()
    by_day: dict[date, list[int]] = defaultdict(list)
    for cp_id, day, _ in marks:
        by_day[day].append(cp_id)
    for day, cp_ids in sorted(by_day.items()):
        changed = aggregate_days(day, day + DAY, cp_ids)
        if day + DAY < next_day:
            _mark_dirty(((cp_id, day + DAY) for cp_id in changed), now)
        db.session.flush()
    for cp_id, day, marked in marks:
        db.session.execute(
            delete(UptimeDirty)
            .where(UptimeDirty.cp_id == cp_id, UptimeDirty.day == day, UptimeDirty.marked == marked)
            .execution_options(synchronize_session=False)
        )
    return len(by_day)


def summarize(
    ports: list[tuple[int, int, str, datetime]],
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> list[PortUptime]:
    """The uptime of each port from `start` to `end` without the outage list: the whole
    days that are aggregated are added up, the rest (today, a part of a day) computed from
    the history. The same figures as `compute`, faster over months."""
    now = now or utcnow()
    end = min(end, now)
    first_whole = start.date() if start == midnight(start.date()) else start.date() + DAY
    next_day = _next_day() or first_whole
    last_whole = min(end.date(), next_day)  # aggregated days are those before this one
    if first_whole >= last_whole:
        return compute(ports, start, end, now=now, keep_outages=False)
    results = {
        port[:2]: PortUptime(port[0], port[1], port[2], max(start, port[3]), end) for port in ports
    }
    # The part before the first whole day, if any: its outages began there.
    head = (
        compute(ports, start, midnight(first_whole), now=now)
        if start < midnight(first_whole)
        else []
    )
    for part in head:
        _add(results[(part.cp_id, part.connector_id)], part)
    aggregated: dict[tuple[int, int], tuple] = {}
    for cp_ids in _chunks(sorted({port[0] for port in ports})):
        for row in db.session.execute(
            select(
                UptimeDay.cp_id,
                UptimeDay.connector_id,
                func.sum(UptimeDay.seconds),
                func.sum(UptimeDay.outage_seconds),
                func.sum(UptimeDay.excluded_seconds),
                func.sum(UptimeDay.outages),
            )
            .where(
                UptimeDay.cp_id.in_(cp_ids),
                UptimeDay.day >= first_whole,
                UptimeDay.day < last_whole,
            )
            .group_by(UptimeDay.cp_id, UptimeDay.connector_id)
        ):
            aggregated[(row[0], row[1])] = row[2:]
        # An outage going on at the first aggregated day of a port began before it: it is
        # counted once (with the head, or as one more when there is no head).
        if not head:
            for cp_id, connector_id in db.session.execute(
                select(UptimeDay.cp_id, UptimeDay.connector_id).where(
                    UptimeDay.cp_id.in_(cp_ids),
                    UptimeDay.day == first_whole,
                    UptimeDay.starts_out.is_(True),
                )
            ):
                if (cp_id, connector_id) in results:
                    results[(cp_id, connector_id)].outage_count += 1
    for key, sums in aggregated.items():
        if key in results:
            _accumulate(results[key], *sums)
    tail_start = midnight(last_whole)
    if tail_start < end:
        for part in compute(ports, tail_start, end, now=now):
            result = results[(part.cp_id, part.connector_id)]
            _add(result, part, continued=result.seconds > 0)
    # A port whose aggregates fall short of its days (history written with past dates
    # before the aggregator came to it): from the history, whole.
    short = [
        port
        for port in ports
        if ((aggregated.get(port[:2]) or (0,))[0] or 0)
        < _whole_days_seconds(port, first_whole, last_whole) - 1
    ]
    for result in compute(short, start, end, now=now, keep_outages=False) if short else ():
        results[(result.cp_id, result.connector_id)] = result
    return list(results.values())


def _whole_days_seconds(port: tuple, first: date, until: date) -> float:
    """The seconds of the days from `first` to before `until` in which the port existed:
    what its aggregates of those days add up to."""
    return max(0.0, (midnight(until) - max(midnight(first), port[3])).total_seconds())


def _accumulate(into: PortUptime, seconds, outage_seconds, excluded_seconds, outages) -> None:
    """Add figures (a part of the period, or sums of aggregates; None counts as 0)."""
    into.seconds += seconds or 0
    into.outage_seconds += outage_seconds or 0
    into.excluded_seconds += excluded_seconds or 0
    into.outage_count += outages or 0


def _add(result: PortUptime, part: PortUptime, continued: bool = False) -> None:
    """Add a part of the period computed from the history; with `continued`, an outage
    going on at the part's start was counted with the part before."""
    began = sum(1 for outage in part.outages or () if not (continued and outage.began_before))
    _accumulate(result, part.seconds, part.outage_seconds, part.excluded_seconds, began)


# --- what users ask for -------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which ports a report covers: a company's, a charge point's, or one port; always
    within the user's company policy."""

    company_id: int | None = None
    cp_id: int | None = None
    connector_id: int | None = None


def ports_in(user: User, scope: Scope) -> list[tuple[int, int, str, datetime]]:
    """The ports `user` may report on within `scope`, as (cp id, connector id, identity,
    created). A charge point, port or company the user may not see is NotFound."""
    from dashboard.services import chargepoints  # chargepoints writes through this module

    require(user, "read.report")
    query = connectors_visible_to(user).with_only_columns(
        Connector.connector_cp_id,
        Connector.connector_id,
        ChargePoint.identity,
        Connector.connector_created,
    )
    if scope.company_id is not None:
        chargepoints.visible_company(user, scope.company_id)
        query = query.where(ChargePoint.company_id == scope.company_id)
    if scope.cp_id is not None:
        chargepoints.visible_chargepoint(user, scope.cp_id)
        query = query.where(Connector.connector_cp_id == scope.cp_id)
    if scope.connector_id is not None:
        query = query.where(Connector.connector_id == scope.connector_id)
    ports = [
        tuple(row)
        for row in db.session.execute(query.order_by(ChargePoint.identity, Connector.connector_id))
    ]
    if scope.connector_id is not None and not ports:
        raise NotFound(f"Connector {scope.connector_id} of charge point {scope.cp_id} not found")
    return ports


def _ports_over(user: User, scope: Scope, start: datetime, end: datetime) -> list[tuple]:
    """`ports_in`, for a period that must end after it starts (Invalid otherwise)."""
    if end <= start:
        raise Invalid("The period ends before it starts.", {"to": ["Must be after from."]})
    return ports_in(user, scope)


def month_start(day: date) -> datetime:
    return midnight(day.replace(day=1))


def next_month(moment: datetime) -> datetime:
    return midnight((moment.date().replace(day=28) + timedelta(days=4)).replace(day=1))


def months_ending(month: date, count: int = 12) -> list[tuple[datetime, datetime]]:
    """The `count` UTC months up to the month of `month`, oldest first, as (start, end)."""
    start = month_start(month)
    periods = []
    for _ in range(count):
        periods.append((start, next_month(start)))
        start = month_start((start - DAY).date())
    return periods[::-1]


def quarter_months(year: int, quarter: int) -> list[tuple[datetime, datetime]]:
    if not 1 <= quarter <= 4:
        raise Invalid("A quarter is 1 to 4.", {"quarter": ["Must be from 1 to 4."]})
    return months_ending(date(year, 3 * quarter, 1), 3)


def total(results: list[PortUptime], start: datetime, end: datetime) -> PortUptime:
    """The figures of several ports together (seconds of each port's period added)."""
    whole = PortUptime(0, 0, "", start, end)
    for r in results:
        _accumulate(whole, r.seconds, r.outage_seconds, r.excluded_seconds, r.outage_count)
    return whole


def report(
    user: User,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    outages: bool = False,
    now: datetime | None = None,
) -> list[PortUptime]:
    """Each port's uptime in `scope` from `start` to `end`; with `outages`, the list of
    each port's outages too (computed from the history: slower over long periods)."""
    ports = _ports_over(user, scope, start, end)
    if outages:
        return compute(ports, start, end, now=now)
    return summarize(ports, start, end, now=now)


def monthly(
    user: User, scope: Scope, month: date, count: int = 12, now: datetime | None = None
) -> list[PortUptime]:
    """The scope's uptime in each of the `count` months up to `month` (all its ports
    together), oldest first: the bars of the chart. The aggregated days of every month in
    one query; the days not aggregated yet (today) from the history."""
    now = now or utcnow()
    ports = ports_in(user, scope)
    periods = months_ending(month, count)
    bars = [PortUptime(0, 0, "", start, max(start, min(end, now))) for start, end in periods]
    if not ports:
        return bars
    # Aggregated days are added up until the aggregator's mark, and never past `now` (a
    # report as of an earlier time; days after it are not over for it).
    next_day = min(_next_day() or periods[0][0].date(), now.date())
    boundary = midnight(next_day)
    bucket = case(
        *[(UptimeDay.day < end.date(), n) for n, (_, end) in enumerate(periods)],
        else_=len(periods),
    )
    firsts = [start.date() for start, _ in periods]
    for cp_ids in _chunks(sorted({port[0] for port in ports})):
        query = (
            select(
                bucket,
                func.sum(UptimeDay.seconds),
                func.sum(UptimeDay.outage_seconds),
                func.sum(UptimeDay.excluded_seconds),
                func.sum(UptimeDay.outages),
                func.sum(case((and_(UptimeDay.starts_out, UptimeDay.day.in_(firsts)), 1), else_=0)),
            )
            .where(
                UptimeDay.cp_id.in_(cp_ids),
                UptimeDay.day >= firsts[0],
                UptimeDay.day < min(periods[-1][1].date(), next_day),
            )
            .group_by(bucket)
        )
        if scope.connector_id is not None:
            query = query.where(UptimeDay.connector_id == scope.connector_id)
        for n, seconds, outage, excluded, began, ongoing in db.session.execute(query):
            _accumulate(bars[n], seconds, outage, excluded, (began or 0) + (ongoing or 0))
    # A month whose aggregates fall short of its ports' days: port by port (`summarize`
    # computes those from the history).
    for n, (start, end) in enumerate(periods):
        until = min(end.date(), next_day)
        if until > start.date():
            expected = sum(_whole_days_seconds(port, start.date(), until) for port in ports)
            if bars[n].seconds < expected - 1:
                bars[n] = total(summarize(ports, start, end, now=now), start, bars[n].end)
                periods[n] = (start, start)  # done: nothing to add below
    for bar, (start, end) in zip(bars, periods, strict=True):
        if end > boundary and min(end, now) > max(start, boundary):
            for part in compute(ports, max(start, boundary), end, now=now):
                _add(bar, part, continued=start < boundary)
    return bars


def exclude(
    user: User,
    cp_id: int,
    connector_id: int | None,
    *,
    starts: datetime,
    ends: datetime | None,
    cause: str,
    reason: str,
    now: datetime | None = None,
) -> UptimeExclusion:
    """Record out-time of a port (or of every port of a charge point, `connector_id`
    None) that does not count against uptime. The days it covers are aggregated again.
    Does not commit."""
    from dashboard.services import chargepoints

    require(user, "create.exclusion")
    chargepoint = chargepoints.visible_chargepoint(user, cp_id)
    now = now or utcnow()
    errors = {}
    if cause not in EXCLUSION_CAUSES:
        errors["cause"] = [f"Must be one of: {', '.join(EXCLUSION_CAUSES)}."]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Say why this time is excluded."]
    elif len(reason) > 300:
        errors["reason"] = ["At most 300 characters."]
    if ends is not None and ends <= starts:
        errors["ends"] = ["Must be after the start."]
    if starts > now:
        errors["starts"] = ["Must not be in the future."]
    if errors:
        raise Invalid("The exclusion is not valid.", errors)
    if connector_id is not None and db.session.get(Connector, (connector_id, cp_id)) is None:
        raise NotFound(f"Connector {connector_id} of charge point {cp_id} not found")
    exclusion = UptimeExclusion(
        cp_id=chargepoint.id,
        connector_id=connector_id,
        starts=starts,
        ends=ends,
        cause=cause,
        reason=reason,
        created_by_id=getattr(user, "id", None),
        created=now,
    )
    db.session.add(exclusion)
    _mark_span(cp_id, starts, ends or now, now)
    return exclusion


def _mark_span(cp_id: int, starts: datetime, ends: datetime, now: datetime) -> None:
    """Mark the days from `starts` to `ends` that are over to be aggregated again."""
    today = now.date()
    day, last = starts.date(), min(ends.date(), today - DAY)
    days = []
    while day <= last:
        days.append((cp_id, day))
        day += DAY
    _mark_dirty(days, now)


def begin_maintenance(user: User, cp_id: int, connector_id: int, reason: str) -> UptimeExclusion:
    """An operator made a port (connector 0: the whole charge point) Inoperative for
    maintenance, with a reason: its out-time from now until it is made Operative again is
    excluded."""
    number = connector_id or None
    return exclude(
        user, cp_id, number, starts=utcnow(), ends=None, cause="maintenance", reason=reason
    )


def end_maintenance(cp_id: int, connector_id: int, now: datetime | None = None) -> None:
    """A port (connector 0: the whole charge point) was made Operative: its maintenance
    exclusions end now (for connector 0, every port's)."""
    now = now or utcnow()
    query = update(UptimeExclusion).where(
        UptimeExclusion.cp_id == cp_id,
        UptimeExclusion.cause == "maintenance",
        UptimeExclusion.ends.is_(None),
    )
    if connector_id:
        query = query.where(UptimeExclusion.connector_id == connector_id)
    db.session.execute(query.values(ends=now).execution_options(synchronize_session=False))


def exclusions_of(
    user: User, scope: Scope, start: datetime, end: datetime
) -> list[UptimeExclusion]:
    """The exclusions that overlap the period, for the ports in `scope`, newest first."""
    cp_ids = sorted({port[0] for port in ports_in(user, scope)})
    if not cp_ids:
        return []
    query = select(UptimeExclusion).where(
        UptimeExclusion.cp_id.in_(cp_ids),
        UptimeExclusion.starts < end,
        or_(UptimeExclusion.ends.is_(None), UptimeExclusion.ends > start),
    )
    if scope.connector_id is not None:
        query = query.where(
            or_(
                UptimeExclusion.connector_id.is_(None),
                UptimeExclusion.connector_id == scope.connector_id,
            )
        )
    return list(db.session.scalars(query.order_by(UptimeExclusion.starts.desc())))


def report_page(
    user: User,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    page: int = 1,
    per_page: int = 20,
    now: datetime | None = None,
) -> tuple[Page, PortUptime]:
    """A page of the ports in `scope` with their outages from `start` to `end`, and the
    figures of all of them together."""
    ports = _ports_over(user, scope, start, end)
    whole = total(
        summarize(ports, start, end, now=now) if ports else [], start, min(end, now or utcnow())
    )
    chosen = ports[(page - 1) * per_page : page * per_page]
    items = compute(chosen, start, end, now=now) if chosen else []
    return Page(items=items, page=page, per_page=per_page, total=len(ports)), whole


NEVI_COLUMNS = (
    "record",
    "station_id",
    "port_id",
    *(
        f"{name}_{n}"
        for n in (1, 2, 3)
        for name in ("month", "uptime_percent", "outage_minutes", "excluded_minutes")
    ),
    "outage_start",
    "outage_end",
    "outage_duration_minutes",
    "outage_cause",
    "error_code",
    "outage_excluded_minutes",
    "exclusion_reasons",
)


def nevi_rows(
    user: User, scope: Scope, year: int, quarter: int, now: datetime | None = None
) -> Iterator[list]:
    """The quarterly report of 23 CFR 680.112 as rows: per port, a "port" row (the station
    and port ids, and for each month of the quarter its uptime, T_outage and T_excluded in
    minutes), then an "outage" row for each of its outages in the quarter; the columns are
    NEVI_COLUMNS. Streams: a chunk of ports at a time."""
    months = quarter_months(year, quarter)
    ports = ports_in(user, scope)
    for chunk in _chunks(ports, 200):
        per_month = [
            {(r.cp_id, r.connector_id): r for r in summarize(chunk, start, end, now=now)}
            for start, end in months
        ]
        detail = compute(chunk, months[0][0], months[-1][1], now=now)
        for port in detail:
            key = (port.cp_id, port.connector_id)
            row = ["port", port.identity, port.connector_id]
            for (start, _), figures in zip(months, per_month, strict=True):
                result = figures[key]
                exists = result.seconds > 0
                row += [
                    f"{start.year:04d}-{start.month:02d}",
                    _number(result.uptime, 3) if exists else "",
                    _number(result.outage_seconds / 60) if exists else "",
                    _number(result.excluded_seconds / 60) if exists else "",
                ]
            yield row + [""] * 7
            for outage in port.outages or ():
                yield ["outage", port.identity, port.connector_id, *[""] * 12] + [
                    outage.start.isoformat(),
                    outage.end.isoformat(),
                    _number(outage.seconds / 60),
                    outage.cause,
                    outage.error_code or "",
                    _number(outage.excluded_seconds / 60),
                    "; ".join(f"{e.cause}: {e.reason}" for e in outage.exclusions),
                ]


def _number(value: float | None, places: int = 2) -> str:
    return "" if value is None else f"{value:.{places}f}"
