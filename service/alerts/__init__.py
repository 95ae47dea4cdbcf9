"""Alerts as a resource: each drift event, recorded with its step, judged by people (lifecycle.py, store.py, routes.py)."""
