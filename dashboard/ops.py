"""Operational endpoints: liveness and health for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

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
