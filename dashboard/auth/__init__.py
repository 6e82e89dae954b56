"""Who is asking: browser sessions (flask-login) and API bearer tokens."""

from __future__ import annotations

from dashboard.extensions import db, login_manager
from dashboard.models import User


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The signed-in user of a session, or None when gone or deactivated."""
    try:
        user = db.session.get(User, int(user_id))
    except ValueError:
        return None
    return user if user is not None and user.active else None
