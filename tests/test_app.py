"""The application itself: settings, health, the API description, events after commit."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from dashboard import create_app
from dashboard.extensions import db
from dashboard.live import events
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.servers import ROOT


def test_refuses_to_start_without_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_secret_key_file_is_used(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(key_file))
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).secret_key == "from-file"


def test_postgres_urls_use_psycopg3(monkeypatch):
    from dashboard.config import database_url

    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert database_url() == "postgresql+psycopg://u@h/db"


def test_server_database_pool_is_sized_by_the_environment(monkeypatch):
    from dashboard.config import engine_options

    monkeypatch.delenv("DATABASE_POOL_SIZE", raising=False)
    monkeypatch.delenv("DATABASE_MAX_OVERFLOW", raising=False)
    assert engine_options("postgresql+psycopg://u@h/db") == {
        "pool_recycle": 1800,
        "pool_size": 10,
        "max_overflow": 10,
        "connect_args": {"options": "-c TimeZone=UTC"},
    }
    monkeypatch.setenv("DATABASE_POOL_SIZE", "50")
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
    options = engine_options("postgresql+psycopg://u@h/db")
    assert (options["pool_size"], options["max_overflow"]) == (50, 0)
    assert engine_options("sqlite:///x.db") == {"pool_recycle": 1800}
    monkeypatch.setenv("DATABASE_POOL_SIZE", "many")
    with pytest.raises(RuntimeError, match="DATABASE_POOL_SIZE must be a whole number"):
        engine_options("postgresql+psycopg://u@h/db")


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_unreachable_database(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_openapi_document_describes_every_endpoint(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.0.3"
    operations = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert {
        ("/api/v1/connectors", "post"),
        ("/api/v1/connectors/chargepoint/{cp_id}", "get"),
        ("/api/v1/connectors/{connector_id}", "put"),
        ("/api/v1/connectors/{connector_id}", "delete"),
        ("/api/v1/chargepoints", "post"),
        ("/api/v1/chargepoints/{cp_id}", "delete"),
    } <= operations
    create = spec["components"]["schemas"]["ConnectorCreate"]
    assert set(create["required"]) == {"connector_id", "connector_cp_id"}
    assert "Charging" in create["properties"]["connector_status"]["enum"]
    assert create["properties"]["connector_status"]["default"] == "Available"


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    validate(client.get("/api/v1/openapi.json").get_json())


def test_docs_page_lists_endpoints(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/connectors/chargepoint/{cp_id}" in page
    assert "ConnectorCreateRequest" in page


def test_docs_page_reads_well(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "<main" in page and 'href="/"' in page  # a landmark, and the way back
    assert "string of" not in page and "integer of" not in page
    assert "`" not in page  # Markdown code spans are rendered as <code>
    assert "<code>create.chargepoint</code>" in page
    assert (
        '<a href="#schema-ConnectorCreateRequest"><code>ConnectorCreateRequest</code></a>' in page
    )
    assert 'list of <a href="#schema-Connector">' in page
    assert "<th></th>" not in page
    # The errors every operation shares are described once, not in every operation.
    assert page.count("Field validation failed") == 1


def test_events_are_published_after_commit_only(app, world):
    received = []
    unsubscribe = events.subscribe(received.append)
    try:
        with app.app_context():
            create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
            assert received == []
            db.session.rollback()
            assert received == []
            create_connector(SYSTEM, connector_id=2, connector_cp_id=world.cp_a, source="api")
            db.session.commit()
    finally:
        unsubscribe()
    # The page update, and the wake-up of deliverers for the outbox rows of that commit.
    assert [e["type"] for e in received] == ["connector", "outbox"]
    page = received[0]
    assert (page["action"], page["connector_id"], page["company_id"]) == (
        "created",
        2,
        world.company_a,
    )


def test_security_headers(client):
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "POST"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/chargepoints/0",
        "/api/v1/chargepoints/2147483648",
        "/api/v1/connectors/0",
        "/api/v1/connectors/99999999999",
        "/api/v1/connectors/0/unlock",
        "/api/v1/connectors/chargepoint/2147483648",
        "/chargepoints/0",
    ],
)
def test_ids_outside_the_database_range_are_not_found_for_every_method(method, path):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    response = app.test_client().open(path, method=method)
    assert response.status_code == 404 and "Allow" not in response.headers


def test_the_largest_id_still_matches():
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    adapter = app.url_map.bind("localhost")
    assert adapter.match("/api/v1/chargepoints/2147483647")[1] == {"cp_id": 2**31 - 1}


def test_private_answers_are_never_cached(client, world):
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/chargepoints").headers["Cache-Control"] == "no-store"
    with client.get("/static/css/app.css") as static:
        assert "no-store" not in static.headers.get("Cache-Control", "")


def _gunicorn(env: dict) -> subprocess.CompletedProcess:
    """`gunicorn --check-config` with gunicorn.conf.py and `env`: reads the settings only."""
    environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "WEB_CONCURRENCY")}
    return subprocess.run(
        [str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "--print-config", "wsgi:app"],
        cwd=ROOT,
        env={**environment, "SECRET_KEY": "x", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_gunicorn_runs_one_worker_without_redis():
    result = _gunicorn({})
    assert result.returncode == 0 and re.search(r"^workers\s*=\s*1$", result.stdout, re.M)
    # and writes no control socket under ~/.gunicorn unless asked to
    assert re.search(r"^control_socket_disable\s*=\s*True$", result.stdout, re.M)


def test_gunicorn_refuses_several_workers_without_redis():
    result = _gunicorn({"WEB_CONCURRENCY": "2"})
    assert result.returncode != 0 and "needs REDIS_URL" in result.stderr


def test_gunicorn_runs_several_workers_with_redis():
    result = _gunicorn({"WEB_CONCURRENCY": "3", "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 0 and re.search(r"^workers\s*=\s*3$", result.stdout, re.M)


def test_times_read_back_in_utc_on_both_backends(app):
    """Stored times come back aware, in datetime.UTC itself (PostgreSQL sessions run in UTC
    whatever the server's zone, so psycopg needs no conversion), and equal to what was
    stored, from any zone; a naive time is refused."""
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy import text, update

    from dashboard.extensions import db
    from dashboard.models import Company

    summer = datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            assert db.session.scalar(text("SHOW TimeZone")) == "UTC"
        company = Company(name="Zones")
        db.session.add(company)
        db.session.commit()
        company_id = company.id
        of_it = update(Company).where(Company.id == company_id)
        db.session.execute(of_it.values(created=summer))
        db.session.commit()
        db.session.expunge_all()
        created = db.session.get(Company, company_id).created
        assert created.tzinfo is UTC
        assert created == summer and created.hour == 12
        db.session.rollback()
        with pytest.raises(Exception, match="naive datetime"):
            db.session.execute(of_it.values(created=datetime(2026, 1, 1)))
        db.session.rollback()


MASTER_THEN_WORKER = """
import runpy
import sys

runpy.run_path("gunicorn.conf.py")  # what the master imports, before any worker exists
from gevent import monkey  # then, in the worker, gevent patches and the app is loaded

monkey.patch_all()
import psycopg.waiting as waiting
from wsgi import app

print("psycopg" in sys.modules, waiting.wait is getattr(waiting, "wait_c", None))
"""


def test_psycopg_waits_cooperatively_in_a_gevent_worker():
    """psycopg chooses how to wait for the server when it is first imported: imported in
    gunicorn's master (by gunicorn.conf.py, which imports the app's package), before
    gevent patches the worker, it would block the whole worker on every query."""
    environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "WEB_CONCURRENCY")}
    result = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-c", MASTER_THEN_WORKER],
        cwd=ROOT,
        env={**environment, "SECRET_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]  # imported, and not the blocking wait
