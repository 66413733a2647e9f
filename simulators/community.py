"""A made-up but plausible community: households, meters, gateways, names and addresses."""

from __future__ import annotations

import math

import numpy as np

from shouwang.domain import Community, Gateway, Household, Meter, MeterKind, Registry

SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
            "何", "郭", "马", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "萧", "程", "曹")
GIVEN_F = ("秀英", "桂兰", "玉兰", "淑珍", "凤英", "秀兰", "桂芳", "淑英", "玉珍", "素芬", "翠花", "金凤",
           "秀珍", "桂英", "玉梅", "月娥", "美华", "丽华", "凤兰", "桂珍")
GIVEN_M = ("建国", "国强", "德福", "志明", "永福", "振华", "建华", "文华", "福生", "长林", "宝山", "国庆",
           "春生", "家明", "树林", "德顺", "海涛", "金山", "保国", "永年")


def household_id(i: int) -> str:
    """Id of the i-th household (1-based): H001, H002, ..."""
    return f"H{i:03d}"


def gateway_id(i: int) -> str:
    """Id of the i-th gateway (1-based): GW-01, GW-02, ..."""
    return f"GW-{i:02d}"


def build_community(n_households: int, community_id: str = "demo", households_per_gateway: int = 10,
                    seed: int = 0, name: str = "守望示范小区", timezone: str = "Asia/Shanghai",
                    n_grids: int = 5) -> Registry:
    """A one-community registry: H001.. with meters <H>-W and <H>-E, GW-01.. relaying 10 households each."""
    if n_households < 1:
        raise ValueError("n_households must be at least 1")
    if households_per_gateway < 1:
        raise ValueError("households_per_gateway must be at least 1")
    rng = np.random.default_rng([int(seed), 11])
    units, floors, rooms = 3, 6, 2  # walk-up buildings: 3 units, 6 floors, 2 flats per landing
    per_building = units * floors * rooms
    buildings = max(6, math.ceil(1.5 * n_households / per_building))
    flats = rng.choice(buildings * per_building, size=n_households, replace=False)
    grids = max(1, min(n_grids, buildings))

    n_gateways = math.ceil(n_households / households_per_gateway)
    gateways = tuple(Gateway(gateway_id(g + 1), community_id) for g in range(n_gateways))
    households, meters = [], []
    for i in range(n_households):
        hid = household_id(i + 1)
        flat = int(flats[i])
        building, rest = divmod(flat, per_building)
        unit, rest = divmod(rest, floors * rooms)
        floor, room = divmod(rest, rooms)
        address = f"{building + 1}号楼{unit + 1}单元{floor + 1}{room + 1:02d}室"
        given = GIVEN_F if rng.random() < 0.65 else GIVEN_M  # more widows than widowers live alone
        person = SURNAMES[int(rng.integers(len(SURNAMES)))] + given[int(rng.integers(len(given)))]
        households.append(Household(hid, community_id, person, address, f"grid-{building % grids + 1}"))
        gw = gateways[i // households_per_gateway].id
        meters.append(Meter(f"{hid}-W", hid, MeterKind.WATER, gw))
        meters.append(Meter(f"{hid}-E", hid, MeterKind.ELECTRICITY, gw))
    return Registry(communities=(Community(community_id, name, timezone),), gateways=gateways,
                    households=tuple(households), meters=tuple(meters))
