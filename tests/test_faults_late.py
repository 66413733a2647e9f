"""Fault suite, late data: NB-IoT meters upload a day of 15-minute readings at once, hours after the fact,
through the real broker and ingest. Readings are placed in event time: the hours between uploads raise no
alert for households whose uploads show them living normally (learned routine included), and a household
that stopped is alerted from when it stopped, not from when the upload came.

NB-IoT meters reporting once a day need `SHOUWANG_METER_SILENCE_H` above their upload period (here 30 h);
with the default 6 h every such meter would be a `device` alert between uploads."""

from __future__ import annotations

import time
import uuid

import orjson
from conftest import small_registry
from faults_support import wait_until
from timelines import DAY0, FRIDGE_KW, H, household_readings, normal_kw, normal_water, switch

from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store

DAYS = 20
UPLOAD_H = 18  # 02:00 in Shanghai: each upload carries the readings since the previous one
H3_STOPS = DAY0 + 16 * 24 * H + 2 * H  # day 16, 10:00 local: only the fridge from then on


def test_daily_uploads_are_judged_in_event_time(tmp_path, own_mosquitto):
    registry = small_registry(4, per_gateway=2)
    settings = Settings(mqtt_port=own_mosquitto.port, mqtt_username=own_mosquitto.accounts["service"][0],
                        mqtt_password=own_mosquitto.accounts["service"][1], mqtt_client_id=f"late-{uuid.uuid4().hex[:6]}",
                        mqtt_clean_session=True, tick_s=3600, meter_silence_h=30)
    clock = ManualClock(DAY0)
    svc = Service(settings, open_store(f"sqlite:///{tmp_path}/late.db"), registry, clock, watchers=[])
    end = DAY0 + DAYS * 24 * H
    readings = []
    for hh in ("H1", "H2", "H3", "H4"):
        if hh == "H3":
            readings += household_readings(hh, DAY0, end, switch(H3_STOPS, normal_water, lambda _t: 0.0),
                                           switch(H3_STOPS, normal_kw, lambda _t: FRIDGE_KW))
        else:
            readings += household_readings(hh, DAY0, end)
    gateway_of = {m.id: m.gateway for m in registry.meters}
    gw = own_mosquitto.client("gateway", f"nbiot-{uuid.uuid4().hex[:6]}", clean_session=True)
    gw.connect("127.0.0.1", own_mosquitto.port)
    gw.loop_start()
    svc.start()
    try:
        wait_until(lambda: svc.ingest.connected, 10, "the service to connect")
        time.sleep(0.3)  # its SUBSCRIBE is on the wire
        sent = 0
        previous = DAY0 - 1
        for now in range(DAY0 + H, end + 1, H):
            clock.set(now)
            if (now - DAY0) % (24 * H) == UPLOAD_H * H:
                for g in ("G1", "G2"):
                    batch = [{"meter": r.meter, "kind": "water" if r.meter.endswith("-W") else "electricity",
                              "ts": r.ts, "value": r.value}
                             for r in readings if previous < r.ts <= now and gateway_of[r.meter] == g]
                    gw.publish(f"shouwang/v1/c1/{g}/readings", orjson.dumps({"gateway": g, "readings": batch}),
                               qos=1).wait_for_publish(10)
                    sent += len(batch)
                previous = now
                wait_until(lambda n=sent: svc.stats.get("readings_accepted") >= n, 20, "the upload to be ingested")
                assert svc.writer.wait_idle(10)
            svc.tick(now)
        assert svc.store.count_readings() == sent == sum(r.ts <= previous for r in readings)
        # the service also sweeps by itself after each stored upload (at the same clock time): read the store
        seen = [(a.household, str(a.category), a.since, a.opened_at) for a in svc.store.alerts(limit=1000)]
        assert [(h, c) for h, c, _s, _at in seen] == [("H3", "inactivity")]  # nothing for H1, H2, H4; no device
        _h, _c, since, opened = seen[0]
        assert abs(since - H3_STOPS) <= H  # placed in event time: silent from when it stopped
        revealed = DAY0 + ((H3_STOPS - DAY0 - UPLOAD_H * H) // (24 * H) + 1) * 24 * H + UPLOAD_H * H
        assert opened >= revealed  # no alert before an upload showed the silence
        assert opened <= revealed + 24 * H  # and not forgotten once it did
    finally:
        svc.stop()
        gw.loop_stop()
        gw.disconnect()
