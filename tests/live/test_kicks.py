"""Connects told to the other processes (the rule of one live connection per identity),
on a real Redis server: together, not a Redis round trip each."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from dashboard.live import events
from dashboard.live.redis_bus import KICKS, RedisBus
from dashboard.ocpp16 import remote


@pytest.fixture
def backend():
    return "sqlite"  # the database plays no part


@pytest.fixture
def bus(app, redis_server, monkeypatch):
    """This process's bus, whose first publish waits until the test lets it go."""
    bus = RedisBus(redis_server.url)
    release, publishing = threading.Event(), threading.Event()
    publish = bus.publish

    def held(channel, message):
        publishing.set()
        assert release.wait(10)
        publish(channel, message)

    monkeypatch.setattr(bus, "publish", held)
    monkeypatch.setattr(events, "_bus", bus)
    bus.release, bus.publishing = release, publishing
    yield bus
    bus.close()


def listening(url: str, expected: int):
    """Another process's bus, listening to the kicks: (bus, the messages it received, an
    event set once they hold `expected` kicks)."""
    other = RedisBus(url)
    messages, arrived = [], threading.Event()

    def on_kicks(message):
        messages.append(message)
        if sum(len(m["kicks"]) for m in messages) == expected:
            arrived.set()

    other.on(KICKS, on_kicks)
    assert other.ensure_listening()
    return other, messages, arrived


def test_connects_made_together_are_told_in_one_message(app, bus, redis_server):
    other, messages, arrived = listening(redis_server.url, 50)
    connections = [SimpleNamespace(identity=f"CP-{n}", uid=f"uid-{n}") for n in range(50)]
    with app.app_context():
        remote.announce(connections[0])
        assert bus.publishing.wait(5)  # the first is on its way, and held there
        for connection in connections[1:]:
            remote.announce(connection)
    bus.release.set()
    assert arrived.wait(10)
    other.close()
    # The first alone, then the 49 made while it was being sent: 2 messages, not 50.
    assert [len(m["kicks"]) for m in messages] == [1, 49]
    assert [kick for m in messages for kick in m["kicks"]] == [
        {"identity": c.identity, "uid": c.uid} for c in connections
    ]


def test_a_kick_closes_the_other_connection_of_the_identity_only(app, monkeypatch):
    closed = []
    here = SimpleNamespace(uid="old", close=lambda *args: closed.append(("CP-1", args)))
    monkeypatch.setattr(remote.registry, "get", {"CP-1": here}.get)
    remote._kick({"kicks": [{"identity": "CP-1", "uid": "old"}, {"identity": "CP-2", "uid": "x"}]})
    assert closed == []  # its own announcement, and an identity not connected here
    remote._kick({"kicks": [{"identity": "CP-1", "uid": "new"}]})
    remote._kick({"identity": "CP-1", "uid": "newer"})  # as a process of an older release sends
    assert closed == [("CP-1", (1000, "replaced by a new connection"))] * 2


def test_connects_made_within_the_gathering_interval_are_told_in_one_message(
    app, redis_server, monkeypatch
):
    """The first connect of a quiet moment waits KICKS_GATHER for the others: a fleet
    reconnecting at once sends a message per interval, not one per connect or two."""
    bus = RedisBus(redis_server.url)
    monkeypatch.setattr(events, "_bus", bus)
    other, messages, arrived = listening(redis_server.url, 10)
    with app.app_context():
        for n in range(10):
            remote.announce(SimpleNamespace(identity=f"CP-{n}", uid=f"uid-{n}"))
            time.sleep(remote.KICKS_GATHER / 20)
    assert arrived.wait(10)
    bus.close()
    other.close()
    assert [len(m["kicks"]) for m in messages] == [10]
