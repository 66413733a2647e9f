"""Run in a child process by tests/test_escalation_crash.py: open an alert and deliver step 1, until killed."""

from __future__ import annotations

import sys
import time

sys.path.insert(0, sys.argv[3])  # the tests folder, for test_escalation's registry

from test_escalation import T0, care_registry, inactivity

from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store


def main() -> None:
    db, url = sys.argv[1], sys.argv[2]
    svc = Service(Settings(notify_deadline_s=60), open_store(db), care_registry(url), ManualClock(T0), watchers=[])
    svc.pipeline.run([inactivity()], T0)
    print("opened", flush=True)
    svc.outbox.start()
    time.sleep(60)  # the test kills us with SIGKILL while a delivery hangs


if __name__ == "__main__":
    main()
