"""Shared by the benchmarks: a database to fill, and the app served as in production."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import (  # noqa: E402
    PostgresServer,
    RedisServer,
    free_port,
    start_gunicorn,
    stop_process,
)

__all__ = [
    "ROOT",
    "PostgresServer",
    "clean_up",
    "database",
    "fill",
    "free_port",
    "serve",
    "start_bare_server",
    "stop_process",
]

STATUSES = [
    "Available",
    "Charging",
    "Available",
    "Preparing",
    "SuspendedEV",
    "Finishing",
    "Available",
    "Faulted",
    "Unavailable",
    "Charging",
]
KINDS = ("Type2", "CCS", "CHAdeMO", "Type1", "GB/T")


def database(kind: str, workdir: Path):
    """(url, server or None): a fresh PostgreSQL database on a throwaway server, or a
    SQLite file in `workdir`."""
    if kind == "postgresql":
        server = PostgresServer().start()
        return server.create_database("plugboard_bench"), server
    return f"sqlite:///{workdir / 'bench.db'}", None


def serve(
    url: str, workers: int, log: Path, env: dict | None = None
) -> tuple[subprocess.Popen, int]:
    """The app under gunicorn (gevent workers) on a free loopback port; several workers
    get a Redis of their own, as they need (stopped when the benchmark exits).
    BENCH_LOG_LEVEL, if set, is the server's log level (warning otherwise)."""
    env = dict(env or {})
    if os.environ.get("BENCH_LOG_LEVEL"):
        env["LOG_LEVEL"] = os.environ["BENCH_LOG_LEVEL"]
    if workers > 1:
        redis = RedisServer().start()
        atexit.register(redis.stop)
        env["REDIS_URL"] = redis.url
    return start_gunicorn(url, log, workers, env=env)


def start_bare_server() -> tuple[subprocess.Popen, int]:
    """The yardstick, bench/bare_server.py, on a free loopback port; returns once it
    listens, with the process and the port."""
    port = free_port()
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/bare_server.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    process.stdout.readline()
    return process, port


def clean_up(children, server, workdir: Path) -> None:
    """After a benchmark: stop the child processes it started (None: not started), its
    throwaway PostgreSQL, and remove its working folder."""
    for child in children:
        if child is not None:
            child.terminate()
            child.wait(timeout=60)
    if server is not None:
        server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def fill(url: str, chargepoints: int, per_cp: int, companies: int = 10) -> dict:
    """Migrate the database and fill it: `companies` companies sharing `chargepoints`
    charge points with `per_cp` connectors each, in varied statuses; a superadmin and a
    user of the first company. Returns their ids and the superadmin's API token."""
    from flask_migrate import upgrade

    from dashboard import create_app
    from dashboard.auth.tokens import issue_token
    from dashboard.cli import create_company, create_user
    from dashboard.extensions import db
    from dashboard.models import ChargePoint, Connector
    from dashboard.models.types import utcnow
    from dashboard.services.permissions import sync_builtin_roles

    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        sync_builtin_roles()
        company_ids = [create_company(f"Bench {n}").id for n in range(1, companies + 1)]
        admin = create_user("bench@example.com", "bench-password", "superadmin", None)
        user = create_user("user@example.com", "bench-password", "company_user", company_ids[0])
        _, token = issue_token(admin, "bench")
        now = utcnow()
        db.session.execute(
            db.insert(ChargePoint),
            [
                {
                    "identity": f"BENCH-{n:05d}",
                    "name": f"Bench {n}",
                    "company_id": company_ids[n % companies],
                    "registration_status": "Accepted",
                    "created": now,
                    "updated": now,
                }
                for n in range(1, chargepoints + 1)
            ],
        )
        rows = []
        for cp in range(1, chargepoints + 1):
            for c in range(1, per_cp + 1):
                status = STATUSES[(cp * per_cp + c) % len(STATUSES)]
                rows.append(
                    {
                        "connector_id": c,
                        "connector_cp_id": cp,
                        "connector_type": KINDS[(cp + c) % len(KINDS)],
                        "connector_status": status,
                        "connector_error_code": "GroundFailure"
                        if status == "Faulted"
                        else "NoError",
                        "connector_enabled": (cp + c) % 13 != 0,
                        "connector_max_volt": "400",
                        "connector_max_amp": "32.5",
                        "connector_created": now,
                        "connector_updated": now,
                    }
                )
        db.session.execute(db.insert(Connector), rows)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            # Statistics, as autovacuum would gather them after a bulk load.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        result = {"token": token, "admin": admin.id, "user": user.id}
        db.engine.dispose()
    return result
