"""Every error answers in the envelope with the right status; no input produces a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.schemas.connector import ConnectorCreateSchema
from tests.conftest import PASSWORD, user_row


def envelope_error(response, status: int) -> dict:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert body["status"] is False
    assert set(body) == {"id", "status", "message", "res_data", "timestamp"}
    return body


def bearer(world) -> dict:
    return {"Authorization": f"Bearer {world.tokens['admin']}"}


@pytest.mark.parametrize(
    "data",
    [b"{", b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null", b"1e999999"],
)
def test_malformed_body_is_400(client, world, data):
    response = client.post(
        "/api/v1/connectors",
        data=data,
        headers={**bearer(world), "Content-Type": "application/json"},
    )
    envelope_error(response, 400)


@pytest.mark.parametrize(
    "body",
    [
        {"req_data": {}},
        {"id": "x"},
        {"id": 5, "req_data": {}},
        {"id": "", "req_data": {}},
        {"id": "x", "req_data": []},
        {"id": "x", "req_data": {}, "timestamp": "yesterday"},
        {"id": "x", "req_data": {}, "extra": 1},
    ],
)
def test_not_an_envelope_is_400(client, world, body):
    response = client.post("/api/v1/connectors", json=body, headers=bearer(world))
    message = envelope_error(response, 400)["message"]
    assert message.startswith(("Not a valid request envelope", "The request body must be"))


def test_wrong_content_type_is_415(client, world):
    response = client.post(
        "/api/v1/connectors",
        data=json.dumps({"id": "x", "req_data": {}}),
        headers={**bearer(world), "Content-Type": "text/plain"},
    )
    envelope_error(response, 415)


def test_empty_body_is_400(client, world):
    envelope_error(client.post("/api/v1/connectors", headers=bearer(world)), 400)


def test_method_not_allowed_is_405(client, world):
    response = client.patch("/api/v1/connectors", headers=bearer(world))
    body = envelope_error(response, 405)
    assert "PATCH" in body["message"]
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing", "/api/v1/connectors/chargepoint/0", "/api/v1/chargepoints/99999999999"],
)
def test_unknown_path_is_404(client, world, path):
    envelope_error(client.get(path, headers=bearer(world)), 404)


def test_too_large_body_is_413(client, world):
    body = b'{"id": "x", "req_data": {"a": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    response = client.post(
        "/api/v1/connectors",
        data=body,
        headers={**bearer(world), "Content-Type": "application/json"},
    )
    envelope_error(response, 413)


def test_response_echoes_envelope_id(client, world):
    body = client.post(
        "/api/v1/connectors",
        json={"id": "my-request-7", "req_data": {"connector_id": 1}},
        headers=bearer(world),
    ).get_json()
    assert body["id"] == "my-request-7"


def test_error_before_parsing_still_echoes_envelope_id(client, world):
    body = client.post("/api/v1/connectors", json={"id": "abc", "req_data": {}}).get_json()
    assert body["id"] == "abc"
    assert body["message"].startswith("Authentication required")


def test_request_without_body_echoes_x_request_id(client, world):
    response = client.get(
        "/api/v1/chargepoints", headers={**bearer(world), "X-Request-ID": "trace-1"}
    )
    assert response.get_json()["id"] == "trace-1"


def test_request_without_body_or_header_gets_uuid(client, world):
    first = client.get("/api/v1/chargepoints", headers=bearer(world)).get_json()["id"]
    second = client.get("/api/v1/chargepoints", headers=bearer(world)).get_json()["id"]
    assert len(first) == 36 and first != second


class TestBrowserSession:
    """A signed-in browser may use the API; its writes must carry the CSRF token."""

    @pytest.fixture
    def session_client(self, app, world):
        app.config["WTF_CSRF_ENABLED"] = True
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = user_row(app, world.admin).get_id()
            session["_fresh"] = True
        return client

    def test_session_reads_without_token(self, session_client, world):
        response = session_client.get(f"/api/v1/chargepoints/{world.cp_a}")
        assert response.status_code == 200

    def test_session_write_without_csrf_is_refused(self, session_client, world):
        response = session_client.post(
            "/api/v1/connectors",
            json={"id": "x", "req_data": {"connector_id": 1, "connector_cp_id": world.cp_a}},
        )
        assert envelope_error(response, 400)["message"].startswith("CSRF check failed")

    def test_session_write_with_csrf_token_succeeds(self, app, session_client, world):
        from flask_wtf.csrf import generate_csrf

        with app.test_request_context():
            token = generate_csrf()
            with session_client.session_transaction() as session:
                from flask import session as live

                session["csrf_token"] = live["csrf_token"]
        response = session_client.post(
            "/api/v1/connectors",
            json={"id": "x", "req_data": {"connector_id": 1, "connector_cp_id": world.cp_a}},
            headers={"X-CSRFToken": token},
        )
        assert response.status_code == 201, response.get_json()


def test_password_fixture_sanity():
    assert len(PASSWORD) >= 8


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
field_names = st.sampled_from([*ConnectorCreateSchema().fields, "other"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    req_data=st.dictionaries(field_names, json_values, max_size=8),
    method=st.sampled_from(["POST", "PUT", "DELETE"]),
)
def test_no_request_data_produces_a_500(client, world, req_data, method):
    path = "/api/v1/connectors" if method == "POST" else "/api/v1/connectors/1"
    response = client.open(
        path, method=method, json={"id": "fuzz", "req_data": req_data}, headers=bearer(world)
    )
    assert response.status_code < 500, response.get_json()
    assert response.get_json()["status"] is (response.status_code < 400)
