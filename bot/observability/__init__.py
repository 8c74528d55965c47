"""Alerts, alert channels and analytics rollups."""
