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

    def set_password(self, password: str) -> None:
        """Store a salted hash of `password` (werkzeug; scrypt unless PASSWORD_HASH_METHOD
        says otherwise, as the tests do to run faster)."""
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        """Whether `password` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.email}>"


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
