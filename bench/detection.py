"""Detection benchmark: every detector and preset on a simulated community and on real meter data.

    .venv/bin/python bench/detection.py [--quick] [--jobs 2] [--write docs/detection-benchmark.md]

For each detector: the share of incidents alerted, median and 90th-percentile hours from incident to alert,
and welfare alerts per 1,000 household-days of ordinary living (false alarms). Detectors run together in one
replay per dataset, each keeping its own open alerts. See docs/detection-benchmark.md for the definitions.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from detection_real import RealConfig, daiad, eco
from detection_score import (
    Dataset,
    markdown_table,
    pct,
    quantiles,
    rate,
    score,
    score_faults,
)
from detection_sim import SimConfig, build, describe

from simulators.replay import Replayer, available_detector_names, build_detectors

SIM_KINDS = ("incapacitation", "shower_fall", "tap_running", "leak")


def detector_set(names: list[str] | None) -> list[str]:
    """Names to benchmark, one per distinct detector (``no-change`` is ``no-change-48h``)."""
    seen, out = set(), []
    for n in names or available_detector_names():
        try:
            built = build_detectors([n])[0].name
        except (KeyError, ValueError):
            print(f"skipping unknown detector {n!r}", file=sys.stderr)
            continue
        if built not in seen:
            seen.add(built)
            out.append(built)
    return out


def _replay(ds: Dataset, names: list[str]) -> tuple[list, float, int]:
    dets = build_detectors(names)
    t = time.perf_counter()
    rp = Replayer(ds.table, dets, ds.away, ds.tz, ds.step_s, registry=ds.registry, per_detector=True)
    alerts = rp.run()
    return alerts, time.perf_counter() - t, rp.steps


def _plain(ds: Dataset, alerts: list, names: list[str], seconds: float, steps: int) -> dict:
    dets = {n: build_detectors([n])[0].name for n in names}
    scores = score(ds, alerts, list(dets.values()))
    groups = sorted(set(ds.group.values()))
    return {
        "name": ds.name, "readings": len(ds.table), "households": len(set(ds.table.households)),
        "bad": dict(ds.table.bad.counts), "seconds": seconds, "steps": steps, "step_s": ds.step_s,
        "days": ds.ordinary_days(), "incidents": len(ds.incidents),
        "days_by_group": {g: ds.ordinary_days({h for h in ds.fa_households if ds.group.get(h) == g}) for g in groups},
        "faults": score_faults(ds, alerts, ds.step_s) if ds.faults else [],
        "scores": {n: {"detected": dict(s.detected), "missed": dict(s.missed), "fa": s.false_alarms,
                       "fa_by_label": dict(s.fa_by_label), "fa_by_group": dict(s.fa_by_group),
                       "learning": s.learning_alerts} for n, s in ((n, scores[d]) for n, d in dets.items())},
    }


def task(job: tuple[str, dict, list[str]]) -> list[dict]:
    """One worker's share: build the data, replay it with every detector, score it."""
    what, conf, names = job
    out = []
    if what == "sim":
        for ds in build(SimConfig(**conf)):
            alerts, secs, steps = _replay(ds, names)
            out.append(_plain(ds, alerts, names, secs, steps))
    elif what in ("daiad", "daiad-incidents", "eco"):
        cfg = RealConfig(**conf)
        pair = eco(cfg) if what == "eco" else daiad(cfg)
        for ds in (pair if what == "eco" else pair[:1] if what == "daiad" else pair[1:]):
            alerts, secs, steps = _replay(ds, names)
            out.append(_plain(ds, alerts, names, secs, steps))
    return out


# ---------------------------------------------------------------------------------------------- tables
def _det(s: dict, kinds: tuple[str, ...] | None = None) -> tuple[str, str, str]:
    ks = kinds or tuple(sorted(set(s["detected"]) | set(s["missed"])))
    times = [t for k in ks for t in s["detected"].get(k, [])]
    total = len(times) + sum(s["missed"].get(k, 0) for k in ks)
    med, p90 = quantiles(times)
    return pct(len(times), total), med, p90


def sim_table(r: dict, elec_only: bool) -> str:
    """Rows per detector for a simulated dataset."""
    rows = []
    for n, s in r["scores"].items():
        if elec_only:
            rows.append([n, *_det(s, ("incapacitation",)), rate(s["fa"], r["days"])])
            continue
        labels = s["fa_by_label"]
        unreg = sum(v for k, v in labels.items() if "not registered" in k or k == "day trip")
        reg = sum(v for k, v in labels.items() if "(registered)" in k)
        rows.append([n, *_det(s, ("incapacitation",)), _det(s, ("shower_fall",))[0],
                     " / ".join(_det(s, ("tap_running",))[:2]), " / ".join(_det(s, ("leak",))[:2]),
                     rate(s["fa"], r["days"]), rate(labels.get("at home", 0), r["days"]), str(unreg), str(reg)])
    head = ["detector", "incapacitation detected", "median", "p90"]
    if elec_only:
        return markdown_table([*head, "false alarms / 1,000 hh-days"], rows)
    return markdown_table([*head, "shower fall detected", "tap running: detected / median",
                           "leak: detected / median", "false alarms / 1,000 hh-days", "… of them at home",
                           "alerts in unregistered absences", "alerts in registered absences"], rows)


def daiad_table(fa: dict, inc: dict) -> str:
    """Rows per detector: injected incidents and false alarms, all homes and the held-out half."""
    rows = []
    held = "held-out half"
    for n in fa["scores"]:
        s, i = fa["scores"][n], inc["scores"][n]
        long = s["fa_by_label"].get("no water for a day or more", 0)
        rows.append([n, *_det(i), rate(s["fa"], fa["days"]), rate(s["fa"] - long, fa["days"]), str(long),
                     " / ".join(_det(i, (f"incapacitation ({held})",))[:2]),
                     rate(s["fa_by_group"].get(held, 0), fa["days_by_group"].get(held, 0))])
    return markdown_table(["detector", "incidents detected", "median", "p90", "false alarms / 1,000 hh-days",
                           "… outside multi-day no-water stretches", "alerts in multi-day no-water stretches",
                           "held-out half: detected / median", "held-out half: false alarms / 1,000 hh-days"],
                          rows)


def eco_table(fa: dict, inc: dict) -> str:
    """Rows per detector for ECO house 2."""
    rows = []
    for n in fa["scores"]:
        s, i = fa["scores"][n], inc["scores"][n]
        rows.append([n, *_det(i), str(s["fa"]), rate(s["fa"], fa["days"]),
                     str(s["fa_by_label"].get("labelled absence (6 h or more)", 0))])
    return markdown_table(["detector", "incidents detected", "median", "p90",
                           f"alerts on the recorded {fa['days']:.0f} days", "per 1,000 hh-days",
                           "… during labelled absences"], rows)


def main(argv: list[str] | None = None) -> int:
    """Run everything and print (and optionally write) the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller community, fewer days and incidents (~1 min)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    p.add_argument("--detectors", default=None, help="comma-separated names (default: every one available)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--write", type=Path, default=None, metavar="MD", help="also write the report to this file")
    p.add_argument("--eco-base", choices=("percentile", "night", "nightseq"), default="percentile",
                   help="what an ECO incident's electricity falls to: a flat percentile of the week before with "
                   "noise (default), intervals drawn at random from the home's own 01:00-05:00 power over the "
                   "week before (night), or those nights' intervals replayed in order (nightseq)")
    p.add_argument("--eco-night-from", type=int, default=1,
                   help="with --eco-base night or nightseq: the night's first hour (default 1: 01:00-05:00)")
    p.add_argument("--eco-percentile", type=float, default=10, help="with --eco-base percentile (default 10)")
    p.add_argument("--eco-noise", type=float, default=0.05, help="with --eco-base percentile: relative noise")
    args = p.parse_args(argv)
    names = detector_set(args.detectors.split(",") if args.detectors else None)
    sim = SimConfig(seed=args.seed) if not args.quick else SimConfig(households=80, days=50, seed=args.seed)
    real = RealConfig(seed=args.seed) if not args.quick else RealConfig(seed=args.seed, per_household=2,
                                                                        eco_incidents=12, daiad_days=150)
    real = replace(real, eco_base=args.eco_base, eco_base_percentile=args.eco_percentile, eco_noise=args.eco_noise,
                   eco_night_from=args.eco_night_from)
    sim_conf, real_conf = asdict(sim), asdict(real)
    jobs = [("daiad", real_conf, names), ("sim", sim_conf, names), ("daiad-incidents", real_conf, names),
            ("eco", real_conf, names)]
    started = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = [r for rs in pool.map(task, jobs) for r in rs]
    else:
        results = [r for j in jobs for r in task(j)]
    wall = time.perf_counter() - started
    daiad_fa, sim_full, sim_elec, daiad_inc, eco_fa, eco_inc = results
    cmd = "bench/detection.py" + (" --quick" if args.quick else "") + (f" --seed {args.seed}" if args.seed != 1
                                                                         else "")
    cmd += "" if args.eco_base == "percentile" else f" --eco-base {args.eco_base}"
    cmd += "" if args.eco_night_from == 1 else f" --eco-night-from {args.eco_night_from}"
    cmd += "" if args.eco_percentile == 10 else f" --eco-percentile {args.eco_percentile:g}"
    cmd += "" if args.eco_noise == 0.05 else f" --eco-noise {args.eco_noise:g}"
    sections = [
        ("Simulated community: water and electricity", describe(sim), sim_table(sim_full, False), sim_full),
        ("Simulated community: electricity only (the same lives, water meters removed)",
         "Incapacitations only (taps and leaks are invisible without a water meter).",
         sim_table(sim_elec, True), sim_elec),
        ("Real water data: DAIAD Alicante (46 homes), incidents injected",
         (f"False alarms: the homes as recorded ({daiad_fa['days']:.0f} household-days after each home's first "
         f"{real.warmup_days} days). Incidents: {daiad_inc['incidents']} copies of the homes, each with "
         f"{real.history_days} days of the home's own history, whose register stands still from a moment when "
         f"the home had used water in the previous 12 h; detected if alerted within {real.horizon_h} h."),
         daiad_table(daiad_fa, daiad_inc), daiad_fa),
        ("Real electricity data: ECO house 2 (one home, June 2012), incidents injected",
         (f"{eco_inc['incidents']} incidents at moments labelled occupied, from which electricity falls to the "
         + (f"home's base load ({real.eco_base_percentile:.0f}th percentile of its 15-minute power over the "
            f"previous 7 days, ±{real.eco_noise:.0%} noise)." if real.eco_base == "percentile" else
            f"home's own night-time power (each interval drawn from its 15-minute power between "
            f"{real.eco_night_from:02d}:00 and 05:00 over the previous 7 days)." if real.eco_base == "night" else
            f"home's own night-time power (its 15-minute power between {real.eco_night_from:02d}:00 and 05:00 "
            "over the previous 7 days, replayed night after night in order).")),
         eco_table(eco_fa, eco_inc), eco_fa),
    ]
    out = []
    for title, text, table, r in sections:
        out += [f"### {title}", "", text, "", table, ""]
        for kind, line in r.get("faults", []):
            out.append(f"- device check, {kind}: {line}")
        if r.get("faults"):
            out.append("")
    timing = [f"{r['name']}: {r['readings']:,} readings, {r['steps']:,} steps of {r['step_s']} s, "
              f"replayed in {r['seconds']:.0f} s" + (f"; bad rows skipped: {r['bad']}" if r["bad"] else "")
              for r in results]
    out += ["Replays:", "", *[f"- {t}" for t in timing], "",
            (f"`{cmd}` took {wall:.0f} s wall time with {args.jobs} worker(s) on {platform.machine()} "
            f"({os.cpu_count()} CPUs), Python {platform.python_version()}.")]
    report = "\n".join(out)
    print(report)
    if args.write:
        _write(args.write, report)
    return 0


def _write(path: Path, report: str) -> None:
    text = path.read_text() if path.exists() else ""
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin in text and end in text:
        text = text[:text.index(begin) + len(begin)] + "\n" + report + "\n" + text[text.index(end):]
    else:
        text += f"\n{begin}\n{report}\n{end}\n"
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())

