"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

gevent workers: every open WebSocket (a charge point, a browser) is a greenlet, so one
worker holds thousands of them. Settings come from the environment:

- BIND (default 127.0.0.1:8000)
- WEB_CONCURRENCY: worker processes (default: the number of cores). More than one worker
  needs PostgreSQL (DATABASE_URL) and, for live updates across workers, REDIS_URL.
- WORKER_CONNECTIONS: open connections per worker (default 10000)
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gevent"
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "10000"))
# Long-lived WebSockets keep greenlets busy, not the worker's heartbeat: 30 s is plenty for
# the arbiter to notice a worker that is truly stuck.
timeout = 30
graceful_timeout = 20
keepalive = 5
# The arbiter's socket backlog: a charge point fleet reconnecting at once after an outage.
backlog = 4096
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
