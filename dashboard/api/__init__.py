"""The JSON API, /api/v1: the specification's envelope in and out."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from dashboard.api import (  # noqa: E402,F401  (routes)
    chargepoints,
    commands,
    connectors,
    docs,
    events,
    idtags,
    incidents,
    reports,
    transactions,
    webhooks,
)
