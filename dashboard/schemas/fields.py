"""Strict marshmallow fields: JSON types are not coerced (no "5" for 5, no 1 for true)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from marshmallow import fields

from dashboard.models.types import DECIMAL_PRECISION, DECIMAL_SCALE

_DECIMAL_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_INTEGER_DIGITS = DECIMAL_PRECISION - DECIMAL_SCALE


class StrictInteger(fields.Integer):
    """A JSON integer: refuses strings, fractions and booleans."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON boolean: only true or false."""

    default_error_messages = {"invalid": "Not a valid boolean: use true or false."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictString(fields.String):
    """A string with surrounding white space removed; blank means missing. The NUL
    character is refused: PostgreSQL cannot store it."""

    default_error_messages = {
        "blank": "Must not be blank.",
        "nul": "Must not contain the NUL character.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise self.make_error("blank")
        if "\x00" in text:
            raise self.make_error("nul")
        return text


def format_decimal(value: Decimal) -> str:
    """A plain decimal string without exponent or trailing zeros: "240", "32.5"."""
    return format(value.normalize(), "f")


class DecimalString(fields.Field):
    """An exact, finite, non-negative decimal, sent as a string ("32.5") or a JSON number,
    stored as Decimal, returned as a plain decimal string."""

    default_error_messages = {
        "invalid": 'Must be a decimal number written as a string, like "240" or "32.5".',
        "negative": "Must not be negative.",
        "scale": f"At most {DECIMAL_SCALE} digits after the decimal point.",
        "range": f"At most {_INTEGER_DIGITS} digits before the decimal point.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise self.make_error("invalid")
        if isinstance(value, str):
            if not _DECIMAL_TEXT.match(value.strip()):
                raise self.make_error("invalid")
            value = value.strip()
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            raise self.make_error("invalid") from exc
        if not number.is_finite():
            raise self.make_error("invalid")
        if number < 0:
            raise self.make_error("negative")
        number = number.normalize() if number else Decimal(0)
        exponent = number.as_tuple().exponent
        if exponent < -DECIMAL_SCALE:
            raise self.make_error("scale")
        if number >= Decimal(10) ** _INTEGER_DIGITS:
            raise self.make_error("range")
        return number

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_decimal(Decimal(value))


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second, as in the specification's examples; the
    year always in four digits (strftime's %Y writes the year 497 as "497")."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


class UTCDateTime(fields.DateTime):
    """Dumps as `format_datetime`; loads ISO 8601, a value without a zone taken as UTC."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_datetime(value)

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
