"""The Redis bus between processes, on a real Redis server."""

from __future__ import annotations

import threading

from dashboard.live.redis_bus import EVENTS, RedisBus
from tests.servers import RedisServer


def test_events_reach_every_process(redis_server):
    first, second = RedisBus(redis_server.url), RedisBus(redis_server.url)
    got = {"first": [], "second": []}
    arrived = threading.Event()

    def on(name):
        def handler(message):
            got[name].append(message)
            if got["first"] and got["second"]:
                arrived.set()

        return handler

    first.on(EVENTS, on("first"))
    second.on(EVENTS, on("second"))
    first.ensure_listening()
    second.ensure_listening()
    first.publish(EVENTS, {"type": "connector", "cp_id": 1})
    assert arrived.wait(5)
    assert got["first"] == got["second"] == [{"type": "connector", "cp_id": 1}]


def test_request_gets_the_answer_of_another_process(redis_server):
    asker, holder = RedisBus(redis_server.url), RedisBus(redis_server.url)
    holder.on("plugboard:test", lambda message: holder.reply(message, {"ok": message["n"] * 2}))
    holder.ensure_listening()
    assert asker.request("plugboard:test", {"n": 21}, timeout=5)["ok"] == 42


def test_no_answer_is_none(redis_server):
    assert RedisBus(redis_server.url).request("plugboard:nobody", {}, timeout=0.5) is None


def test_listener_comes_back_after_redis_restarts():
    server = RedisServer().start()
    try:
        bus = RedisBus(server.url)
        got = []
        arrived = threading.Event()
        bus.on(EVENTS, lambda message: (got.append(message), arrived.set()))
        bus.ensure_listening()
        server.stop()
        server.start()  # same port, empty server: the listener must subscribe again
        for _ in range(100):
            bus._listening.wait(0.1)
            try:
                bus.publish(EVENTS, {"n": 1})
            except Exception:
                continue
            if arrived.wait(0.2):
                break
        assert got and got[0] == {"n": 1}
    finally:
        server.stop()


def test_a_transactions_events_travel_as_one_message(app, redis_server):
    """The events of one commit are one Redis message (one round trip for a whole batch
    of StatusNotifications), delivered here one by one, in order."""
    import json

    import redis

    from dashboard.extensions import db
    from dashboard.live import events

    watcher = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    watcher.subscribe(EVENTS)
    delivered = []
    unsubscribe = events.subscribe(delivered.append)
    bus = RedisBus(redis_server.url)
    events.configure(bus)
    try:
        bus.ensure_listening()
        with app.app_context():
            for n in range(3):
                events.publish_after_commit(db.session, {"type": "connector", "n": n})
            db.session.commit()
        messages = []
        for _ in range(20):
            message = watcher.get_message(timeout=0.2)
            if message:
                messages.append(json.loads(message["data"]))
        assert len(messages) == 1
        assert [e["n"] for e in messages[0]["events"]] == [0, 1, 2]
        assert all(e["event_id"] for e in messages[0]["events"])
        for _ in range(50):
            if len(delivered) == 3:
                break
            threading.Event().wait(0.1)
        assert [e["n"] for e in delivered] == [0, 1, 2]
    finally:
        events.configure(None)
        bus.close()
        unsubscribe()
        watcher.close()
