"""API tokens: issue, resolve and revoke."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from dashboard.extensions import db
from dashboard.models import ApiToken, User
from dashboard.models.types import utcnow
from dashboard.models.user import hash_token

# "Last used" is written at most this often per token, so reads do not all turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def issue_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the clear text (shown once)."""
    clear = ApiToken.generate()
    token = ApiToken(user=user, name=name, token_hash=hash_token(clear), prefix=clear[:10])
    db.session.add(token)
    db.session.flush()
    return token, clear


def user_for_token(clear: str) -> User | None:
    """The active user a valid, unrevoked token belongs to, or None. One query: it runs on
    every API request."""
    row = db.session.execute(
        select(User, ApiToken.id, ApiToken.last_used)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == hash_token(clear),
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


def revoke_token(token: ApiToken) -> None:
    """Revoke `token`; it stops working at once."""
    if token.revoked is None:
        token.revoked = utcnow()
    db.session.flush()
