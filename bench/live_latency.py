"""Latency of the live channel, as served in production.

Serves the app with gunicorn (2 gevent workers) on PostgreSQL and Redis, opens 200 browser
sockets (`/live/ws`, view of the connectors list) spread over 10 companies, and has 100
charge points (10 a company, the `ocpp` package's client) send StatusNotifications at 200
per second in all. Each notification carries a unique `info`, which the row fragment shows:
the time from the notification sent to its fragment received is measured on every socket
that should get it. Prints p50 / p95 / p99, and checks that every socket received exactly
the events of its own company. Goal: p95 under 100 ms.

    .venv/bin/python bench/live_latency.py [--sockets 200] [--rate 200] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import logging
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import ocpp.messages
from common import ROOT, database, start_gunicorn, stop_process
from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect

from dashboard import create_app
from dashboard.cli import create_company, create_user
from dashboard.extensions import db
from dashboard.services.chargepoints import create_chargepoint
from dashboard.services.permissions import SYSTEM, sync_builtin_roles
from tests.servers import RedisServer

TOKEN = re.compile(r"<td[^>]*>(m\d+-\d+)</td>")  # the Info cell of a connector row
PASSWORD = "bench-password"
CYCLE = ["Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available"]


def fill(url: str, companies: int, per_company: int) -> dict[int, list[str]]:
    from flask_migrate import upgrade

    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    identities = {}
    with app.app_context():
        upgrade()
        sync_builtin_roles()
        for c in range(companies):
            company = create_company(f"Live {c}")
            create_user(f"user{c}@example.com", PASSWORD, "company_user", company.id)
            identities[c] = [
                create_chargepoint(SYSTEM, identity=f"LIVE-{c}-{n}", company_id=company.id).identity
                for n in range(per_company)
            ]
        db.session.commit()
        db.engine.dispose()
    return identities


def login(port: int, email: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://127.0.0.1:{port}/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": token})
    opener.open(f"http://127.0.0.1:{port}/login", data=data.encode())
    return "; ".join(f"{c.name}={c.value}" for c in jar)


async def browser(port, cookie, company, received, stop, ready, shown=None):
    """One browser socket: records `(company, token, time)` the first time each token
    reaches it. A row rendered again later (a charge point's disconnection re-renders its
    connectors' rows, still showing the last `info`) is the same fragment shown again, not
    a later delivery: timed, each probe's last status counted 1.1 s in fleet.py's runs,
    the whole of their live p99 and a part of their p95. `shown`: the row ids its page
    shows, told to the server as the page's script does, with the list's filters (none:
    the whole list) (None: not told)."""
    origin = f"http://127.0.0.1:{port}"
    seen = set()
    async with connect(
        f"ws://127.0.0.1:{port}/live/ws?view=connectors",
        proxy=None,
        additional_headers={"Cookie": cookie, "Origin": origin},
        compression=None,
    ) as ws:
        if shown is not None:
            await ws.send(json.dumps({"shown": shown, "filters": {}}))
        ready.append(1)

        async def read():
            async for frame in ws:
                now = time.monotonic()
                for token in TOKEN.findall(frame):
                    if token not in seen:
                        seen.add(token)
                        received.append((company, token, now))

        reader = asyncio.create_task(read())
        await stop.wait()
        reader.cancel()


async def chargepoint(port, identity, company, rate, start_at, stop_at, sent, acks):
    async with connect(
        f"ws://127.0.0.1:{port}/ocpp/{identity}",
        subprotocols=["ocpp1.6"],
        proxy=None,
        compression=None,
        ping_interval=None,
    ) as ws:
        cp = ChargePoint(identity, ws)
        receiver = asyncio.create_task(cp.start())
        await cp.call(call.BootNotification(charge_point_model="Live", charge_point_vendor="B"))
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        step = 0
        while time.monotonic() < stop_at:
            token = f"m{identity.split('-', 1)[1].replace('-', '')}-{step}"
            sent[token] = (company, time.monotonic())
            await cp.call(
                call.StatusNotification(
                    connector_id=1 + step % 2,
                    error_code="NoError",
                    status=CYCLE[(step // 2) % len(CYCLE)],
                    info=token,
                    timestamp=datetime.now(UTC).isoformat(),
                )
            )
            acks.append((time.monotonic() - sent[token][1]) * 1000)
            step += 1
            # A steady rate, whatever the acknowledgements take (one CALL at a time, as OCPP
            # wants): the next notification is due at a fixed time, not a fixed pause later.
            await asyncio.sleep(max(0.0, start_at + step / rate - time.monotonic()))
        receiver.cancel()


async def loop_lag(until: float) -> list[float]:
    """How late this process's own event loop wakes up (ms): the load generator's share
    of the latencies it measures."""
    lags = []
    while time.monotonic() < until:
        due = time.monotonic() + 0.01
        await asyncio.sleep(0.01)
        lags.append((time.monotonic() - due) * 1000)
    return sorted(lags)


async def run(port_a, port_b, identities, sockets, rate, duration):
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    ocpp.messages.ASYNC_VALIDATION = False
    companies = sorted(identities)
    cookies = {
        c: await asyncio.to_thread(login, port_b if c % 2 else port_a, f"user{c}@example.com")
        for c in companies
    }
    stop, ready, received, sent, acks = asyncio.Event(), [], [], {}, []
    browsers = [
        asyncio.create_task(
            browser(port_b if c % 2 else port_a, cookies[c], c, received, stop, ready)
        )
        for n in range(sockets)
        for c in [companies[n % len(companies)]]
    ]
    while len(ready) < sockets:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    every = [(c, n, identity) for c in companies for n, identity in enumerate(identities[c])]
    per_cp = rate / len(every)
    start_at = time.monotonic() + 3
    stop_at = start_at + duration
    # Charge points do not send in step: each starts at its own offset within its period,
    # so that the notifications arrive evenly spread at `rate` per second.
    cps = [
        asyncio.create_task(
            chargepoint(
                port_a if n % 2 else port_b,
                identity,
                c,
                per_cp,
                start_at + k / rate,
                stop_at,
                sent,
                acks,
            )
        )
        for k, (c, n, identity) in enumerate(every)
    ]
    lag = asyncio.create_task(loop_lag(stop_at))
    await asyncio.gather(*cps)
    lags = await lag
    await asyncio.sleep(2)
    stop.set()
    await asyncio.gather(*browsers)
    return sent, received, acks, lags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--chargepoints-per-company", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-live-bench-"))
    url, server = database("postgresql", workdir)
    redis_server = RedisServer().start()
    servers = []
    try:
        identities = fill(url, args.companies, args.chargepoints_per_company)
        env = {"REDIS_URL": redis_server.url, "LOGIN_LIMIT_PER_ADDRESS": "1000 per minute"}
        servers = [start_gunicorn(url, workdir / f"g{n}.log", workers=1, env=env) for n in range(2)]
        sent, received, acks, lags = asyncio.run(
            run(servers[0][1], servers[1][1], identities, args.sockets, args.rate, args.duration)
        )
        sockets_per_company = defaultdict(int)
        for n in range(args.sockets):
            sockets_per_company[n % args.companies] += 1
        latencies, foreign = [], 0
        for company, token, at in received:
            origin_company, sent_at = sent.get(token, (None, None))
            if origin_company != company:
                foreign += 1
                continue
            latencies.append((at - sent_at) * 1000)
        expected = sum(sockets_per_company[c] for c, _ in sent.values())
        latencies.sort()

        acks.sort()

        def pct(p, values=latencies):
            return values[min(len(values) - 1, int(p * len(values)))]

        print(
            f"{args.sockets} browser sockets over {args.companies} companies, "
            f"{len(sent)} StatusNotifications in {args.duration:.0f} s "
            f"({len(sent) / args.duration:.0f}/s) from "
            f"{sum(len(v) for v in identities.values())} charge points; two servers "
            f"(gunicorn, gevent) on PostgreSQL and Redis, half the sockets on each"
        )
        print(
            f"fragments received: {len(latencies)} of {expected} expected "
            f"({100 * len(latencies) / max(expected, 1):.1f} %; the rest coalesced, newest "
            f"state wins); from another company: {foreign}"
        )
        print(
            f"latency sent → fragment received: p50 {pct(0.5):.1f} ms, p95 {pct(0.95):.1f} ms,"
            f" p99 {pct(0.99):.1f} ms"
        )
        print(
            f"of which stored and acknowledged: p50 {pct(0.5, acks):.1f} ms, "
            f"p95 {pct(0.95, acks):.1f} ms, p99 {pct(0.99, acks):.1f} ms"
        )
        print(
            f"the load generator's own event loop late by: p50 {pct(0.5, lags):.1f} ms, "
            f"p95 {pct(0.95, lags):.1f} ms, p99 {pct(0.99, lags):.1f} ms"
        )
        print(
            f"goals: p95 under 100 ms: {'met' if pct(0.95) < 100 else 'NOT met'}; "
            f"only own company: {'met' if foreign == 0 else 'NOT met'}"
        )
        return 0
    finally:
        for process, _ in servers:
            stop_process(process)
        redis_server.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
