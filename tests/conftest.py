"""Fixtures: an application per test on a fresh database, SQLite or PostgreSQL (every test
that takes `app` runs on both), and a small world of companies, users and tokens."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from dashboard import create_app
from dashboard.auth.tokens import issue_token, revoke_token
from dashboard.cli import create_company, create_user
from dashboard.extensions import db
from dashboard.models import ChargePoint, User
from dashboard.services.permissions import sync_builtin_roles
from tests.servers import PostgresServer, RedisServer, start_gunicorn, stop_process

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the whole session."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A Redis server for the whole session."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgresql_url(postgres):
    """A database on the session's server whose schema the models declare."""
    url = postgres.create_database("plugboard_test")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    """A SQLite file for the session, with the schema the models declare."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return url


def _empty_all_tables() -> None:
    if db.engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        # The test servers' background jobs (the incident sweep, webhook deliveries) read
        # these tables too: a TRUNCATE may deadlock with one of them, and is then retried.
        for attempt in range(5):
            try:
                db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                break
            except OperationalError:
                db.session.rollback()
                if attempt == 4:
                    raise
                time.sleep(0.2)
    else:
        # Without AUTOINCREMENT, SQLite numbers rows from max(id) + 1: from 1 again here.
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """The database backend of the test."""
    return request.param


@pytest.fixture
def database_url(request, backend) -> str:
    """The session's database of `backend`, emptied for this test."""
    return request.getfixturevalue(f"{backend}_url")


TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.1/32"],  # the tests' receivers
    "WEBHOOK_RETRY_SECONDS": 1,
}


@pytest.fixture
def app(database_url):
    """An application on an empty database of `backend`."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        _empty_all_tables()
        sync_builtin_roles()
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# Settings of the served app in tests: calls to charge points give up quickly, silent
# sockets are closed after 4 s, and Plugboard asks no charge point for its statuses on its
# own (tests/ocpp/test_fresh.py has a server that does), so that tests see only their calls.
LIVE_SERVER_ENV = {
    "OCPP_CALL_TIMEOUT": "2",
    "OCPP_HEARTBEAT_INTERVAL": "60",
    "OCPP_IDLE_TIMEOUT": "4",
    "OCPP_STATUS_SETTLE_SECONDS": "0",
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    "WEBHOOK_RETRY_SECONDS": "1",
    "INCIDENT_SWEEP_SECONDS": "1",
    # The shared test servers deliver no webhooks: in-process tests deliver on the same
    # databases and count attempts. Tests of delivery through servers start their own.
    "WEBHOOK_CONCURRENCY": "0",
}


def _serve(url, tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    process, port = start_gunicorn(url, log, workers=1, env=LIVE_SERVER_ENV)
    yield port
    stop_process(process)


@pytest.fixture(scope="session")
def gunicorn_sqlite(sqlite_url, tmp_path_factory):
    """The app under gunicorn (one gevent worker) on the session's SQLite file."""
    yield from _serve(sqlite_url, tmp_path_factory)


@pytest.fixture(scope="session")
def gunicorn_postgresql(postgresql_url, tmp_path_factory):
    """The app under gunicorn (one gevent worker) on the session's PostgreSQL database."""
    yield from _serve(postgresql_url, tmp_path_factory)


@pytest.fixture
def live_port(request, backend, app) -> int:
    """The port of the app served by gunicorn, on this test's (emptied) database."""
    return request.getfixturevalue(f"gunicorn_{backend}")


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
    from dashboard.services.chargepoints import create_chargepoint
    from dashboard.services.permissions import SYSTEM

    with app.app_context():
        a = create_company("Company A")
        b = create_company("Company B")
        admin = create_user("admin@example.com", PASSWORD, "superadmin", None)
        user_a = create_user("a@example.com", PASSWORD, "company_user", a.id)
        user_b = create_user("b@example.com", PASSWORD, "company_user", b.id)
        cp_a = create_chargepoint(SYSTEM, identity="CP-A", company_id=a.id, name="A one")
        cp_b = create_chargepoint(SYSTEM, identity="CP-B", company_id=b.id, name="B one")
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


@contextlib.contextmanager
def recorded_statements(app):
    """The SQL statements run on the app's database engine while the block runs (a list
    that fills as they run)."""
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
