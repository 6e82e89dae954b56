"""Shared by the benchmarks: a database to fill, and the app served as in production."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import PostgresServer, free_port, start_gunicorn  # noqa: E402

__all__ = ["ROOT", "PostgresServer", "free_port", "database", "serve"]


def database(kind: str, workdir: Path):
    """(url, server or None): a fresh PostgreSQL database on a throwaway server, or a
    SQLite file in `workdir`."""
    if kind == "postgresql":
        server = PostgresServer().start()
        return server.create_database("plugboard_bench"), server
    return f"sqlite:///{workdir / 'bench.db'}", None


def serve(url: str, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    """The app under gunicorn (gevent workers) on a free loopback port."""
    return start_gunicorn(url, log, workers)
