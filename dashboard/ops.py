"""Operational endpoints: liveness and health for load balancers and orchestrators."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dashboard import metrics
from dashboard.extensions import db, reads_only

bp = Blueprint("ops", __name__)


@bp.get("/livez")
def livez():
    """200 while the process serves requests; touches nothing else (liveness probe)."""
    return {"status": "ok"}


@bp.get("/healthz")
def healthz():
    """200 when the database answers, 503 when it does not: one round trip (autocommit)."""
    try:
        reads_only()
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.warning("health check: database unreachable", exc_info=True)
        return {"status": "unavailable", "database": "unreachable"}, 503
    finally:
        db.session.remove()
    return {"status": "ok", "database": "ok"}


@bp.get("/metrics")
def metrics_endpoint():
    """Prometheus metrics (text format), for `Authorization: Bearer <METRICS_TOKEN>`; 404
    while METRICS_TOKEN is not set."""
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        return {"status": "disabled", "message": "Set METRICS_TOKEN to serve /metrics"}, 404
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response(
            "A bearer token (METRICS_TOKEN) is needed\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    try:
        body, content_type = metrics.exposition()
    finally:
        db.session.remove()
    return Response(body, mimetype=None, content_type=content_type)
