"""Ingest: MQTT messages from gateways → validated readings → store + household state."""
