"""Detectors: pure functions of household state and event time that return findings."""

from detectors.base import Detector
from detectors.device import DeviceDetector
from detectors.no_change import NoChangeDetector

__all__ = ["Detector", "DeviceDetector", "NoChangeDetector"]
