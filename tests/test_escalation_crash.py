"""kill -9 mid-escalation: after the restart the escalation continues, nothing is lost, nothing is sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from test_escalation import T0, care_registry, deliver_all, per_person

from shouwang.clock import ManualClock
from shouwang.service import Service
from shouwang.settings import Settings
from storage import open_store

HERE = Path(__file__).parent


RECEIVER_PATH = ""  # the receiver fixture (conftest) at its bare address: each person's channel is <url>/<person>


def test_kill_9_while_sending_then_restart(tmp_path, receiver):
    db = f"sqlite:///{tmp_path}/crash.db"
    receiver.hang_suffix = "/p-vol"  # the volunteer's message is on the wire when the process dies
    child = subprocess.Popen([sys.executable, str(HERE / "procs" / "escalation_worker.py"), db, receiver.url,
                              str(HERE)], stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    try:
        assert child.stdout.readline().strip() == "opened"
        assert receiver.hanging.wait(20), "the child never tried to deliver"
        receiver.wait_for(1)  # the son's message went through before the crash
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    receiver.hang_suffix = None
    receiver.release.set()
    assert per_person(receiver) == {"p-son": 1}

    clock = ManualClock(T0)
    svc = Service(Settings(notify_deadline_s=60), open_store(db), care_registry(receiver.url), clock, watchers=[])
    svc.outbox.start()  # the message left mid-send is queued again
    svc.outbox.stop()
    deliver_all(svc)
    assert per_person(receiver) == {"p-son": 1, "p-vol": 1}
    assert svc.pipeline.run([], T0) == []
    svc.escalator.tick(T0 + 10 * 60)  # and the policy goes on where it was
    deliver_all(svc)
    assert per_person(receiver) == Counter({"p-son": 1, "p-vol": 2, "p-prop": 1, "p-partner": 1})
    (alert,) = svc.store.alerts()
    kinds = [e.kind for e in svc.store.alert_events(alert.id)]
    assert kinds.count("escalation_step") == 2 and kinds.count("opened") == 1
