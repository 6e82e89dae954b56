"""Webhooks: a company's endpoints, and the delivery of its events to them.

Each event is POSTed as JSON and signed as the Standard Webhooks specification says
(`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the endpoint's
secret, by the `standardwebhooks` package). Delivery is at least once and in order per
endpoint: an endpoint's `cursor` is the last event it has had, and the next one is not sent
until that one was answered with a 2xx. A failure is retried with exponential back-off;
after failing for WEBHOOK_DISABLE_AFTER_HOURS (24) the endpoint is disabled, and its owner
is told why. Re-enabled, it goes on from where it stopped (events are kept
EVENTS_RETENTION_DAYS).

Delivery runs in the web workers (`dashboard.clock`): a worker *leases* an endpoint
(claimed with FOR UPDATE SKIP LOCKED on PostgreSQL), delivers what is due, and gives the
lease back, so each endpoint has one deliverer at a time across every process and host.

Addresses are checked when an endpoint is saved and again, resolved afresh, before every
run of deliveries; the connection goes to the address that was checked. Loopback, private,
link-local and other special addresses are refused unless WEBHOOK_ALLOWED_NETWORKS lists
them.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from dashboard.extensions import db, insert_all, reads_only
from dashboard.metrics import WEBHOOK_DELIVERIES
from dashboard.models import OutboxEvent, User, WebhookDelivery, WebhookEndpoint
from dashboard.models.types import utcnow
from dashboard.services.chargepoints import visible_company
from dashboard.services.errors import Invalid, NotFound
from dashboard.services.outbox import EVENT_TYPES, iso, last_event_id
from dashboard.services.pagination import Page, paginate
from dashboard.services.permissions import require
from dashboard.services.visibility import scoped
from dashboard.services.webhook_transport import Outcome, Target, post_in_order

log = logging.getLogger(__name__)

# How long one run may deliver for an endpoint before it lets others have a turn. Its
# lease lasts that and two receiver timeouts more: a process that dies holding one frees
# the endpoint when it expires.
RUN_SECONDS = 2.0
# Events read per query, and delivery log rows written per commit while all goes well.
FETCH = 200
COMMIT_EVERY = 50
MAX_BACKOFF = timedelta(hours=1)


# --- endpoints --------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _allowed_networks() -> list:
    return [
        ipaddress.ip_network(net.strip(), strict=False)
        for net in current_app.config.get("WEBHOOK_ALLOWED_NETWORKS", ())
        if net.strip()
    ]


class AddressRefused(Exception):
    """The endpoint's name resolves to an address webhooks may not be sent to."""


def resolve(url: str) -> tuple[str, int, str]:
    """(host name, port, address checked) of `url`: the first address its host name
    resolves to; AddressRefused if it cannot be resolved or any address it resolves to is
    not public (unless WEBHOOK_ALLOWED_NETWORKS allows it)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(f"{host} cannot be resolved ({exc})") from exc
    allowed = _allowed_networks()
    addresses = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not address.is_global and not any(address in net for net in allowed):
            raise AddressRefused(
                f"{host} resolves to {address}, a loopback, private, link-local or reserved "
                "address (WEBHOOK_ALLOWED_NETWORKS may allow it)"
            )
        addresses.append(str(address))
    if not addresses:
        raise AddressRefused(f"{host} has no address")
    return host, port, addresses[0]


def _check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    problem = None
    if len(url) > 2000:
        problem = "At most 2000 characters."
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "An http:// or https:// address with a host name."
    elif parts.username or parts.password:
        problem = "No user name or password in the address."
    else:
        try:
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            problem = "The port is not valid."
    if problem is None:
        try:
            resolve(url)
        except AddressRefused as exc:
            problem = f"{exc}."
    if problem:
        raise Invalid("Invalid webhook endpoint", {"url": [problem]})
    return url


def _check_types(event_types) -> list[str]:
    if event_types is None:
        return []
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise Invalid(
            "Invalid webhook endpoint",
            {"event_types": [f"Unknown event types: {', '.join(unknown)}."]},
        )
    return sorted(set(event_types))


def _check_description(description: str | None) -> str | None:
    description = (description or "").strip() or None
    if description and len(description) > 200:
        raise Invalid("Invalid webhook endpoint", {"description": ["At most 200 characters."]})
    return description


def _company_for(user: User, company_id: int | None) -> int:
    """The company a new endpoint belongs to: a company user's own (NotFound for any
    other), the one a superadmin names."""
    if company_id is None:
        if user.is_superadmin:
            raise Invalid("Invalid webhook endpoint", {"company_id": ["A company is needed."]})
        if not user.company_id:
            raise NotFound("Company None not found")
        company_id = user.company_id
    return visible_company(user, company_id).id


def create_endpoint(
    user: User,
    *,
    url: str,
    company_id: int | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool = True,
) -> WebhookEndpoint:
    """A new endpoint of a company (a company user's own). It gets the events committed
    from now on. Its secret is in `endpoint.secret`: show it now, it is not shown again."""
    require(user, "create.webhook")
    endpoint = WebhookEndpoint(
        company_id=_company_for(user, company_id),
        url=_check_url(url),
        event_types=_check_types(event_types),
        description=_check_description(description),
        secret=new_secret(),
        enabled=enabled,
        cursor=last_event_id(),
    )
    db.session.add(endpoint)
    db.session.flush()
    return endpoint


def list_endpoints(user: User, *, page: int = 1, per_page: int = 20) -> Page:
    require(user, "read.webhook")
    query = scoped(select(WebhookEndpoint), WebhookEndpoint.company_id, user)
    return paginate(query.order_by(WebhookEndpoint.id), page, per_page)


def get_endpoint(user: User, endpoint_id: int, permission: str = "read.webhook"):
    require(user, permission)
    query = scoped(select(WebhookEndpoint), WebhookEndpoint.company_id, user)
    endpoint = db.session.scalar(query.where(WebhookEndpoint.id == endpoint_id))
    if endpoint is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} not found")
    return endpoint


_UNSET = object()


def update_endpoint(
    user: User,
    endpoint_id: int,
    *,
    url=_UNSET,
    event_types=_UNSET,
    description=_UNSET,
    enabled=_UNSET,
) -> WebhookEndpoint:
    """Change an endpoint. Enabling a disabled one starts its deliveries again where they
    stopped, with a clean slate of attempts."""
    endpoint = get_endpoint(user, endpoint_id, "update.webhook")
    if url is not _UNSET:
        endpoint.url = _check_url(url)
    if event_types is not _UNSET:
        endpoint.event_types = _check_types(event_types)
    if description is not _UNSET:
        endpoint.description = _check_description(description)
    if enabled is not _UNSET and enabled != endpoint.enabled:
        endpoint.enabled = bool(enabled)
        if endpoint.enabled:
            endpoint.disabled_reason = None
            endpoint.failing_since = None
            endpoint.attempts = 0
            endpoint.next_attempt_at = None
        else:
            endpoint.disabled_reason = f"Disabled by {user.email}"
    db.session.flush()
    return endpoint


def rotate_secret(user: User, endpoint_id: int) -> WebhookEndpoint:
    """A new secret for the endpoint (shown once); the old one stops signing at once."""
    endpoint = get_endpoint(user, endpoint_id, "update.webhook")
    endpoint.secret = new_secret()
    db.session.flush()
    return endpoint


def delete_endpoint(user: User, endpoint_id: int) -> None:
    db.session.delete(get_endpoint(user, endpoint_id, "delete.webhook"))
    db.session.flush()


def list_deliveries(user: User, endpoint_id: int, *, page: int = 1, per_page: int = 20) -> Page:
    """The endpoint's delivery log, newest first."""
    get_endpoint(user, endpoint_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
    )
    return paginate(query, page, per_page)


def redeliver(user: User, endpoint_id: int, event_id: int) -> WebhookDelivery:
    """Send event `event_id` to the endpoint again now (logged as a manual attempt),
    whatever happened to it before; the ordered deliveries are not affected."""
    endpoint = get_endpoint(user, endpoint_id, "update.webhook")
    # A row, not an object: it is read in the thread that sends it (webhook_transport).
    event = db.session.execute(
        select(*_EVENT_COLUMNS).where(
            OutboxEvent.id == event_id, OutboxEvent.company_id == endpoint.company_id
        )
    ).first()
    if event is None:
        raise NotFound(f"Event {event_id} not found (or no longer kept)")
    attempt = 1 + (
        db.session.scalar(
            select(func.count()).where(
                WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_id == event_id
            )
        )
        or 0
    )
    target, refused = _resolved(endpoint.url)
    outcome = _send(target, refused, endpoint.secret, [event], time.monotonic())[0]
    delivery = WebhookDelivery(**_log_values(endpoint.id, event, attempt, outcome, manual=True))
    db.session.add(delivery)
    db.session.flush()
    return delivery


# --- delivery ---------------------------------------------------------------------------


def _resolved(url: str) -> tuple[Target | None, str | None]:
    """Where the requests of `url` go (resolved now, to the address checked), or None
    and why it is refused."""
    try:
        host, port, address = resolve(url)
    except AddressRefused as exc:
        return None, str(exc)[:300]
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, address, path), None


def _signed(secret: str) -> Callable[[object], tuple[dict, bytes]]:
    """What `post_in_order` sends for an event: its JSON, signed with `secret` as the
    Standard Webhooks specification says, stamped when it is sent."""
    signer = Webhook(secret)

    def prepare(event) -> tuple[dict, bytes]:
        body = event_body(event)
        message_id = f"evt_{event.id}"
        now = utcnow()
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(message_id, now, body),
        }
        return headers, body.encode()

    return prepare


def _send(target: Target | None, refused: str | None, secret: str, events, deadline: float):
    """The outcomes of sending `events` in order until one fails or `deadline` passes (a
    refused address fails the first)."""
    if target is None:
        return [Outcome(None, refused, None, 0)]
    config = current_app.config
    return post_in_order(
        target,
        events,
        _signed(secret),
        timeout=config["WEBHOOK_TIMEOUT_SECONDS"],
        deadline=deadline,
        threads=config["WEBHOOK_CONCURRENCY"] + 1,  # and a manual redelivery
    )


def event_body(event) -> str:
    """The event as JSON (what `as_dict` gives), built around its stored data without
    parsing it again: this runs once per delivery."""
    return (
        f'{{"id":{event.id},"type":"{event.type}","timestamp":"{iso(event.created)}",'
        f'"company_id":{json.dumps(event.company_id)},"data":{event.data}}}'
    )


def _log_values(endpoint_id: int, event, attempt: int, outcome: Outcome, manual=False) -> dict:
    """The delivery log row of one attempt (and its count in the metrics)."""
    if outcome.succeeded:
        WEBHOOK_DELIVERIES.labels("delivered").inc()
    else:
        WEBHOOK_DELIVERIES.labels("rejected" if outcome.status_code else "unreachable").inc()
    return {
        "endpoint_id": endpoint_id,
        "event_id": event.id,
        "event_type": event.type,
        "attempt": attempt,
        "status_code": outcome.status_code,
        "succeeded": outcome.succeeded,
        "error": outcome.failure,
        "response_excerpt": outcome.excerpt,
        "duration_ms": outcome.duration_ms,
        "manual": manual,
        "created": utcnow(),
    }


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure in a row: WEBHOOK_RETRY_SECONDS doubled
    each time, at most an hour."""
    base = current_app.config["WEBHOOK_RETRY_SECONDS"]
    return min(timedelta(seconds=base * 2 ** min(attempts - 1, 20)), MAX_BACKOFF)


def _due(now: datetime):
    """The endpoints that are enabled, not waiting for a retry, not leased, and have events
    after their cursor."""
    has_work = (
        select(OutboxEvent.id)
        .where(
            OutboxEvent.company_id == WebhookEndpoint.company_id,
            OutboxEvent.id > WebhookEndpoint.cursor,
        )
        .exists()
    )
    return select(WebhookEndpoint.id).where(
        WebhookEndpoint.enabled.is_(True),
        (WebhookEndpoint.next_attempt_at.is_(None)) | (WebhookEndpoint.next_attempt_at <= now),
        (WebhookEndpoint.lease_until.is_(None)) | (WebhookEndpoint.lease_until < now),
        has_work,
    )


def has_work() -> bool:
    """Whether some endpoint has events due (one read, no lock): the deliverers look
    before they start."""
    reads_only()
    return db.session.scalar(_due(utcnow()).limit(1)) is not None


def claim(now: datetime | None = None, budget: float = RUN_SECONDS) -> tuple[int, datetime] | None:
    """Lease one enabled endpoint that has events to deliver and is not waiting for a
    retry, for this process: (endpoint id, lease), or None. Commits."""
    now = now or utcnow()
    query = (
        _due(now)
        .order_by(WebhookEndpoint.next_attempt_at.is_not(None), WebhookEndpoint.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=WebhookEndpoint)
    )
    endpoint_id = db.session.scalar(query)
    if endpoint_id is None:
        db.session.rollback()
        return None
    lease = now + timedelta(seconds=budget + 2 * current_app.config["WEBHOOK_TIMEOUT_SECONDS"] + 5)
    # The condition again: on SQLite, which has no row locks, two processes may pick the
    # same endpoint; only one UPDATE matches.
    taken = db.session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == endpoint_id,
            (WebhookEndpoint.lease_until.is_(None)) | (WebhookEndpoint.lease_until < now),
        )
        .values(lease_until=lease)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return (endpoint_id, lease) if taken else None


def deliver_leased(
    endpoint_id: int,
    lease: datetime,
    budget: float = RUN_SECONDS,
    idle: Callable[[float], None] | None = None,
) -> int:
    """Deliver, in order, the events due to the endpoint leased as `lease`, until a
    delivery fails or `budget` seconds have passed, or, without `idle`, until it is caught
    up; with `idle`, a caught-up run waits once (up to IDLE_WAIT) for more events and goes
    on if some came, so a busy endpoint keeps its deliverer instead of being claimed again
    for every few events, and a quiet one lets it go. Then the lease is given back.
    Progress and the log are written every COMMIT_EVERY deliveries or COMMIT_SECONDS,
    whichever first (a crash in between sends those again: at least once). Returns how
    many attempts were made."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.lease_until != lease:
        db.session.rollback()
        return 0
    state = _State(endpoint)
    url, secret, company_id = endpoint.url, endpoint.secret, endpoint.company_id
    wanted = set(endpoint.event_types or ())
    db.session.rollback()  # hold no transaction while delivering
    deadline = time.monotonic() + budget
    target, refused = _resolved(url)
    attempts = 0
    failed = waited = False
    while not failed and time.monotonic() < deadline:
        events = _events_after(company_id, state.cursor)
        if not events:
            state.save(lease)
            if idle is None or waited:  # caught up, and nothing came while waiting once
                break
            idle(min(IDLE_WAIT, max(0.0, deadline - time.monotonic())))
            waited = True
            continue
        waited = False
        due = [event for event in events if not wanted or event.type in wanted]
        for start in range(0, len(due), COMMIT_EVERY):
            chunk = due[start : start + COMMIT_EVERY]
            outcomes = _send(target, refused, secret, chunk, deadline)
            for event, outcome in zip(chunk, outcomes, strict=False):  # those sent
                attempts += 1
                state.log(event, outcome)
                failed = failed or not outcome.succeeded
            if failed or len(outcomes) < len(chunk) or time.monotonic() >= deadline:
                break
            if state.due():
                state.save(lease)
        else:  # all delivered: the cursor passes the unwanted events after them too
            state.cursor = events[-1].id
    state.save(lease, release=True)
    return attempts


# How long a caught-up run waits for more events, and how often it writes its progress.
IDLE_WAIT = 0.25
COMMIT_SECONDS = 0.5


class _State:
    """An endpoint's delivery state during a run, written with one UPDATE (that checks the
    lease is still ours) and one INSERT of log rows."""

    def __init__(self, endpoint: WebhookEndpoint):
        self.id = endpoint.id
        self.cursor = endpoint.cursor
        self.attempts = endpoint.attempts
        self.failing_since = endpoint.failing_since
        self.next_attempt_at = endpoint.next_attempt_at
        self.last_error = endpoint.last_error
        self.enabled = endpoint.enabled
        self.disabled_reason = endpoint.disabled_reason
        self.rows: list[dict] = []
        self.saved_cursor = endpoint.cursor
        self.saved_at = time.monotonic()

    def log(self, event, outcome: Outcome) -> None:
        self.rows.append(_log_values(self.id, event, self.attempts + 1, outcome))
        if outcome.succeeded:
            self.cursor = event.id
            self.attempts = 0
            self.failing_since = self.next_attempt_at = self.last_error = None
        else:
            self._failed(outcome)

    def _failed(self, outcome: Outcome) -> None:
        now = utcnow()
        self.attempts += 1
        self.failing_since = self.failing_since or now
        self.last_error = outcome.failure
        self.next_attempt_at = now + backoff(self.attempts)
        limit = timedelta(hours=current_app.config["WEBHOOK_DISABLE_AFTER_HOURS"])
        if now - self.failing_since >= limit:
            self.enabled = False
            self.disabled_reason = (
                f"Disabled automatically: deliveries failed for "
                f"{limit.total_seconds() / 3600:g} hours ({self.attempts} attempts since "
                f"{self.failing_since:%Y-%m-%d %H:%M} UTC; last: {self.last_error})"
            )[:300]
            log.warning("webhook endpoint %s disabled: %s", self.id, self.disabled_reason)

    def due(self) -> bool:
        return len(self.rows) >= COMMIT_EVERY or time.monotonic() - self.saved_at >= COMMIT_SECONDS

    def save(self, lease: datetime, release: bool = False) -> None:
        """Write the progress (and give the lease back with `release`), if the lease is
        still ours; else roll back and raise LeaseLost."""
        if not release and not self.rows and self.cursor == self.saved_cursor:
            return
        values = {
            "cursor": self.cursor,
            "attempts": self.attempts,
            "failing_since": self.failing_since,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
        }
        if release:
            values["lease_until"] = None
        updated = db.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == self.id, WebhookEndpoint.lease_until == lease)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not updated:
            db.session.rollback()
            raise LeaseLost(self.id)
        if self.rows:
            insert_all(WebhookDelivery.__table__, self.rows)
        db.session.commit()
        self.rows = []
        self.saved_cursor = self.cursor
        self.saved_at = time.monotonic()


# What an event's delivery needs of it (`event_body`, the log).
_EVENT_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.type,
    OutboxEvent.company_id,
    OutboxEvent.created,
    OutboxEvent.data,
)


def _events_after(company_id: int, cursor: int) -> list:
    """The company's next events after `cursor` (rows, not objects), in order."""
    try:
        return db.session.execute(
            select(*_EVENT_COLUMNS)
            .where(OutboxEvent.company_id == company_id, OutboxEvent.id > cursor)
            .order_by(OutboxEvent.id)
            .limit(FETCH)
        ).all()
    finally:
        db.session.rollback()  # a read: give the connection back while delivering


class LeaseLost(Exception):
    """Another process has this endpoint now."""


def deliver_due(
    limit: int = 100, budget: float = RUN_SECONDS, idle: Callable[[float], None] | None = None
) -> int:
    """Claim and deliver endpoints until none has work (at most `limit` runs): the body
    of the delivery loop (with `idle`: `wait_for_events`), and what tests call directly.
    Returns the attempts made."""
    total = 0
    for _ in range(limit):
        claimed = claim(budget=budget)
        if claimed is None:
            break
        try:
            total += deliver_leased(*claimed, budget=budget, idle=idle)
        except LeaseLost as exc:
            log.warning("webhook endpoint %s: lease lost, another process delivers", exc)
    return total


_arrivals = threading.Condition()


def events_committed() -> None:
    """Wake the runs waiting for events (called for every commit that wrote some)."""
    with _arrivals:
        _arrivals.notify_all()


def wait_for_events(timeout: float) -> None:
    """Wait until events are committed, at most `timeout` seconds."""
    with _arrivals:
        _arrivals.wait(timeout)
