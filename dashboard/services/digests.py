"""The incident digest by e-mail: every DIGEST_MINUTES, what was opened, acknowledged and
resolved since the last digest, to the active users of each company concerned (company
users see their own company's; superadmins every company's). Only with SMTP_URL set:
no e-mail setting, no e-mail.

SMTP_URL: `smtp://[user:password@]host[:port]` (STARTTLS when the server offers it),
`smtps://...` (TLS from the start); MAIL_FROM is the sender.
"""

from __future__ import annotations

import logging
import smtplib
from collections import defaultdict
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from flask import current_app
from sqlalchemy import or_, select

from dashboard.extensions import db
from dashboard.models import Incident, User
from dashboard.models.types import utcnow
from dashboard.services.maintenance import claim_job

log = logging.getLogger(__name__)


def send_due(now: datetime | None = None) -> int:
    """Send the digest if it is due (one process, once per DIGEST_MINUTES); returns how
    many messages went out."""
    config = current_app.config
    if not config.get("SMTP_URL"):
        return 0
    every = timedelta(minutes=config["DIGEST_MINUTES"])
    since = claim_job("digest", every, now)
    if since is None:
        return 0
    if since.year == 1970:  # the first digest ever covers one period, not all history
        since = (now or utcnow()) - every
    return send_digest(since)


def _changed_since(since: datetime) -> list[Incident]:
    return list(
        db.session.scalars(
            select(Incident)
            .where(
                Incident.state != "pending",
                or_(
                    Incident.opened_at > since,
                    Incident.resolved_at > since,
                    Incident.acknowledged_at > since,
                ),
            )
            .order_by(Incident.company_id, Incident.opened_at)
        )
    )


def send_digest(since: datetime) -> int:
    """Send what changed since `since` to everyone concerned; returns messages sent."""
    incidents = _changed_since(since)
    if not incidents:
        return 0
    by_company: dict[int, list[Incident]] = defaultdict(list)
    for incident in incidents:
        by_company[incident.company_id].append(incident)
    recipients: dict[str, list[Incident]] = defaultdict(list)
    for user in db.session.scalars(select(User).where(User.active.is_(True))):
        if not user.can("read.incident"):
            continue
        if user.is_superadmin:
            recipients[user.email] = incidents
        elif user.company_id in by_company:
            recipients[user.email] = by_company[user.company_id]
    sent = 0
    with _smtp() as smtp:
        for address, theirs in recipients.items():
            smtp.send_message(_message(address, theirs, since))
            sent += 1
    log.info("incident digest: %d incidents to %d recipients", len(incidents), sent)
    return sent


def _smtp() -> smtplib.SMTP:
    parts = urlsplit(current_app.config["SMTP_URL"])
    timeout = 10
    if parts.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=timeout)
    else:
        smtp = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=timeout)
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
    if parts.username:
        smtp.login(unquote(parts.username), unquote(parts.password or ""))
    return smtp


def _line(incident: Incident) -> str:
    where = incident.chargepoint.identity
    if incident.connector_id is not None:
        where += f" connector {incident.connector_id}"
    state = incident.state
    if incident.state == "open" and incident.acknowledged_at is not None:
        by = incident.acknowledged_by.email if incident.acknowledged_by else "someone"
        state = f"open, acknowledged by {by}"
    minutes = (incident.duration_seconds or 0) // 60
    detail = " ".join(filter(None, [incident.error_code, incident.detail]))
    return (
        f"- [{state}] {incident.kind}: {where} since {incident.since:%Y-%m-%d %H:%M} UTC "
        f"({minutes} min){' - ' + detail if detail else ''}"
    )


def _message(address: str, incidents: list[Incident], since: datetime) -> EmailMessage:
    opened = sum(1 for i in incidents if i.state == "open")
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = address
    message["Subject"] = f"Plugboard: {opened} open incidents, {len(incidents)} changed"
    lines = [
        f"Incidents opened, acknowledged or resolved since {since:%Y-%m-%d %H:%M} UTC:",
        "",
        *(_line(incident) for incident in incidents),
        "",
        "See every incident on the Incidents page of Plugboard.",
    ]
    message.set_content("\n".join(lines))
    return message
