"""Who is asking: browser sessions (flask-login) and API bearer tokens."""

from __future__ import annotations

import hmac

from dashboard.extensions import db, login_manager
from dashboard.models import User


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The signed-in user of a session or remember cookie ("id:session token:nonce", see
    `User.get_id`), or None when the user is gone or deactivated, or has since signed out
    or been given a new password (the session token then differs)."""
    number, _, rest = user_id.partition(":")
    session_token, _, nonce = rest.partition(":")
    if not (number.isascii() and number.isdigit()) or not 0 < int(number) < 2**31:
        return None
    user = db.session.get(User, int(number))
    if user is None or not user.active or not session_token:
        return None
    if not hmac.compare_digest(user.session_token.encode(), session_token.encode()):
        return None
    user.login_nonce = nonce
    return user
