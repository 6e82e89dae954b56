"""Shared by the benchmarks: a database to fill, and the app served as in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg import PostgresServer, free_port  # noqa: E402

__all__ = ["ROOT", "PostgresServer", "free_port", "database", "serve"]


def database(kind: str, workdir: Path):
    """(url, server or None): a fresh PostgreSQL database on a throwaway server, or a
    SQLite file in `workdir`."""
    if kind == "postgresql":
        server = PostgresServer().start()
        return server.create_database("plugboard_bench"), server
    return f"sqlite:///{workdir / 'bench.db'}", None


def serve(url: str, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    """Start gunicorn with gunicorn.conf.py (gevent workers) on a free loopback port; wait
    until /livez answers."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1):
                return process, port
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {log}") from None
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"gunicorn did not answer in 30 s; see {log}")
