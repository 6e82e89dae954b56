"""Schemathesis fuzzes every operation of `/api/v1/openapi.json` against the app, on a
bounded number of examples each: every answer must be one the document declares, in the
shape it declares, and no input may cause a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES = 50
# Whether a webhook endpoint's URL may be used depends on what its host name resolves to
# (public addresses only), which no schema can say: a schema-valid URL may get a 422 there.
# Likewise a period must end after it starts (and last at most 400 days), and an exclusion
# must end after it starts and not start in the future: rules between two fields.
SEMANTIC_422 = {
    ("POST", "/api/v1/webhooks"),
    ("PUT", "/api/v1/webhooks/{webhook_id}"),
    ("GET", "/api/v1/reports/uptime"),
    ("GET", "/api/v1/reports/exclusions"),
    ("POST", "/api/v1/reports/exclusions"),
}


def test_every_operation_keeps_to_its_description(app, world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def keeps_to_its_description(case):
            semantic = (case.method.upper(), case.operation.full_path) in SEMANTIC_422
            excluded = [positive_data_acceptance] if semantic else []
            case.call_and_validate(headers=headers, excluded_checks=excluded)

        keeps_to_its_description()
