"""`shouwang demo`: broker, service, API and a simulated community with scripted incidents, on one machine."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from shouwang.logs import setup_logging

log = logging.getLogger("shouwang.demo")
ZONE = "Asia/Shanghai"


def _local_midnight(zone: str) -> float:
    now = datetime.now(ZoneInfo(zone))
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _say(text: str) -> None:
    print(text, flush=True)


def run_demo(args: argparse.Namespace) -> int:
    """Run until Ctrl-C (or --days of simulated time), printing alerts as they open."""
    from alerts.channels import ConsoleChannel, channel_from_url
    from api.app import create_app
    from ingest.broker import ensure_broker
    from shouwang.cli import _serve_api
    from shouwang.clock import ScaledClock
    from shouwang.metrics import registry_for
    from shouwang.registry import dump_registry
    from shouwang.service import Service
    from shouwang.settings import Settings
    from simulators.community import build_community
    from simulators.publisher import Simulator
    from simulators.scenario import DEFAULT_SCENARIO, load_scenario
    from storage import open_store

    setup_logging("WARNING")
    workdir = args.workdir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    registry = build_community(args.households)
    (workdir / "registry.yaml").write_text(dump_registry(registry), encoding="utf-8")
    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO, registry)

    broker = ensure_broker("127.0.0.1", args.mqtt_port, allow_embedded=True)
    start = _local_midnight(ZONE)
    clock = ScaledClock(start, args.speed)
    settings = Settings(database_url=f"sqlite:///{workdir}/shouwang.db", registry_file=workdir / "registry.yaml",
                        mqtt_port=args.mqtt_port, mqtt_topic_prefix=args.prefix,
                        mqtt_client_id=f"shouwang-demo-{args.port}", mqtt_clean_session=True,
                        state_snapshot=workdir / "state.npz", tick_s=1.0, api_port=args.port, public_url=f"http://127.0.0.1:{args.port}")
    store = open_store(settings.database_url)
    accounts = create_demo_accounts(store, registry)
    console = ConsoleChannel(sys.stdout)
    service = Service(settings, store, registry, clock,
                      make_channel=lambda url: console if url.startswith("console:") else channel_from_url(url))
    service.start()
    server, api_thread = _serve_api(create_app(store, service.state, clock, health=service.health,
                                               secret=settings.secret_key.get_secret_value(),
                                               metrics_registry=registry_for(service)),
                                    settings.api_host, settings.api_port)
    stop = threading.Event()
    sim = Simulator(registry, scenario, "127.0.0.1", args.mqtt_port, start=start, seed=7, mqtt_prefix=args.prefix,
                    client_id_prefix=f"demo-sim-{args.port}")
    sim_thread = threading.Thread(target=sim.run, args=(clock, stop), name="simulator", daemon=True)
    sim_thread.start()

    _say(f"Shouwang demo: {len(registry.households)} households, {len(registry.gateways)} gateways, "
         f"broker {'embedded' if broker else 'Mosquitto'} on 127.0.0.1:{args.mqtt_port}, "
         f"{args.speed / 1440:g} simulated day(s) per wall minute.")
    _say(f"API: http://127.0.0.1:{args.port}/docs   households: http://127.0.0.1:{args.port}/api/households")
    _say(f"Web pages: http://127.0.0.1:{args.port}/  accounts (password {DEMO_PASSWORD!r}, demo only): "
         + ", ".join(f"{uid} ({role})" for uid, role in accounts))
    _say("Scripted incidents:")
    for inc in sim.incidents:
        _say(f"  - {inc.describe()}")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    zone = ZoneInfo(ZONE)
    next_report = start
    end = start + args.days * 86400 if args.days else None
    while not stop.wait(0.5):
        now = clock.now()
        if now >= next_report:
            st = service.stats.snapshot()
            rejected = sum(v for k, v in st.items() if k.startswith("rejected."))
            local = datetime.fromtimestamp(now, zone)
            _say(f"── day {int((now - start) // 86400) + 1} {local:%H:%M} ── {st.get('readings_stored', 0)} readings "
                 f"stored, {rejected} rejected, {len(store.unresolved_alerts())} unresolved alert(s)")
            next_report += 12 * 3600
        if end is not None and now >= end:
            break

    _say("stopping…")
    stop.set()
    sim_thread.join(10)
    sim.close(clear_retained=True)
    service.tick()
    service.stop()
    server.should_exit = True
    api_thread.join(5)
    _summary(store, start)
    store.close()
    if broker:
        broker.stop()
    return 0


DEMO_PASSWORD = "shouwang-demo"


def create_demo_accounts(store, registry) -> list[tuple[str, str]]:
    """An administrator, a manager of the community and a worker of its first grid, all with the demo password."""
    from shouwang.accounts import User, UserRole, hash_password

    community = registry.communities[0].id
    grid = min(h.grid for h in registry.households)
    pw = hash_password(DEMO_PASSWORD)
    users = [User("admin", "Administrator", UserRole.ADMIN, pw, "en"),
             User("manager", "物业经理", UserRole.MANAGER, pw, "zh", communities=(community,)),
             User("worker", "网格员", UserRole.WORKER, pw, "zh", grids=(f"{community}/{grid}",))]
    for user in users:
        store.create_user(user)
    return [(u.id, str(u.role)) for u in users]


def _summary(store, start: float) -> None:
    """What opened during the demo."""
    alerts = store.alerts(limit=1000)
    _say(f"\n{len(alerts)} alert(s) during the demo:")
    for a in sorted(alerts, key=lambda a: a.opened_at):
        who = a.household or a.gateway or a.meter
        _say(f"  #{a.id:<3} {a.category:<12} {who:<8} opened at +{(a.opened_at - start) / 3600:5.1f} h "
             f"[{a.status}] {a.reason}")
