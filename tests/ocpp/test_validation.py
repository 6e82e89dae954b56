"""The compiled schemas (`fastjsonschema`), which decide whether a payload is valid, agree
with the `ocpp` package's `jsonschema` validators, which say what an invalid one broke: on
payloads generated near each OCPP 1.6 schema, valid and not."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from pathlib import Path

import fastjsonschema
import ocpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from ocpp.messages import get_validator

from dashboard.ocpp16 import frames
from dashboard.ocpp16.frames import OcppError
from dashboard.ocpp16.validation import compiled, validate

SCHEMA_DIR = Path(ocpp.__file__).parent / "v16" / "schemas"
SCHEMAS = sorted(
    (frames.CALLRESULT, path.stem.removesuffix("Response"))
    if path.stem.endswith("Response")
    else (frames.CALL, path.stem)
    for path in SCHEMA_DIR.glob("*.json")
)

# Any JSON value, small: what a charge point may send in place of the right one.
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def near(rule: dict) -> st.SearchStrategy:
    """Values for a property with `rule`: mostly right ones (of its type, from its enum),
    else ones just wrong (a bound crossed, 1.0 or True for an integer) or anything at all."""
    kind = rule.get("type")
    right, wrong = [], []
    if "enum" in rule:
        right.append(st.sampled_from(rule["enum"]))
        wrong.append(st.text(max_size=5))
    elif kind == "string":
        limit = rule.get("maxLength", 30)
        right.append(st.text(max_size=min(limit, 20)))
        if limit <= 500:  # (hypothesis draws no longer texts)
            right.append(st.text(min_size=limit, max_size=limit))
            wrong.append(st.text(min_size=limit + 1, max_size=limit + 2))
    elif kind == "integer":
        right.append(st.integers(-3, 2**31 + 1))
        wrong.append(st.sampled_from([0.0, 1.0, 2.5, True, False, "1"]))
    elif kind == "number":
        right.append(st.integers(-3, 10**6) | st.floats(-1e6, 1e6))
        wrong.append(st.sampled_from([True, False, "1.5"]))
    elif kind == "boolean":
        right.append(st.booleans())
        wrong.append(st.sampled_from([0, 1, "true"]))
    elif kind == "object":
        right.append(objects(rule))
    elif kind == "array":
        right.append(st.lists(near(rule.get("items", {})), min_size=1, max_size=3))
        wrong.append(st.just([]))
    right = st.one_of(right) if right else ANY_JSON
    wrong = st.one_of(wrong) if wrong else ANY_JSON
    # Mostly right: a payload then has one thing wrong, or none, more often than not.
    return st.integers(0, 9).flatmap(lambda n: ANY_JSON if n == 0 else wrong if n == 1 else right)


def objects(rule: dict) -> st.SearchStrategy:
    """Objects with any of the rule's properties (required or not, right or wrong), and at
    times one it does not name."""
    properties = rule.get("properties", {})
    anything = {name: near(sub) for name, sub in properties.items()}
    named = st.fixed_dictionaries({}, optional=anything)
    required = [name for name in rule.get("required", []) if name in properties]
    with_required = st.fixed_dictionaries(
        {name: near(properties[name]) for name in required},
        optional={name: near(sub) for name, sub in properties.items() if name not in required},
    )
    extra = st.tuples(with_required, st.text(min_size=1, max_size=6), ANY_JSON).map(
        lambda parts: {**parts[0], parts[1]: parts[2]}
    )
    return st.integers(0, 5).flatmap(
        lambda n: named if n == 0 else extra if n == 1 else with_required
    )


def judged_by_ocpp(message_type: int, action: str, payload) -> bool:
    """Whether the `ocpp` package takes `payload` as valid. For the schemas with a
    `multipleOf` (charging profiles and schedules) it parses the schema and the payload's
    numbers as decimals (`ocpp.messages.validate_payload`): as floats, 527.4 is no multiple
    of 0.1 (527.4 / 0.1 = 5273.999…), which fastjsonschema (it divides decimals too) and
    the package itself rightly take."""
    validator, numbers = _reference(message_type, action)
    return validator.is_valid(json.loads(json.dumps(payload), parse_float=numbers))


@cache
def _reference(message_type: int, action: str) -> tuple[Draft4Validator, type]:
    """The package's validator of the schema, and how it parses numbers (decimals where the
    schema has a `multipleOf`), made here from the schema file: the package caches one
    validator per schema, its numbers floats or decimals by whichever way it was first
    asked for."""
    text = _schema_text(message_type, action)
    numbers = Decimal if "multipleOf" in text else float
    return Draft4Validator(json.loads(text, parse_float=numbers)), numbers


def _schema_text(message_type: int, action: str) -> str:
    """The schema as the package ships it."""
    name = action + ("Response" if message_type == frames.CALLRESULT else "")
    return (SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8-sig")


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_the_compiled_schemas_agree_with_jsonschema(data):
    message_type, action = data.draw(st.sampled_from(SCHEMAS))
    validator = get_validator(message_type, action, "1.6")
    near_it = objects(validator.schema)
    payload = data.draw(st.integers(0, 9).flatmap(lambda n: ANY_JSON if n == 0 else near_it))
    try:
        compiled(message_type, action)(payload)
        fast = True
    except fastjsonschema.JsonSchemaException:
        fast = False
    assert fast == judged_by_ocpp(message_type, action, payload), (message_type, action, payload)


def test_a_decimal_limit_is_a_multiple_of_a_tenth():
    """The case that made the comparison above fail now and then: a schedule's limit of
    527.4 W is valid (a multiple of 0.1) for Plugboard and for the `ocpp` package."""
    answer = {
        "status": "Accepted",
        "connectorId": 1,
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 527.4}],
        },
    }
    validate(frames.CALLRESULT, "GetCompositeSchedule", answer)
    assert judged_by_ocpp(frames.CALLRESULT, "GetCompositeSchedule", answer)
    as_floats = json.loads(_schema_text(frames.CALLRESULT, "GetCompositeSchedule"))
    assert not Draft4Validator(as_floats).is_valid(answer)
    assert not judged_by_ocpp(
        frames.CALLRESULT,
        "GetCompositeSchedule",
        {**answer, "chargingSchedule": {**answer["chargingSchedule"], "minChargingRate": 0.05}},
    )


def status(**changes) -> dict:
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Charging", **changes}
    return {name: value for name, value in payload.items() if value is not None}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (status(status=None), frames.PROTOCOL_ERROR),
        (status(connectorId="1"), frames.TYPE_CONSTRAINT_VIOLATION),
        (status(connectorId=1.0), frames.TYPE_CONSTRAINT_VIOLATION),
        (status(connectorId=True), frames.TYPE_CONSTRAINT_VIOLATION),
        (status(status="Sleeping"), frames.PROPERTY_CONSTRAINT_VIOLATION),
        (status(info="x" * 51), frames.PROPERTY_CONSTRAINT_VIOLATION),
        (status(x=1), frames.FORMATION_VIOLATION),
        ([], frames.FORMATION_VIOLATION),
    ],
)
def test_an_invalid_payload_is_refused_with_the_rule_it_broke(payload, code):
    with pytest.raises(OcppError) as refused:
        validate(frames.CALL, "StatusNotification", payload)
    assert refused.value.code == code


def test_a_valid_payload_is_left_as_it_was():
    payload = status(info="plugged in")
    validate(frames.CALL, "StatusNotification", payload)
    assert payload == status(info="plugged in")


def test_schedules_are_judged_alike_whichever_way_the_package_read_its_schema():
    """The `ocpp` package keeps one validator per schema, its numbers decimals when its
    own `validate_payload` (the charge point client) asked first. Plugboard compiles from
    floats either way: 527.4 W stays valid, 0.05 A a property violation, never an error
    of its own."""
    from ocpp.messages import _validators

    from dashboard.ocpp16 import validation

    answer = {
        "status": "Accepted",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 527.4}],
        },
    }
    wrong = {**answer, "chargingSchedule": {**answer["chargingSchedule"], "minChargingRate": 0.05}}
    key = "GetCompositeScheduleResponse_1.6"
    kept = _validators.pop(key, None)

    def forget():
        for cached in (validation.schema, validation.compiled, validation._validator):
            cached.cache_clear()

    try:
        get_validator(frames.CALLRESULT, "GetCompositeSchedule", "1.6", parse_float=Decimal)
        forget()
        validate(frames.CALLRESULT, "GetCompositeSchedule", answer)
        with pytest.raises(OcppError) as refused:
            validate(frames.CALLRESULT, "GetCompositeSchedule", wrong)
        assert refused.value.code == frames.PROPERTY_CONSTRAINT_VIOLATION
    finally:
        _validators.pop(key, None)
        if kept is not None:
            _validators[key] = kept
        forget()
