"""Fuzzing the HTTP API from its own OpenAPI schema: no input, however odd, gets a server error."""

from __future__ import annotations

import os

import pytest
import schemathesis
from accounts_support import make_user, token_for
from conftest import small_registry
from hypothesis import HealthCheck, given, settings

from api import create_app
from shouwang.clock import ManualClock
from shouwang.domain import AlertCategory, Finding, Reading, Severity
from shouwang.state import HouseholdState
from storage import open_store

T0 = 1_795_300_200
EXAMPLES = int(os.environ.get("SHOUWANG_FUZZ_EXAMPLES", "25"))  # raise it for a longer hunt


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    """The real app over a SQLite store with a community, readings, alerts and an administrator's token."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    registry = small_registry()
    store.upsert_registry(registry)
    store.write_readings([Reading(f"H{i}-W", T0 + k * 900, 1 + 0.01 * k) for i in range(1, 5) for k in range(4)])
    for h in ("H1", "H2"):
        store.open_alert(Finding(AlertCategory.INACTIVITY, "test", Severity.CRITICAL, T0, "quiet", household=h), T0)
    make_user(store, "fuzzer")
    app = create_app(store, HouseholdState(registry, started_at=T0), ManualClock(T0 + 3600))
    app.state.fuzz_token = token_for(store, "fuzzer")
    yield app
    store.close()


def test_no_input_gets_a_server_error(fuzz_app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    headers = {"Authorization": f"Bearer {fuzz_app.state.fuzz_token}"}
    failures: list[str] = []
    calls = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def hunt(case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r}: "
                                f"{response.status_code} {response.text[:200]}")
            elif response.status_code in (400, 401, 403, 404, 409, 422, 429) and not response.json().get("detail"):
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} without a reason")

        hunt()
    assert not failures, "\n".join(failures[:20])
    assert calls >= 5 * len(operations)  # the hunt really ran
