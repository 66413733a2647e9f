"""Malformed gateway payloads, each paired with the rejection reasons the service should record."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from simulators.publisher import DECIMALS

if TYPE_CHECKING:
    from simulators.publisher import Simulator, _Gateway

YEAR = 365 * 86400.0


def build_garbage(sim: Simulator, gw: _Gateway, at: float, kinds: tuple[str, ...]
                  ) -> list[tuple[str, bytes, tuple[str, ...], int]]:
    """(kind, payload, expected rejection reasons, valid readings inside) for each requested garbage kind."""
    t = sim._last_tick
    assert t is not None
    meters = sim._meters
    water = [mi for mi in gw.meters if sim._m_water[mi]]
    elec = [mi for mi in gw.meters if not sim._m_water[mi]]
    mw = water[0] if water else gw.meters[0]
    me = elec[0] if elec else gw.meters[0]
    w_id, e_id = meters[mw].id, meters[me].id
    w_kind, e_kind = str(meters[mw].kind), str(meters[me].kind)
    known = {m.id for m in meters}
    ghost = "GHOST-404-W"
    while ghost in known:
        ghost += "X"
    v_w = round(sim._value(mw), DECIMALS)

    def iso(ts: float) -> str:
        return sim._iso(ts, gw.tz)

    def dump(obj: object) -> bytes:
        return orjson.dumps(obj)

    out: list[tuple[str, bytes, tuple[str, ...], int]] = []
    for kind in kinds:
        if kind == "bad_json":
            payload = f'{{"meter": "{w_id}", "kind": "{w_kind}", "ts": {int(t)}, "value": 12.3'.encode()
            out.append((kind, payload, ("bad_json",), 0))
        elif kind == "string_value":
            out.append((kind, dump({"meter": w_id, "kind": w_kind, "ts": iso(t - 120), "value": f"{v_w}"}),
                        ("invalid_field",), 0))
        elif kind == "negative_value":
            out.append((kind, dump({"meter": e_id, "kind": e_kind, "ts": int(t - 120), "value": -3.5}),
                        ("negative_value",), 0))
        elif kind == "unknown_meter":
            out.append((kind, dump({"meter": ghost, "kind": "water", "ts": int(t - 120), "value": 1.0}),
                        ("unknown_meter",), 0))
        elif kind == "future_timestamp":
            out.append((kind, dump({"meter": w_id, "kind": w_kind, "ts": iso(at + YEAR), "value": v_w + 1.0}),
                        ("future_timestamp",), 0))
        elif kind == "register_backwards":
            # one second after the reading just stored, the register reads lower than it did then
            low = round(max(v_w - 1.0, v_w / 2), DECIMALS)
            out.append((kind, dump({"meter": w_id, "kind": w_kind, "ts": int(t) + 1, "value": low}),
                        ("register_backwards",), 0))
        elif kind == "mixed_batch":
            out.append((kind, *_mixed(sim, gw, t, mw, me, ghost)))
    return out


def _mixed(sim: Simulator, gw: _Gateway, t: float, mw: int, me: int, ghost: str
           ) -> tuple[bytes, tuple[str, ...], int]:
    """A batch with two valid mid-interval readings among bad ones."""
    meters = sim._meters
    mid = t - sim.interval / 2
    good = []
    for mi, fmt in ((mw, "local"), (me, "epoch")):
        w, e = sim._household_net(sim._m_house[mi], mid, t)
        value = round(sim._value(mi) - (w if sim._m_water[mi] else e), DECIMALS)
        ts: str | int = (datetime.fromtimestamp(mid, gw.tz).strftime("%Y-%m-%d %H:%M:%S") if fmt == "local"
                         else int(mid))
        good.append({"meter": meters[mi].id, "kind": str(meters[mi].kind), "ts": ts, "value": value})
    if mw == me:
        good = good[:1]
    w_id, e_id = meters[mw].id, meters[me].id
    e_kind = str(meters[me].kind)
    other_kind = "electricity" if sim._m_water[mw] else "water"
    bad = [
        ({"meter": e_id, "kind": e_kind, "ts": int(t - 180), "value": "5821.04"}, "invalid_field"),
        ({"meter": w_id, "kind": str(meters[mw].kind), "ts": int(t - 180), "value": -0.5}, "negative_value"),
        ({"meter": ghost, "kind": "electricity", "ts": int(t - 180), "value": 3.0}, "unknown_meter"),
        ({"meter": w_id, "kind": other_kind, "ts": int(t - 240), "value": round(sim._value(mw), DECIMALS)},
         "kind_mismatch"),
        ({"meter": e_id, "kind": e_kind, "value": round(sim._value(me), DECIMALS)}, "invalid_field"),  # no ts
    ]
    foreign = next((g for g in sim._gateways.values() if g.id != gw.id and g.community == gw.community), None)
    if foreign is not None:
        fm = foreign.meters[0]
        bad.append(({"meter": meters[fm].id, "kind": str(meters[fm].kind), "ts": int(t - 240),
                     "value": round(sim._value(fm), DECIMALS)}, "wrong_gateway"))
    readings = [good[0], bad[0][0], *good[1:], *(b for b, _ in bad[1:])]
    return (orjson.dumps({"gateway": gw.id, "readings": readings}), tuple(r for _, r in bad), len(good))
