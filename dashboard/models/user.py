"""Roles, users and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.extensions import db
from dashboard.models.company import Company
from dashboard.models.types import UTCDateTime, utcnow

TOKEN_PREFIX = "pb_"


class Role(db.Model):
    """A named set of permission strings; `all_companies` lifts the company policy."""

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    all_companies: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return f"<Role {self.name}>"


class User(UserMixin, db.Model):
    """A person who signs in to the dashboard or owns API tokens."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="RESTRICT"), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every session and remember cookie of this user: a new value (at sign-out,
    # at a new password) ends them all, on every device.
    session_token: Mapped[str] = mapped_column(
        String(43), default=lambda: secrets.token_urlsafe(32)
    )

    role: Mapped[Role] = relationship(lazy="joined")
    company: Mapped[Company | None] = relationship()

    @property
    def is_active(self) -> bool:  # flask-login refuses inactive users
        return self.active

    @property
    def is_superadmin(self) -> bool:
        """True when the role sees every company."""
        return bool(self.role.all_companies)

    def can(self, permission: str) -> bool:
        """Whether the user's role carries `permission`."""
        return permission in (self.role.permissions or ())

    # Set on the user being signed in: each sign-in gets a cookie of its own, so that a
    # remember cookie of one sign-in is never that of another.
    login_nonce: str = ""

    def get_id(self) -> str:
        """What a session and a remember cookie hold: the id, the session token, and the
        sign-in's own nonce (see `dashboard.auth.load_user`)."""
        return f"{self.id}:{self.session_token}:{self.login_nonce}"

    def end_sessions(self) -> None:
        """End every session and remember cookie of this user."""
        self.session_token = secrets.token_urlsafe(32)

    def set_password(self, password: str) -> None:
        """Store a salted hash of `password` (see `password_hash_method`); every session
        of the user ends."""
        self.password_hash = generate_password_hash(password, method=password_hash_method())
        self.end_sessions()

    def check_password(self, password: str) -> bool:
        """Whether `password` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.email}>"


def password_hash_method() -> str:
    """werkzeug's hash method for passwords: scrypt unless PASSWORD_HASH_METHOD says
    otherwise (the tests use a cheaper one)."""
    return current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")


_dummy_hashes: dict[str, str] = {}


def check_no_password(password: str) -> bool:
    """Check `password` against a hash no password matches, as long as a real check takes:
    a sign-in as an unknown or inactive account must not answer faster than one as a
    known account (that would tell which e-mail addresses have accounts). Always False."""
    method = password_hash_method()
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    check_password_hash(_dummy_hashes[method], password)
    return False


def hash_token(token: str) -> str:
    """The stored form of an API token. Tokens carry 256 random bits, so a fast hash is
    enough to make a leaked table useless, and it keeps the lookup one indexed query."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(db.Model):
    """A bearer token for the JSON API, stored hashed, revocable."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")

    @staticmethod
    def generate() -> str:
        """A new token in clear text: shown once, never stored."""
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    @property
    def is_revoked(self) -> bool:
        """Whether the token has been revoked."""
        return self.revoked is not None
