"""Replay: recorded readings through the detectors in event time, alerts out as JSONL."""

from __future__ import annotations

import argparse
import gzip
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from simulators import replay_load
from simulators.replay import ReadingTable, Replayer, ReplayRow, build_detectors, load_readings, replay
from simulators.replay_cli import add_arguments, run

TZ = ZoneInfo("Asia/Shanghai")
DAY0 = datetime(2025, 3, 1, tzinfo=TZ)
FIXTURE = Path(__file__).parent / "fixtures" / "replay" / "daiad-excerpt.csv.gz"
HEADER = "household,meter,kind,ts,value"
BAD_ROWS = {  # one of each kind of bad row, and why it is skipped
    "H1,H1-W,water,not-a-time,1.0": "bad_timestamp",
    "H1,H1-W,water,2025-03-01 05:30:00,-1": "negative_value",
    "H1,H1-E,electricity,2025-03-01 05:30:00,abc": "invalid_field",
    "H1,H1-G,gas,2025-03-01 05:30:00,3.0": "unknown_kind",
    "H1,H1-W,water,2025-03-02 10:30:00,1.0": "register_backwards",
    "H2,H1-W,water,2025-03-02 11:30:00,500.0": "kind_mismatch",
}
SHAPE_ROW = "H1,H1-W,water"  # too few fields


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return DAY0 + timedelta(days=day, hours=hour, minutes=minute)


def rows() -> list[str]:
    """Hourly readings from day 0 00:00 to day 3 12:00.

    H1 (water + electricity, fridge always on) lives normally on day 0 until 21:00, then nothing but the
    fridge until day 3 08:00. H2 (water only) uses water every day, but its meter is silent from day 1 12:00
    until day 2 06:00.
    """
    out = []
    w1, e1, w2 = 100.0, 5000.0, 30.0
    for k in range(3 * 24 + 13):
        t = local(0, 0) + timedelta(hours=k)
        day, hour = k // 24, t.hour
        h1_alive = (day == 0 and 7 <= hour <= 21) or (day == 3 and hour >= 8)
        w1 += 0.005 if h1_alive else 0.0
        e1 += 0.05 + (0.5 if h1_alive and hour in (8, 12, 18) or (day == 3 and hour >= 8) else 0.0)
        w2 += 0.003 if 7 <= hour <= 21 else 0.0
        ts = t.strftime("%Y-%m-%d %H:%M:%S")
        if k == 10:  # the same instants written with an offset and as UTC
            out.append(f"H1,H1-W,water,{t.isoformat()},{w1:.3f}")
            out.append(f"H1,H1-E,electricity,{t.astimezone(ZoneInfo('UTC')).isoformat()},{e1:.3f}")
        else:
            out.append(f"H1,H1-W,water,{ts},{w1:.3f}")
            out.append(f"H1,H1-E,electricity,{ts},{e1:.3f}")
        if not (day == 1 and hour > 12 or day == 2 and hour < 6):
            out.append(f"H2,H2-W,water,{ts},{w2:.3f}")
    return out


def write(path: Path, lines: list[str], shuffle: bool = True) -> Path:
    lines = list(lines)
    if shuffle:
        random.Random(7).shuffle(lines)
    text = "\n".join([HEADER, *lines]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def cli(tmp_path: Path, readings: Path, *extra: str) -> tuple[int, list[dict]]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "alerts.jsonl"
    code = run(parser.parse_args(["--readings", str(readings), "--out", str(out), *extra]))
    alerts = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return code, alerts


def brief(alerts: list[dict]) -> list[tuple]:
    return [(a["household"], a["category"], a["detector"], a["opened_at"], a["closed_at"]) for a in alerts]


DEVICE_H2 = ("H2", "device", "device", "2025-03-02T18:15:00+08:00", "2025-03-03T06:00:00+08:00")
QUIET_H1 = ("H1", "inactivity", "no-change-48h", "2025-03-03T21:00:00+08:00", "2025-03-04T08:00:00+08:00")


@pytest.fixture
def readings(tmp_path: Path) -> Path:
    return write(tmp_path / "readings.csv", [*rows(), *BAD_ROWS, SHAPE_ROW])


@pytest.mark.parametrize("name", ["readings.csv", "readings.csv.gz"])
def test_replay_opens_and_closes_alerts_in_event_time(tmp_path: Path, name: str):
    path = write(tmp_path / name, [*rows(), *BAD_ROWS, SHAPE_ROW])
    code, alerts = cli(tmp_path, path, "--detectors", "no-change-48h,device")
    assert code == 0
    assert brief(alerts) == [DEVICE_H2, QUIET_H1]
    quiet = alerts[1]
    assert quiet["since"] == "2025-03-01T21:00:00+08:00"
    assert quiet["severity"] == "critical" and "no water or electricity use" in quiet["reason"]
    assert alerts[0]["gateway"] == "GW-H2"


def test_bad_rows_are_counted_by_reason_not_fatal(readings: Path):
    table = load_readings(readings, "Asia/Shanghai")
    expected = {reason: 1 for reason in BAD_ROWS.values()} | {"bad_shape": 1}
    assert dict(table.bad.counts) == expected
    assert len(table) == len(rows())
    assert all(table.bad.examples[r] for r in expected)  # a first example of each, for the report
    assert sorted(table.meters) == ["H1-E", "H1-W", "H2-W"]


def test_cli_reports_bad_rows_on_stderr(tmp_path: Path, readings: Path, capsys):
    code, _ = cli(tmp_path, readings, "--detectors", "device")
    err = capsys.readouterr().err
    assert code == 0
    for reason in [*BAD_ROWS.values(), "bad_shape"]:
        assert f"1 row(s) skipped: {reason}" in err
    assert "e.g. line" in err


def test_naive_offset_utc_and_epoch_timestamps_agree(tmp_path: Path):
    t = local(0, 10)
    variants = [t.strftime("%Y-%m-%d %H:%M:%S"), t.isoformat(), t.astimezone(ZoneInfo("UTC")).isoformat(),
                str(int(t.timestamp())), t.strftime("%Y-%m-%dT%H:%M:%S")]
    for i, ts in enumerate(variants):
        table = load_readings(write(tmp_path / f"v{i}.csv", [f"H1,H1-W,water,{ts},1.0"]), "Asia/Shanghai")
        assert table.ts.tolist() == [int(t.timestamp())], ts
    naive_elsewhere = load_readings(tmp_path / "v0.csv", "Europe/Madrid")
    assert naive_elsewhere.ts.tolist() == [int(t.replace(tzinfo=ZoneInfo("Europe/Madrid")).timestamp())]


def test_vectorised_and_general_parsers_agree(tmp_path: Path, monkeypatch):
    path = write(tmp_path / "r.csv", [*rows(), *BAD_ROWS])  # no malformed line: the fast path takes it
    taken = []
    real = replay_load.parse_chunk
    monkeypatch.setattr(replay_load, "parse_chunk", lambda *a: taken.append(real(*a)) or taken[-1])
    fast = load_readings(path, "Asia/Shanghai", chunk_bytes=2048)
    assert len(taken) > 3 and all(t is not None for t in taken)
    monkeypatch.setattr(replay_load, "parse_chunk", lambda *a: None)
    general = load_readings(path, "Asia/Shanghai", chunk_bytes=2048)
    assert fast.meters == general.meters
    assert dict(fast.bad.counts) == dict(general.bad.counts) == {r: 1 for r in BAD_ROWS.values()}
    for k in ("meter", "ts", "value"):
        assert np.array_equal(getattr(fast, k), getattr(general, k)), k


def test_rows_given_in_memory(readings: Path):
    mem = [ReplayRow(*line.split(",")) for line in rows()]
    a = replay(mem, ["no-change-48h", "device"], tz="Asia/Shanghai")
    b = replay(readings, ["no-change-48h", "device"], tz="Asia/Shanghai")
    assert [(x.household, x.category, x.opened_at, x.closed_at) for x in a] == \
        [(x.household, x.category, x.opened_at, x.closed_at) for x in b]


def test_duplicates_dropped_and_conflicts_counted():
    base = [ReplayRow("H1", "H1-W", "water", "2025-03-01 01:00:00", "1.0"),
            ReplayRow("H1", "H1-W", "water", "2025-03-01 01:00:00", "1.0"),
            ReplayRow("H1", "H1-W", "water", "2025-03-01 02:00:00", "1.5"),
            ReplayRow("H1", "H1-W", "water", "2025-03-01 02:00:00", "1.7")]
    table = load_readings(base, "Asia/Shanghai")
    assert table.duplicates == 1 and dict(table.bad.counts) == {"conflicting_duplicate": 1}
    assert table.value.tolist() == [1.0, 1.5]


def test_away_holds_welfare_alerts_until_activity(tmp_path: Path, readings: Path):
    away = tmp_path / "away.csv"
    away.write_text("household,start,end\nH1,2025-03-01 22:00:00,2025-03-05 00:00:00\n")
    code, alerts = cli(tmp_path, readings, "--detectors", "no-change-48h,device", "--away", str(away))
    assert code == 0 and brief(alerts) == [DEVICE_H2]  # held; activity on day 3 ends the absence


def test_away_ends_at_its_expected_return(tmp_path: Path, readings: Path):
    away = tmp_path / "away.csv"
    away.write_text("household,start,end\nH1,2025-03-01 22:00:00,2025-03-04 06:00:00\n")
    _, alerts = cli(tmp_path, readings, "--detectors", "no-change-48h", "--away", str(away))
    assert brief(alerts) == [("H1", "inactivity", "no-change-48h", "2025-03-04T06:00:00+08:00",
                              "2025-03-04T08:00:00+08:00")]


def test_activity_ends_an_open_ended_away_early(tmp_path: Path, readings: Path):
    away = tmp_path / "away.csv"
    away.write_text("household,start,end\nH1,2025-03-01 12:00:00,\nnobody,garbage,\n")
    code, alerts = cli(tmp_path, readings, "--detectors", "no-change-48h", "--away", str(away))
    assert code == 0 and brief(alerts) == [QUIET_H1]  # she was seen after 12:00, so the absence is over


@pytest.mark.parametrize(("names", "expected"), [("device", [DEVICE_H2]), ("no-change-48h", [QUIET_H1]),
                                                 ("no-change-48h,device", [DEVICE_H2, QUIET_H1])])
def test_detector_selection(tmp_path: Path, readings: Path, names: str, expected: list):
    code, alerts = cli(tmp_path, readings, "--detectors", names)
    assert code == 0 and brief(alerts) == expected
    assert {a["detector"] for a in alerts} <= set(names.split(","))


def test_default_detectors_and_bad_usage(tmp_path: Path, readings: Path, capsys):
    code, alerts = cli(tmp_path, readings)
    assert code == 0
    assert any(a["category"] == "device" and a["household"] == "H2" for a in alerts)
    assert cli(tmp_path, readings, "--detectors", "no-such-rule")[0] == 2
    assert cli(tmp_path, readings, "--tz", "Mars/Olympus")[0] == 2
    assert cli(tmp_path, tmp_path / "missing.csv")[0] == 2
    assert "no-such-rule" in capsys.readouterr().err


def test_real_recorded_data_excerpt():
    """DAIAD project (CC BY-SA 4.0): an empty home raises the 48-hour rule; the others stay quiet."""
    zone = ZoneInfo("Europe/Madrid")
    alerts = replay(FIXTURE, ["no-change-48h"], tz="Europe/Madrid")
    h032 = [(a.to_dict(zone)["opened_at"], a.to_dict(zone)["closed_at"]) for a in alerts if a.household == "H032"]
    # the litre drawn at 2016-03-03 02:30 (81.831 → 81.832 m³) is activity: it closes the first alert
    assert h032[:4] == [("2016-03-03T01:45:00+01:00", "2016-03-03T02:45:00+01:00"),
                        ("2016-03-05T02:45:00+01:00", "2016-03-06T02:45:00+01:00"),
                        ("2016-03-08T03:45:00+01:00", "2016-03-09T16:45:00+01:00"),
                        ("2016-03-11T17:45:00+01:00", "2016-03-13T04:45:00+01:00")]


def test_incident_injected_into_real_data_is_alerted():
    """From a chosen moment H033's register stands still (water stops): alerted 48 h after its last use."""
    zone = ZoneInfo("Europe/Madrid")
    table = load_readings(FIXTURE, zone)
    stop = int(datetime(2016, 3, 13, 12, 0, tzinfo=zone).timestamp())
    m = table.meters.index("W-H033")
    mine = table.meter == m
    frozen = mine & (table.ts >= stop)
    last_before = table.value[mine & (table.ts < stop)][-1]
    value = np.where(frozen, last_before, table.value)
    injected = ReadingTable.from_arrays(table.meters, table.households, table.kinds, table.meter, table.ts, value)
    alerts = [a for a in replay(injected, ["no-change-48h"], tz="Europe/Madrid")
              if a.household == "H033" and a.opened_at >= stop]
    assert alerts, "the frozen register was not alerted"
    first = alerts[0]
    assert first.since < stop and 47 * 3600 <= first.opened_at - first.since <= 49 * 3600
    assert first.closed_at is None


def test_one_open_alert_per_key_unless_per_detector(readings: Path):
    shared = replay(readings, ["no-change-24h", "no-change-48h"], tz="Asia/Shanghai")
    assert [(a.household, a.detector) for a in shared] == [("H1", "no-change-24h")]  # one inactivity case for H1
    own = replay(readings, ["no-change-24h", "no-change-48h"], tz="Asia/Shanghai", per_detector=True)
    assert sorted((a.detector, a.opened_at - a.since) for a in own) == [("no-change-24h", 24 * 3600),
                                                                         ("no-change-48h", 48 * 3600)]


def test_meter_whose_data_starts_later_is_not_a_device_alert(tmp_path: Path):
    late = [line for line in rows() if not line.startswith("H2,")]
    late += [f"H3,H3-W,water,{local(2, h).strftime('%Y-%m-%d %H:%M:%S')},{10 + 0.002 * h:.3f}" for h in range(24)]
    late += [f"H3,H3-W,water,{local(3, h).strftime('%Y-%m-%d %H:%M:%S')},{11 + 0.002 * h:.3f}" for h in range(13)]
    alerts = replay(write(tmp_path / "late.csv", late), ["device"], tz="Asia/Shanghai")
    assert alerts == []


def test_detector_names_can_be_listed(tmp_path: Path, readings: Path, capsys):
    assert cli(tmp_path, readings, "--detectors", "list")[0] == 0
    names = capsys.readouterr().out.split()
    assert {"device", "no-change-48h"} <= set(names) or {"device", "no-change"} <= set(names)


def test_reusing_findings_on_steps_without_readings_changes_no_alert():
    """Hourly real water data replayed in 15-minute steps: three steps in four bring no reading, and the
    data-driven detectors' last findings stand in for a new evaluation; the alerts are the same either way."""
    table = load_readings(FIXTURE, "Europe/Madrid")
    names = ["routine", "no-change-24h", "water_running", "unusual_usage", "kizuki", "device"]
    runs = [Replayer(table, build_detectors(names), tz="Europe/Madrid", step_s=900, per_detector=True,
                     reuse=reuse).run() for reuse in (True, False)]
    assert runs[0] == runs[1]
    assert {a.detector for a in runs[0] if a.category == "inactivity"} >= {"routine", "no-change-24h", "kizuki"}
