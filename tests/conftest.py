"""Fixtures: an application per test on a fresh database, SQLite or PostgreSQL (every test
that takes `app` runs on both), and a small world of companies, users and tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from dashboard import create_app
from dashboard.auth.tokens import issue_token, revoke_token
from dashboard.cli import create_company, create_user
from dashboard.extensions import db
from dashboard.models import ChargePoint, User
from dashboard.services.permissions import sync_builtin_roles
from tests.pg import PostgresServer

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the whole session."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres):
    """A database on the session's server whose schema the models declare."""
    url = postgres.create_database("plugboard_test")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return url


def _truncate_all() -> None:
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """The database backend of the test."""
    return request.param


@pytest.fixture
def app(request, backend, tmp_path):
    """An application on an empty database of `backend`."""
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'test.db'}"
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": url,
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        }
    )
    with app.app_context():
        if backend == "postgresql":
            _truncate_all()
        else:
            db.create_all()
        sync_builtin_roles()
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client of `app`."""
    return app.test_client()


@dataclass
class World:
    """Two companies, each with a charge point; a superadmin; a user of each company;
    a token for each user and one revoked token."""

    company_a: int
    company_b: int
    cp_a: int
    cp_b: int
    admin: int
    user_a: int
    user_b: int
    tokens: dict[str, str]


@pytest.fixture
def world(app) -> World:
    """The standard cast of a test, committed."""
    from dashboard.cli import OPERATOR
    from dashboard.services.chargepoints import create_chargepoint

    with app.app_context():
        a = create_company("Company A")
        b = create_company("Company B")
        admin = create_user("admin@example.com", PASSWORD, "superadmin", None)
        user_a = create_user("a@example.com", PASSWORD, "company_user", a.id)
        user_b = create_user("b@example.com", PASSWORD, "company_user", b.id)
        cp_a = create_chargepoint(OPERATOR, identity="CP-A", company_id=a.id, name="A one")
        cp_b = create_chargepoint(OPERATOR, identity="CP-B", company_id=b.id, name="B one")
        tokens = {
            "admin": issue_token(admin, "t")[1],
            "user_a": issue_token(user_a, "t")[1],
            "user_b": issue_token(user_b, "t")[1],
        }
        revoked, tokens["revoked"] = issue_token(admin, "old")
        revoke_token(revoked)
        db.session.commit()
        return World(a.id, b.id, cp_a.id, cp_b.id, admin.id, user_a.id, user_b.id, tokens)


class Api:
    """Calls the API as a given token, wrapping bodies in the request envelope."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.token = token

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def call(self, method: str, path: str, req_data=None, *, raw=None, **kwargs):
        if req_data is not None:
            kwargs["json"] = {
                "id": str(uuid.uuid4()),
                "req_data": req_data,
                "timestamp": "2024-01-15T10:30:00Z",
            }
        if raw is not None:
            kwargs["json"] = raw
        kwargs["headers"] = self.headers(kwargs.get("headers"))
        return self.client.open(path, method=method, **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, req_data=None, **kw):
        return self.call("POST", path, req_data, **kw)

    def put(self, path, req_data=None, **kw):
        return self.call("PUT", path, req_data, **kw)

    def delete(self, path, req_data=None, **kw):
        return self.call("DELETE", path, req_data, **kw)


@pytest.fixture
def as_(client, world):
    """`as_("admin")`, `as_("user_a")`, `as_("user_b")`, `as_("revoked")`, `as_(None)`."""
    return lambda who: Api(client, world.tokens[who] if who else None)


def chargepoint_row(app, cp_id: int) -> ChargePoint | None:
    """The charge point as stored (a fresh read)."""
    with app.app_context():
        return db.session.get(ChargePoint, cp_id)


def user_row(app, user_id: int) -> User:
    """The user as stored."""
    with app.app_context():
        return db.session.get(User, user_id)
