"""Alerts as a resource: each drift event, recorded with its step and judged by people.

lifecycle.py (pure transitions), index.py (the listing across users), store.py, routes.py.
"""
