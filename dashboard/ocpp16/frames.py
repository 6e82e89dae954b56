"""OCPP-J 1.6 framing (OCPP-J §4): CALL, CALLRESULT and CALLERROR, parsed and built.

Error codes are spelled as on the wire in 1.6 (`FormationViolation`,
`OccurenceConstraintViolation`), not as the `ocpp` package spells some of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_MESSAGE_ID = 36

NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
INTERNAL_ERROR = "InternalError"
PROTOCOL_ERROR = "ProtocolError"
SECURITY_ERROR = "SecurityError"
FORMATION_VIOLATION = "FormationViolation"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
GENERIC_ERROR = "GenericError"


class OcppError(Exception):
    """A CALL that gets a CALLERROR: `code` as spelled on the wire, a description, details."""

    def __init__(self, code: str, description: str, details: dict | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.details = details or {}


@dataclass
class Frame:
    """One parsed message. `payload` of a CALL or CALLRESULT is a dict ({} for null)."""

    type: int
    message_id: str
    action: str | None = None
    payload: dict = field(default_factory=dict)
    error_code: str | None = None
    error_description: str | None = None
    error_details: dict | None = None


class Unanswerable(Exception):
    """A frame to drop: no message id can be read from it, or its type is not 2, 3 or 4."""


def parse(raw: str | bytes) -> Frame:
    """Parse a text frame. Raises Unanswerable for a frame to ignore, or OcppError (with
    `message_id` set on it) for a malformed frame whose id could be read."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unanswerable("not UTF-8") from exc
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Unanswerable("not JSON") from exc
    if not isinstance(message, list) or len(message) < 2:
        raise Unanswerable("not an array with a message id")
    message_type, message_id = message[0], message[1]
    if isinstance(message_type, bool) or message_type not in (CALL, CALLRESULT, CALLERROR):
        raise Unanswerable(f"message type {message_type!r} ignored")
    if not isinstance(message_id, str):
        raise Unanswerable("message id is not a string")
    if len(message_id) > MAX_MESSAGE_ID:
        raise _formation(message_id, f"Message id longer than {MAX_MESSAGE_ID} characters")
    if message_type == CALL:
        if len(message) != 4 or not isinstance(message[2], str):
            raise _formation(message_id, "A CALL is [2, messageId, action, payload]")
        payload = {} if message[3] is None else message[3]
        if not isinstance(payload, dict):
            raise _formation(message_id, "The payload of a CALL must be a JSON object")
        return Frame(CALL, message_id, message[2], payload)
    if message_type == CALLRESULT:
        if len(message) != 3:
            raise _formation(message_id, "A CALLRESULT is [3, messageId, payload]")
        payload = {} if message[2] is None else message[2]
        return Frame(CALLRESULT, message_id, payload=payload)
    if len(message) != 5:
        raise _formation(message_id, "A CALLERROR has five elements")
    return Frame(
        CALLERROR,
        message_id,
        error_code=str(message[2]),
        error_description=str(message[3]),
        error_details=message[4] if isinstance(message[4], dict) else {},
    )


def _formation(message_id: str, description: str) -> OcppError:
    error = OcppError(FORMATION_VIOLATION, description)
    error.message_id = message_id
    return error


def call(message_id: str, action: str, payload: dict) -> str:
    """A CALL frame."""
    return json.dumps([CALL, message_id, action, payload], separators=(",", ":"))


def call_result(message_id: str, payload: dict) -> str:
    """A CALLRESULT frame."""
    return json.dumps([CALLRESULT, message_id, payload], separators=(",", ":"))


def call_error(message_id: str, error: OcppError) -> str:
    """A CALLERROR frame."""
    return json.dumps(
        [CALLERROR, message_id, error.code, error.description, error.details],
        separators=(",", ":"),
    )
