"""How PostgreSQL takes a batch of readings: the CPU of the server and of the client per way of sending it.

    .venv/bin/python bench/pg_write.py                      # PostgreSQL at 127.0.0.1:5432, user postgres
    .venv/bin/python bench/pg_write.py --dsn "host=... user=..." --readings 400000 --rounds 2
    .venv/bin/python bench/pg_write.py --keys               # what the key and the ts index cost the server

Each way writes the same batches (5,000 readings: 50 gateways' snapshots of 100 meters) into a fresh ``readings``
table shaped as storage/schema.py's, already holding 2,000,000 readings, one transaction a batch, and prints the
wall time, the CPU of every ``postgres`` process (from /proc) and this process's CPU:

- ``unnest``: three array parameters and ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`` (the store's way
  until this script was written);
- ``copy``: binary COPY into a temporary table emptied at commit, then the same INSERT from it (the store's way
  after a duplicate, storage/sql.py);
- ``copy, collate C``: the same with the meter column in the "C" collation (the schema's since migration 0008);
- ``straight, collate C``: binary COPY into ``readings`` itself inside a savepoint (the store's way while no
  duplicate comes).

With ``--keys``: the straight COPY into tables with only the heap, the ts index, the key, both (the schema), or the
key in (ts, meter) order instead: what each costs PostgreSQL.

Not part of the test suite; a scratch database ``shouwang_pg_write_bench`` is made and dropped.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

DB = "shouwang_pg_write_bench"
BATCH = 5000
INSERT = ("INSERT INTO readings (meter, ts, value) SELECT * FROM {src} ON CONFLICT (meter, ts) DO NOTHING")
UNNEST = "unnest(%s::varchar[], %s::bigint[], %s::double precision[])"


def postgres_cpu_s() -> float:
    """CPU seconds used so far by every process named postgres on this machine."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1:text.rindex(")")].startswith("postgres"):
            fields = text[text.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def batches(n: int, t0: int) -> Iterator[tuple[list[str], list[int], list[float]]]:
    """``n`` readings of 40,000 meters, a snapshot of every meter every 15 minutes from ``t0``."""
    meters = [f"G{g:04d}-M{m:03d}" for g in range(400) for m in range(100)]
    for b in range(n // BATCH):
        first = b * BATCH % len(meters)
        ms = meters[first:first + BATCH]
        yield ms, [t0 + b * BATCH // len(meters) * 900] * len(ms), [float(i) for i in range(len(ms))]


def by_unnest(cur: psycopg.Cursor, ms: list[str], ts: list[int], vs: list[float]) -> None:
    cur.execute(INSERT.format(src=UNNEST), (ms, ts, vs))


def by_copy(cur: psycopg.Cursor, ms: list[str], ts: list[int], vs: list[float]) -> None:
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS incoming (meter varchar(64), ts bigint, value double precision) "
                "ON COMMIT DELETE ROWS")
    with cur.copy("COPY incoming (meter, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["varchar", "int8", "float8"])
        for row in zip(ms, ts, vs, strict=True):
            copy.write_row(row)
    cur.execute(INSERT.format(src="incoming"))


def by_straight_copy(cur: psycopg.Cursor, ms: list[str], ts: list[int], vs: list[float]) -> None:
    cur.execute("SAVEPOINT direct_copy")
    with cur.copy("COPY readings (meter, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["varchar", "int8", "float8"])
        for row in zip(ms, ts, vs, strict=True):
            copy.write_row(row)
    cur.execute("RELEASE SAVEPOINT direct_copy")


SCHEMA = ("PRIMARY KEY (meter, ts)", "brin")  # storage/schema.py's key and index
KEYS = {"heap only": ("", ""), "heap + brin (ts)": ("", "brin"), "heap + key (meter, ts)": ("PRIMARY KEY (meter, ts)", ""),
        "key (meter, ts) + brin (schema)": SCHEMA, "heap + key (ts, meter)": ("PRIMARY KEY (ts, meter)", "")}


def run(dsn: str, name: str, write: Callable, collate: str, n: int, key: tuple[str, str] = SCHEMA) -> None:
    with psycopg.connect(f"{dsn} dbname={DB}") as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS readings")
        cur.execute(f"CREATE TABLE readings (meter varchar(64) {collate}, ts bigint, value double precision NOT NULL"
                    f"{', ' + key[0] if key[0] else ''})")
        if key[1]:
            cur.execute("CREATE INDEX readings_by_ts ON readings USING brin (ts)")
        for ms, ts, vs in batches(2_000_000, 1_000_000_000):  # the readings already there (none repeats)
            by_straight_copy(cur, ms, ts, vs)
        conn.commit()
        cur.execute("CHECKPOINT")
        conn.commit()
        server, wall, client = postgres_cpu_s(), time.perf_counter(), time.process_time()
        for ms, ts, vs in batches(n, 2_000_000_000):
            write(cur, ms, ts, vs)
            conn.commit()
        wall, client = time.perf_counter() - wall, time.process_time() - client
        server = postgres_cpu_s() - server
    print(f"{name:32s} {n / wall:9,.0f} readings/s   postgres {server * 1e6 / n:4.1f} µs a reading   "
          f"client {client * 1e6 / n:4.1f} µs a reading")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default="host=127.0.0.1 user=postgres")
    ap.add_argument("--readings", type=int, default=400_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keys", action="store_true",
                    help="instead: the straight COPY into tables with and without the key and the ts index")
    args = ap.parse_args()
    with psycopg.connect(f"{args.dsn} dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    try:
        for _ in range(args.rounds):
            if args.keys:
                for name, key in KEYS.items():
                    run(args.dsn, name, by_straight_copy, 'COLLATE "C"', args.readings, key)
                continue
            for name, write, collate in (("unnest", by_unnest, ""), ("copy", by_copy, ""),
                                         ("copy, collate C", by_copy, 'COLLATE "C"'),
                                         ("straight, collate C", by_straight_copy, 'COLLATE "C"')):
                run(args.dsn, name, write, collate, args.readings)
    finally:
        with psycopg.connect(f"{args.dsn} dbname=postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB}")


if __name__ == "__main__":
    main()
