"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

gevent workers: every open WebSocket (a charge point, a browser) is a greenlet, so one
worker holds thousands of them. Settings come from the environment:

- BIND (default 127.0.0.1:8000)
- WEB_CONCURRENCY: worker processes (default: the number of cores with REDIS_URL, else 1).
  More than one worker needs REDIS_URL, and should have PostgreSQL (DATABASE_URL): the
  workers reach each other's charge points and browsers only through Redis (without it,
  a charge point reconnecting to another worker would leave its old socket open there,
  and a call sent from the other worker would find it "offline").
- WORKER_CONNECTIONS: open connections per worker (default 10000)
- PROMETHEUS_MULTIPROC_DIR: where the workers keep their metrics, so that /metrics adds
  up every worker (default: a new temporary folder per server start)
"""

import glob
import multiprocessing
import os
import shutil
import sys
import tempfile

from dashboard.gunicorn_worker import PlugboardWorker  # the worker: its drain on a stop

bind = os.environ.get("BIND", "127.0.0.1:8000")
_redis = bool(os.environ.get("REDIS_URL"))
workers = int(os.environ.get("WEB_CONCURRENCY") or (multiprocessing.cpu_count() if _redis else 1))
if workers > 1 and not _redis:
    sys.exit(
        f"gunicorn.conf.py: WEB_CONCURRENCY={workers} needs REDIS_URL: several workers reach "
        "each other's charge points and browsers only through Redis. Set REDIS_URL, or "
        "WEB_CONCURRENCY=1."
    )

try:  # a wrong GC_THRESHOLDS stops the server here, not each worker as it boots
    from dashboard.gc_tuning import thresholds

    thresholds(os.environ.get("GC_THRESHOLDS"))
except RuntimeError as exc:
    sys.exit(f"gunicorn.conf.py: {exc}")


worker_class = PlugboardWorker
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "10000"))
# Long-lived WebSockets keep greenlets busy, not the worker's heartbeat: 30 s is plenty for
# the arbiter to notice a worker that is truly stuck.
timeout = 30
graceful_timeout = 20
keepalive = 5
# The arbiter's socket backlog: a charge point fleet reconnecting at once after an outage.
backlog = 4096
accesslog = os.environ.get("ACCESS_LOG") or None
# gunicorn's control socket (for `gunicornc`) only where asked for: by default it would be
# written under ~/.gunicorn/, outside the deployment, and shared by every server there.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

# Metrics across workers (prometheus_client's multiprocess mode): the folder must be known
# before a worker imports prometheus_client, so it is set here, in the arbiter.
# A folder made here is marked in the environment too: a HUP reload reads this file
# again (the folder is set by then), and the arbiter must still remove it when it exits.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="plugboard-metrics-")
    os.environ["PLUGBOARD_OWN_METRICS_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    """A fresh start counts from zero: the files of an earlier run are removed."""
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """A worker that ended no longer counts in the live gauges (open sockets)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """The temporary folder made above goes with the server."""
    own = os.environ.get("PLUGBOARD_OWN_METRICS_DIR")
    if own and own == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(own, ignore_errors=True)


def post_worker_init(worker):
    """The worker's garbage collector tuned for thousands of open sockets (dashboard/gc_tuning.py:
    GC_THRESHOLDS)."""
    from dashboard import gc_tuning

    gc_tuning.tune(os.environ.get("GC_THRESHOLDS"))
