"""Simulated households, meters and gateways that publish readings over MQTT, scripted by scenarios."""

from simulators.community import build_community
from simulators.publisher import GarbageRecord, Simulator, StepStats
from simulators.routine import Profile, RoutineModel, consumption, make_profile, make_profiles
from simulators.scenario import (
    DEFAULT_SCENARIO,
    DEMO_SCENARIO,
    IncidentWindow,
    Scenario,
    ScenarioError,
    check_scenario,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "DEFAULT_SCENARIO", "DEMO_SCENARIO", "GarbageRecord", "IncidentWindow", "Profile", "RoutineModel",
    "Scenario", "ScenarioError", "Simulator", "StepStats", "build_community", "check_scenario", "consumption",
    "load_scenario", "make_profile", "make_profiles", "parse_scenario",
]
