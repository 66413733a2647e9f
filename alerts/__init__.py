"""Alerts: findings → route → inhibit → silence → dedupe → notify with retry → record."""
