"""Superset configuration and dashboards as code (native export format)."""
