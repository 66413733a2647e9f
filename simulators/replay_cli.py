"""Command-line options and entry point of `shouwang replay`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulators.replay import (
    BadRows,
    Replayer,
    available_detector_names,
    build_detectors,
    load_away,
    load_readings,
    write_jsonl,
)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the replay's options to a (sub)parser."""
    parser.add_argument("--readings", type=Path, required=True, metavar="FILE",
                        help="CSV (optionally .gz) with header household,meter,kind,ts,value; value = cumulative "
                             "register (water m³, electricity kWh)")
    parser.add_argument("--away", type=Path, default=None, metavar="FILE",
                        help="CSV with header household,start,end: registered absences (empty end: until "
                             "activity resumes); welfare alerts are held during them")
    parser.add_argument("--detectors", default=None, metavar="NAMES",
                        help="comma-separated detector names (default: the ones the service runs); "
                             "--detectors list prints the available names")
    parser.add_argument("--tz", default="Asia/Shanghai", metavar="ZONE",
                        help="time zone of timestamps without an offset, and of the output (default Asia/Shanghai)")
    parser.add_argument("--step-s", type=int, default=900, metavar="S",
                        help="event-time step between detector sweeps (default 900 s)")
    parser.add_argument("--out", default="-", metavar="FILE",
                        help="where to write the alerts, one JSON object per line (default: standard output)")


def run(args: argparse.Namespace) -> int:
    """Replay the readings and write the alerts; 0 on success, 2 on bad usage or unreadable input."""
    if args.detectors == "list":
        print("\n".join(available_detector_names()))
        return 0
    try:
        ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        return _fail(f"--tz {args.tz!r} is not a known time zone (e.g. Asia/Shanghai, Europe/Madrid)")
    names = [n.strip() for n in args.detectors.split(",") if n.strip()] if args.detectors else None
    try:
        detectors = build_detectors(names)
    except (KeyError, ValueError) as exc:
        return _fail(f"--detectors: {exc.args[0] if exc.args else exc}")
    if args.step_s <= 0:
        return _fail("--step-s must be a positive number of seconds")
    started = time.perf_counter()
    try:
        table = load_readings(args.readings, args.tz)
        bad_away = BadRows()
        away = load_away(args.away, args.tz, bad_away) if args.away else []
    except (OSError, ValueError, EOFError) as exc:
        return _fail(f"cannot read input: {exc}")
    for line in table.bad.lines() + [f"away file: {x}" for x in bad_away.lines()]:
        print(line, file=sys.stderr)
    replayer = Replayer(table, detectors, away, args.tz, args.step_s)
    alerts = replayer.run()
    try:
        n = write_jsonl(alerts, sys.stdout.buffer if args.out == "-" else args.out, args.tz)
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc}")
    households = len(set(table.households))
    print(f"replayed {len(table):,} readings of {households} household(s) ({table.bad.total} bad row(s) skipped, "
          f"{table.duplicates} duplicate(s)) with {', '.join(d.name for d in detectors)} in "
          f"{time.perf_counter() - started:.1f} s: {n} alert(s) → {args.out}", file=sys.stderr)
    return 0


def _fail(message: str) -> int:
    print(f"shouwang replay: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m simulators.replay_cli``)."""
    parser = argparse.ArgumentParser(prog="shouwang replay", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["add_arguments", "main", "run"]
