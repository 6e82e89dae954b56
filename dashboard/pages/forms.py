"""Form fields (always text) turned into the typed data the API's marshmallow schemas
load, so that a page and the API validate a connector with the same rules and messages."""

from __future__ import annotations

from marshmallow import Schema, ValidationError

from dashboard.services.errors import Invalid


def _number(raw: str | None):
    """An integer if the text is one; the text itself otherwise (the schema says why)."""
    text = (raw or "").strip()
    try:
        return int(text)
    except ValueError:
        return text


def whole_number(raw: str | None) -> int | None:
    """An integer if the text is one; None when it is blank or not a number."""
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def connector_data(form, *, creating: bool) -> dict:
    """The connector fields of a submitted form."""
    data = {}
    if creating:
        data["connector_id"] = _number(form.get("connector_id"))
    for name in ("connector_type", "connector_max_volt", "connector_max_amp"):
        if name in form:
            data[name] = form.get(name, "").strip() or None
    for name in ("connector_status", "connector_error_code"):
        if form.get(name):
            data[name] = form[name]
    if "connector_enabled_shown" in form:  # a checkbox sends nothing when unticked
        data["connector_enabled"] = form.get("connector_enabled") == "on"
    return data


def load(schema: Schema, data: dict) -> dict:
    """Load with `schema`; Invalid with the messages of each field otherwise."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        errors = {
            field: list(messages) if isinstance(messages, list) else [str(messages)]
            for field, messages in exc.normalized_messages().items()
        }
        raise Invalid("Please correct the fields marked below", errors) from exc
