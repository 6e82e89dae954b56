"""The API's envelope in and out, authentication, and the mapping of every error to an
envelope: `{id, status: false, message, res_data}` with the right HTTP status."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import wraps

from flask import current_app, g, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import HTTPException

from dashboard.auth.tokens import user_for_token
from dashboard.extensions import csrf, db, reads_only
from dashboard.models.types import utcnow
from dashboard.schemas.envelope import RequestEnvelopeSchema
from dashboard.schemas.fields import format_datetime
from dashboard.services.errors import ServiceError
from dashboard.services.pagination import Page
from dashboard.services.permissions import require

_envelope_schema = RequestEnvelopeSchema()
_NO_BODY = object()


class ApiError(Exception):
    """An error answered with an envelope: HTTP `status_code`, `message`, `res_data`."""

    def __init__(self, status_code: int, message: str, res_data=None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.res_data = res_data


def request_id() -> str:
    """The id the response echoes: the envelope's `id`, else the X-Request-ID header, else
    a new UUID (kept for the rest of the request)."""
    if "request_id" not in g:
        readable = request.content_length and not _too_large()
        body = _raw_json() if readable else _NO_BODY
        if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
            g.request_id = body["id"][:128]
        else:
            g.request_id = request.headers.get("X-Request-ID", "")[:128] or str(uuid.uuid4())
    return g.request_id


def _too_large() -> bool:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return bool(limit and (request.content_length or 0) > limit)


def _raw_json():
    """The request body parsed as JSON (decimals kept exact), or _NO_BODY if unreadable."""
    if "raw_json" not in g:
        try:
            g.raw_json = json.loads(request.get_data(cache=True), parse_float=Decimal)
        except (ValueError, RecursionError):
            g.raw_json = _NO_BODY
    return g.raw_json


def respond(message: str, res_data=None, status_code: int = 200, ok: bool = True):
    """A response envelope."""
    response = jsonify(
        {
            "id": request_id(),
            "status": ok,
            "message": message,
            "res_data": res_data,
            "timestamp": format_datetime(utcnow()),
        }
    )
    response.status_code = status_code
    return response


def error_response(status_code: int, message: str, res_data=None):
    """An error envelope: `status: false`."""
    return respond(message, res_data, status_code, ok=False)


def page_data(page: Page, schema: Schema) -> dict:
    """`res_data` of a paginated list."""
    return {
        "items": schema.dump(page.items, many=True),
        "pagination": {
            "page": page.page,
            "per_page": page.per_page,
            "total": page.total,
            "pages": page.pages,
        },
    }


def load_request(schema: Schema, *, body_optional: bool = False) -> dict:
    """Parse the request envelope and load its `req_data` with `schema`.

    400 for a body that is not JSON or not an envelope, 415 for a body that is not declared
    as JSON, 422 with the messages of each field for invalid `req_data`. With
    `body_optional`, an empty body stands for `req_data: {}` (DELETE without a body)."""
    if not request.content_length:
        if body_optional:
            return load_data(schema, {})
        raise ApiError(400, "A request envelope {id, req_data, timestamp} is required")
    if _too_large():
        raise ApiError(413, "The request body is too large")
    if not request.is_json:
        raise ApiError(415, "The request body must be JSON (Content-Type: application/json)")
    body = _raw_json()
    if body is _NO_BODY:
        raise ApiError(400, "The request body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be an envelope {id, req_data, timestamp}")
    try:
        envelope = _envelope_schema.load(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{field}: {' '.join(_flatten(messages))}"
            for field, messages in sorted(exc.normalized_messages().items())
        )
        raise ApiError(400, f"Not a valid request envelope ({problems})") from exc
    g.request_id = envelope["id"]
    return load_data(schema, envelope["req_data"])


def _flatten(messages) -> list[str]:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flatten(value)]
    if isinstance(messages, list):
        return [m for value in messages for m in _flatten(value)]
    return [str(messages)]


def load_data(schema: Schema, data: dict) -> dict:
    """Load `data` with `schema`; 422 with the messages of each field if invalid."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ApiError(422, "Validation failed", {"errors": exc.normalized_messages()}) from exc


def int_arg(name: str, default: int | None = None, minimum: int = 1, maximum: int | None = None):
    """A whole-number query parameter, bounded; 422 with the reason otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ApiError(422, "Validation failed", {"errors": {name: ["Missing value."]}})
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        upper = f" to {maximum}" if maximum is not None else " or more"
        raise ApiError(
            422,
            "Validation failed",
            {"errors": {name: [f"Must be a whole number from {minimum}{upper}."]}},
        )
    return value


def text_arg(name: str, max_length: int = 100) -> str | None:
    """A text query parameter, trimmed and cut to `max_length`; None when blank. 422 for
    the NUL character, which no stored text holds (and PostgreSQL refuses)."""
    raw = request.args.get(name) or ""
    if "\x00" in raw:
        raise ApiError(
            422, "Validation failed", {"errors": {name: ["Must not contain the NUL character."]}}
        )
    return raw.strip()[:max_length] or None


MAX_PAGE = 10**6


def choice_arg(name: str, choices) -> str | None:
    """One of `choices` in the query string; None when absent or blank; 422 otherwise."""
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise ApiError(422, f"{name} must be one of: {', '.join(choices)}")
    return value


def bool_arg(name: str) -> bool | None:
    """`true` or `false` in the query string; None when absent; 422 otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw in ("true", "false"):
        return raw == "true"
    raise ApiError(422, "Validation failed", {"errors": {name: ["Must be true or false."]}})


def datetime_arg(name: str) -> datetime | None:
    """An ISO 8601 date-time in the query string (UTC unless it says otherwise); None when
    absent; 422 otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("z", "Z").replace(" ", "+"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            422,
            "Validation failed",
            {"errors": {name: ["An ISO 8601 date-time, like 2026-11-01T00:00:00Z."]}},
        ) from None
    return moment


def page_args() -> tuple[int, int]:
    """`page` and `per_page` from the query string, within the configured bounds."""
    page = int_arg("page", default=1, maximum=MAX_PAGE)
    per_page = int_arg("per_page", default=20, maximum=current_app.config["API_PAGE_SIZE_MAX"])
    return page, per_page


def authenticate():
    """The user behind the request: a Bearer token, else the browser session (whose writes
    must carry the CSRF token). 401 otherwise."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Authorization must be 'Bearer <token>'")
        user = user_for_token(token.strip(), for_reading=request.method == "GET")
        if user is None:
            raise ApiError(401, "Invalid or revoked API token")
        return user
    if current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()
        return current_user._get_current_object()
    raise ApiError(401, "Authentication required: send 'Authorization: Bearer <token>'")


def endpoint(permission: str):
    """Decorate an API view: authenticate, check `permission`, call the view with the user,
    and commit once if it succeeds (the error handler rolls back otherwise). A GET runs in
    autocommit mode and has nothing to commit."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if request.method == "GET":
                reads_only()  # half the round trips of a list request
            user = authenticate()
            require(user, permission)
            response = view(user, *args, **kwargs)
            if request.method != "GET":
                db.session.commit()
            return response

        return wrapper

    return decorate


def is_api_request() -> bool:
    """Whether the request is for the JSON API (errors then answer as envelopes)."""
    return request.path.startswith("/api/")


def error_page(code: int, title: str, message: str):
    """An error as a page in the layout (outside the API)."""
    return render_template("errors/error.html", code=code, title=title, message=message), code


def register_error_handlers(app) -> None:
    """Answer every error under /api/ with an envelope; leave other paths to the pages."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        db.session.rollback()
        return error_response(exc.status_code, exc.message, exc.res_data)

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError):
        db.session.rollback()
        res_data = {"errors": exc.errors} if exc.errors else None
        if is_api_request():
            return error_response(exc.status_code, exc.message, res_data)
        return error_page(exc.status_code, "Not possible", exc.message)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        db.session.rollback()
        if is_api_request():
            return error_response(400, f"CSRF check failed: {exc.description}")
        return error_page(
            400,
            "Form expired",
            "The form was open too long, or came from another site. Reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not is_api_request():
            if exc.response is not None:  # the raiser made its own answer (rate limit)
                return exc.response
            return error_page(exc.code or 500, exc.name, exc.description)
        db.session.rollback()
        messages = {
            404: "Not found",
            405: f"Method {request.method} is not allowed here",
            413: "The request body is too large",
        }
        response = error_response(exc.code or 500, messages.get(exc.code, exc.description))
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if is_api_request():
            return error_response(500, "Internal server error")
        return error_page(500, "Internal server error", "Something went wrong on our side.")
