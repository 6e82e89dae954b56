"""API tokens: issue, resolve and revoke.

A read (GET) may trust a token this process resolved less than API_TOKEN_CACHE_SECONDS ago,
so a list request costs no authentication query. Any committed change to a user, a role or
a token clears every process's cache through the event bus (Redis between processes when
configured), and writes always resolve the token in the database: a revoked token stops
writing at once, and stops reading at once too unless several processes run without Redis
(or while Redis is unreachable), where it may read for up to the cache's lifetime."""

from __future__ import annotations

import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from dashboard.extensions import db
from dashboard.live import events
from dashboard.models import ApiToken, Role, User
from dashboard.models.types import utcnow
from dashboard.models.user import hash_token

# "Last used" is written at most this often per token, so reads do not all turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)

AUTH_CHANGED = events.AUTH_CHANGED  # the event type that clears the caches
_MAX_CACHED = 10_000
# token hash -> (monotonic time it expires, the user, detached: read its loaded fields only)
_cache: dict[str, tuple[float, User]] = {}


def issue_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the clear text (shown once)."""
    clear = ApiToken.generate()
    token = ApiToken(user=user, name=name, token_hash=hash_token(clear), prefix=clear[:10])
    db.session.add(token)
    db.session.flush()
    return token, clear


def user_for_token(clear: str, *, for_reading: bool = False) -> User | None:
    """The active user a valid, unrevoked token belongs to, or None. One query, or none
    `for_reading` when this process resolved the token recently; the user is then detached
    from the session, fit for reading its own fields and role only."""
    digest = hash_token(clear)
    if for_reading:
        hit = _cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    user = _resolve(digest)
    if for_reading and user is not None:
        _remember(digest, user)
    return user


def _resolve(digest: str) -> User | None:
    row = db.session.execute(
        select(User, ApiToken.id, ApiToken.last_used)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == digest,
            ApiToken.revoked.is_(None),
            User.active.is_(True),
        )
    ).first()
    if row is None:
        return None
    user, token_id, last_used = row
    now = utcnow()
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used=now))
    return user


def _remember(digest: str, user: User) -> None:
    lifetime = current_app.config.get("API_TOKEN_CACHE_SECONDS", 0)
    if lifetime <= 0:
        return
    bus = events.current_bus()
    if bus is not None:  # other processes' changes reach this one through its listener;
        bus.ensure_listening(timeout=0)  # started, not waited for (Redis may be away)
    db.session.expunge(user.role)
    db.session.expunge(user)
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    _cache[digest] = (time.monotonic() + lifetime, user)


def forget_tokens() -> None:
    """Drop every token this process remembers."""
    _cache.clear()


def _on_event(event: dict) -> None:
    # After a Redis outage, changes announced by other processes meanwhile were missed.
    if event.get("type") in (AUTH_CHANGED, events.BUS_RESUMED):
        forget_tokens()


events.subscribe(_on_event)

_ANNOUNCED = "plugboard_auth_changed"


def _announce(mapper, connection, target) -> None:
    """A user, role or token updated or deleted (new ones change nothing a cache holds):
    announce it once per transaction, after it commits."""
    session = object_session(target)
    if session is not None and not session.info.get(_ANNOUNCED):
        session.info[_ANNOUNCED] = True
        events.publish_after_commit(session, {"type": AUTH_CHANGED})


for _model in (User, Role, ApiToken):
    sa_event.listen(_model, "after_update", _announce)
    sa_event.listen(_model, "after_delete", _announce)


@sa_event.listens_for(Session, "after_commit")
@sa_event.listens_for(Session, "after_soft_rollback")
def _announced_no_more(session: Session, *args) -> None:
    session.info.pop(_ANNOUNCED, None)


def revoke_token(token: ApiToken) -> None:
    """Revoke `token`; it stops working at once (every process forgets it on commit)."""
    if token.revoked is None:
        token.revoked = utcnow()
    db.session.flush()
