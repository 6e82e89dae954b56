"""Reads trust a token the process resolved recently; every account change clears that at
once, in this process and, through Redis, in the others; writes always ask the database."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update

from dashboard.auth import tokens
from dashboard.extensions import db
from dashboard.models import ApiToken, User
from dashboard.models.user import hash_token
from tests.conftest import recorded_statements


@pytest.fixture(autouse=True)
def _empty_cache():
    tokens.forget_tokens()
    yield
    tokens.forget_tokens()


def statements_of(app, call) -> list[str]:
    with recorded_statements(app) as seen:
        assert call().status_code == 200
    return seen


def test_a_read_trusts_a_recent_token_without_a_query(app, as_, world):
    path = f"/api/v1/connectors/chargepoint/{world.cp_a}"
    first = statements_of(app, lambda: as_("admin").get(path))
    second = statements_of(app, lambda: as_("admin").get(path))
    assert any("api_tokens" in s for s in first)
    assert not any("api_tokens" in s for s in second)
    assert len(second) == len(first) - 1 - sum("UPDATE api_tokens" in s for s in first)


def _revoke(world):
    token = db.session.scalar(
        db.select(ApiToken).where(ApiToken.token_hash == hash_token(world.tokens["admin"]))
    )
    tokens.revoke_token(token)


def _deactivate(world):
    db.session.get(User, world.admin).active = False


def _demote(world):
    from dashboard.services.permissions import sync_builtin_roles

    user = db.session.get(User, world.admin)
    user.role = sync_builtin_roles()["company_user"]
    user.company_id = world.company_a


@pytest.mark.parametrize("change", [_revoke, _deactivate, _demote])
def test_an_account_change_reaches_remembered_tokens_at_once(app, as_, world, change):
    path = f"/api/v1/connectors/chargepoint/{world.cp_b}"
    assert as_("admin").get(path).status_code == 200  # remembered now
    with app.app_context():
        change(world)
        db.session.commit()
    # revoked or deactivated: 401; demoted to company A's user: company B's charge point
    # is no longer there
    assert as_("admin").get(path).status_code in (401, 404)
    assert as_("admin").get(path).status_code == (404 if change is _demote else 401)


def test_a_rolled_back_change_clears_nothing_it_should_not(app, as_, world):
    path = f"/api/v1/connectors/chargepoint/{world.cp_a}"
    assert as_("admin").get(path).status_code == 200
    with app.app_context():
        _deactivate(world)
        db.session.flush()
        db.session.rollback()
    assert as_("admin").get(path).status_code == 200


def test_writes_always_ask_the_database(app, as_, world):
    """A revocation this process was not told of (another process, no Redis): reads may go
    on for the cache's lifetime, writes stop at once; without a cache, reads stop too."""
    path = f"/api/v1/connectors/chargepoint/{world.cp_a}"
    assert as_("admin").get(path).status_code == 200
    with app.app_context():  # a bulk UPDATE announces nothing
        db.session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(world.tokens["admin"]))
            .values(revoked=db.func.now())
        )
        db.session.commit()
    assert as_("admin").get(path).status_code == 200
    created = as_("admin").post(
        "/api/v1/connectors", {"connector_id": 1, "connector_cp_id": world.cp_a}
    )
    assert created.status_code == 401
    tokens.forget_tokens()
    app.config["API_TOKEN_CACHE_SECONDS"] = 0
    assert as_("admin").get(path).status_code == 401


def test_an_expired_entry_is_checked_again(app, as_, world, monkeypatch):
    path = f"/api/v1/connectors/chargepoint/{world.cp_a}"
    assert as_("admin").get(path).status_code == 200
    with app.app_context():
        db.session.execute(update(User).where(User.id == world.admin).values(active=False))
        db.session.commit()
    assert as_("admin").get(path).status_code == 200
    later = tokens.time.monotonic() + app.config["API_TOKEN_CACHE_SECONDS"] + 1
    monkeypatch.setattr(tokens.time, "monotonic", lambda: later)
    assert as_("admin").get(path).status_code == 401


def test_an_account_change_in_another_process_clears_the_cache(app, as_, world, redis_server):
    from dashboard.live import events
    from dashboard.live.redis_bus import EVENTS, RedisBus

    bus, other = RedisBus(redis_server.url), RedisBus(redis_server.url)
    events.configure(bus)
    try:
        path = f"/api/v1/connectors/chargepoint/{world.cp_a}"
        assert as_("admin").get(path).status_code == 200
        assert tokens._cache  # remembered, and the listener started (not waited for)
        bus.ensure_listening()  # subscribed, so that the message below reaches it
        other.publish(EVENTS, {"events": [{"type": tokens.AUTH_CHANGED}]})
        for _ in range(50):
            if not tokens._cache:
                break
            threading.Event().wait(0.1)
        assert not tokens._cache
    finally:
        events.configure(None)
        bus.close()
        other.close()


def test_a_read_does_not_wait_for_an_unreachable_redis(app, as_, world):
    from dashboard.live import events
    from dashboard.live.redis_bus import RedisBus
    from tests.servers import free_port

    bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there
    events.configure(bus)
    try:
        started = time.monotonic()
        response = as_("admin").get(f"/api/v1/connectors/chargepoint/{world.cp_a}")
        assert response.status_code == 200 and tokens._cache
        assert time.monotonic() - started < 1
    finally:
        events.configure(None)
        bus.close()
