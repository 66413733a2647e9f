"""Command-line options and entry point of `shouwang simulate`."""

from __future__ import annotations

import argparse
import logging
import threading
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from shouwang.clock import ScaledClock
from shouwang.registry import dump_registry
from simulators.community import build_community
from simulators.publisher import Simulator
from simulators.scenario import DEMO_SCENARIO, ScenarioError, load_scenario

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to an (sub)parser."""
    parser.add_argument("--households", type=int, default=50, metavar="N",
                        help="number of simulated households (default 50; the demo scenario needs 40+)")
    parser.add_argument("--scenario", type=Path, default=DEMO_SCENARIO, metavar="FILE",
                        help="scenario YAML with scripted incidents (default: the shipped demo.yaml)")
    parser.add_argument("--speed", type=float, default=1440.0,
                        help="simulated seconds per wall second (default 1440: one day per minute)")
    parser.add_argument("--start", default=None, metavar="ISO",
                        help="simulation start, e.g. 2026-11-22 or 2026-11-22T06:00 (default: today 00:00)")
    parser.add_argument("--host", default="127.0.0.1", help="MQTT broker host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1883, help="MQTT broker port (default 1883)")
    parser.add_argument("--interval-s", type=float, default=900.0, help="reporting interval (default 900 s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for people, habits and meters")
    parser.add_argument("--community", default="demo", help="community id (default demo)")
    parser.add_argument("--timezone", default="Asia/Shanghai",
                        help="community time zone (default Asia/Shanghai)")
    parser.add_argument("--prefix", default="shouwang/v1", help="MQTT topic prefix (default shouwang/v1)")
    parser.add_argument("--client-id-prefix", default="sim",
                        help="MQTT client ids are <this>-<gateway> (default sim); vary it per simulator")
    parser.add_argument("--write-registry", type=Path, default=None, metavar="PATH",
                        help="write the simulated community's registry YAML here (for the service)")
    parser.add_argument("--single", action="store_true", help="one reading per message instead of batches")


def parse_start(text: str | None, timezone: str) -> float:
    """--start value (date or date-time, local unless it has an offset) -> epoch seconds."""
    tz = ZoneInfo(timezone)
    if not text:
        return datetime.combine(date.today(), time(0), tzinfo=tz).timestamp()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--start {text!r} is not an ISO date or date-time like 2026-11-22T06:00") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).timestamp()


def run(args: argparse.Namespace) -> int:
    """Build the community, optionally write its registry, and publish in real time until Ctrl-C."""
    try:
        start = parse_start(args.start, args.timezone)
        ZoneInfo(args.timezone)
    except (ValueError, KeyError) as exc:
        log.error("%s", exc)
        return 2
    registry = build_community(args.households, community_id=args.community, seed=args.seed,
                               timezone=args.timezone)
    try:
        scenario = load_scenario(args.scenario, registry)
    except ScenarioError as exc:
        log.error("%s", exc)
        return 2
    if args.write_registry:
        args.write_registry.parent.mkdir(parents=True, exist_ok=True)
        args.write_registry.write_text(dump_registry(registry), encoding="utf-8")
        log.info("wrote the registry of %d households to %s", len(registry.households), args.write_registry)
    sim = Simulator(registry, scenario, args.host, args.port, start=start, interval_s=args.interval_s,
                    seed=args.seed, batch=not args.single, mqtt_prefix=args.prefix,
                    client_id_prefix=args.client_id_prefix)
    for w in sim.incidents:
        log.info("scripted incident %d: %s", w.number, w.describe())
    stop = threading.Event()
    try:
        sim.connect()
    except ConnectionError as exc:
        log.error("%s", exc)
        return 1
    log.info("simulating %d households from %s at %gx; Ctrl-C stops", len(registry.households),
             datetime.fromtimestamp(start, ZoneInfo(args.timezone)).isoformat(), args.speed)
    try:
        totals = sim.run(ScaledClock(start, args.speed), stop)
    except KeyboardInterrupt:
        stop.set()
        log.info("stopping")
        totals = None
    finally:
        sim.close()
    if totals is not None:
        log.info("published %d readings in %d messages", totals.readings, totals.messages)
    return 0
