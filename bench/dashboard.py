"""Dashboard benchmark: a street office of 10,000 households (tests/pages_support.build_city) on SQLite.

Times the rows' computation (`api.pages.common.household_rows`: statuses of every household in scope) and whole
`GET /dashboard` requests through the app as a manager, best of --repeat. Not part of the test suite.

    .venv/bin/python bench/dashboard.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pages_support import CITY_SIZE, NOW, build_city, session_client

from api.auth import Scope
from api.pages.common import household_rows


def best(fn, repeat: int) -> float:
    """The fastest of ``repeat`` runs, in seconds."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = build_city(f"sqlite:///{tmp}/city.db")
        state = world.app.state._state["household_state"]
        rows = best(lambda: household_rows(world.store, state, Scope(), NOW), args.repeat)
        client, _csrf = session_client(world.app, "city-manager")
        assert client.get("/dashboard").status_code == 200
        page = best(lambda: client.get("/dashboard"), args.repeat)
        world.store.close()
    print(f"{CITY_SIZE:,} households: rows {rows * 1000:.0f} ms, GET /dashboard {page * 1000:.0f} ms "
          f"(best of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
