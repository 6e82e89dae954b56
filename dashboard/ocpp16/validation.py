"""Validation of OCPP 1.6 payloads with the `ocpp` package's JSON schemas, and the checks
the schemas leave out (date-time formats, negative connector ids, the NUL character). Every
failure becomes an OcppError with the 1.6 error code that fits it.

Each payload is first checked by the schema compiled to Python (`fastjsonschema`: 3 µs for
a StatusNotification, 6 µs for MeterValues, against 51 and 132 µs with `jsonschema`, whose
walk cost 5 % of an ingest worker); only one that fails is walked by `jsonschema`'s
validator, whose errors say which rule it broke. The two agree on what is valid
(tests/ocpp/test_validation.py compares them on generated payloads of every schema)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache

import fastjsonschema
from jsonschema import Draft4Validator
from ocpp.messages import get_validator
from ocpp.v16.enums import Action

from dashboard.ocpp16 import frames
from dashboard.ocpp16.frames import OcppError

# What each JSON-schema keyword's failure means in OCPP-J 1.6 terms (§4.2.3, Table 7).
_CODE_FOR_KEYWORD = {
    "required": frames.PROTOCOL_ERROR,
    "type": frames.TYPE_CONSTRAINT_VIOLATION,
    "additionalProperties": frames.FORMATION_VIOLATION,
    "minItems": frames.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": frames.OCCURENCE_CONSTRAINT_VIOLATION,
}
# When a payload breaks several rules, report the most basic one.
_PRIORITY = [
    frames.FORMATION_VIOLATION,
    frames.PROTOCOL_ERROR,
    frames.TYPE_CONSTRAINT_VIOLATION,
    frames.OCCURENCE_CONSTRAINT_VIOLATION,
    frames.PROPERTY_CONSTRAINT_VIOLATION,
]
KNOWN_ACTIONS = frozenset(action.value for action in Action)
# Integers a charge point sends are stored in 32-bit columns (PostgreSQL's integer).
MAX_INTEGER = 2**31 - 1


def parse_datetime(text: str) -> datetime:
    """An OCPP dateTime (ISO 8601, RFC 3339) as an aware UTC datetime; ValueError if not."""
    if not isinstance(text, str) or len(text) < 10 or "T" not in text:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time")
    parsed = datetime.fromisoformat(text.replace("z", "Z"))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 lies before year 1 in UTC
        raise ValueError(f"{text!r} is out of the range of dates") from exc


def validate(message_type: int, action: str, payload: dict) -> None:
    """Raise OcppError unless `payload` is a valid `action` request (message_type CALL) or
    response (CALLRESULT)."""
    if action not in KNOWN_ACTIONS:
        raise OcppError(frames.NOT_IMPLEMENTED, f"Unknown action {action!r}")
    try:
        compiled(message_type, action)(payload)
    except fastjsonschema.JsonSchemaException:
        _refuse(action, _validator(message_type, action), payload)
    _check_formats(action, schema(message_type, action).get("properties", {}), payload, "")


@cache
def schema(message_type: int, action: str) -> dict:
    """The `ocpp` package's 1.6 schema of `action` (a request, or a response), its numbers
    as floats. The package keeps one validator per schema, with its numbers parsed as
    floats or, when its own `validate_payload` asked first (the charge point client in
    tests does, for charging profiles), as decimals; compiled from decimals, fastjsonschema
    refuses every `multipleOf` (527.4 is no multiple of Decimal 0.1 to it)."""
    return json.loads(json.dumps(get_validator(message_type, action, "1.6").schema, default=float))


@cache
def _validator(message_type: int, action: str) -> Draft4Validator:
    return Draft4Validator(schema(message_type, action))


@cache
def compiled(message_type: int, action: str):
    """The 1.6 schema of `action` (a request, or a response) as a Python function that
    raises JsonSchemaException for an invalid payload. Like the `ocpp` package's
    validator, it checks no formats; and it leaves the payload as it is (no defaults). It
    judges `multipleOf` in decimals, as the package does for the schemas that have one."""
    return fastjsonschema.compile(
        schema(message_type, action),
        use_default=False,
        use_formats=False,
        detailed_exceptions=False,
    )


def _refuse(action: str, validator, payload) -> None:
    """Raise the OcppError for the most basic rule of the schema that `payload` breaks."""
    failures = []
    for error in validator.iter_errors(payload):
        path = ".".join(str(part) for part in error.absolute_path)
        if not path and error.validator == "type":  # the payload itself is no object
            code = frames.FORMATION_VIOLATION
        else:
            code = _CODE_FOR_KEYWORD.get(error.validator, frames.PROPERTY_CONSTRAINT_VIOLATION)
        failures.append((_PRIORITY.index(code), code, path, error.message))
    if failures:
        _, code, path, message = min(failures)
        details = {"field": path} if path else {}
        raise OcppError(code, f"{action}: {message}"[:255], details)


def _check_formats(action: str, properties: dict, payload: dict, prefix: str) -> None:
    """The `ocpp` package does not enforce `format: date-time`, nor a minimum on connector
    ids, nor integers that fit a database column, and lets strings hold the NUL character
    (which PostgreSQL cannot store): check them, down nested objects and arrays."""
    for name, rule in properties.items():
        if name not in payload:
            continue
        value, path = payload[name], f"{prefix}{name}"
        if isinstance(value, str) and "\x00" in value:  # no database column stores one
            raise OcppError(
                frames.PROPERTY_CONSTRAINT_VIOLATION,
                f"{action}: {path} must not contain the NUL character",
                {"field": path},
            )
        if rule.get("format") == "date-time":
            try:
                parse_datetime(value)
            except ValueError:
                raise OcppError(
                    frames.PROPERTY_CONSTRAINT_VIOLATION,
                    f"{action}: {path} is not an ISO 8601 date-time",
                    {"field": path},
                ) from None
        elif name == "connectorId" and value < 0:
            raise OcppError(
                frames.PROPERTY_CONSTRAINT_VIOLATION,
                f"{action}: connectorId must not be negative",
                {"field": path},
            )
        elif rule.get("type") == "integer" and abs(value) > MAX_INTEGER:
            raise OcppError(
                frames.PROPERTY_CONSTRAINT_VIOLATION,
                f"{action}: {path} is beyond {MAX_INTEGER}",
                {"field": path},
            )
        elif rule.get("type") == "object" and isinstance(value, dict):
            _check_formats(action, rule.get("properties", {}), value, f"{path}.")
        elif rule.get("type") == "array" and isinstance(value, list):
            item_rule = rule.get("items", {})
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    _check_formats(
                        action, item_rule.get("properties", {}), item, f"{path}.{index}."
                    )
