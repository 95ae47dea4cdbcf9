"""The Grafana dashboard's queries, for the tests that check them (promtool offline, a real Prometheus live)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards" / "emodrift.json"
# Grafana variables, replaced by something PromQL accepts before a query is checked or evaluated
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$instance": ".*"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL as written, with Grafana's variables)."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in panels(dashboard) for target in panel.get("targets", [])]


def as_promql(expr: str, variables: dict[str, str] = GRAFANA_VARIABLES) -> str:
    for variable, value in variables.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def no_data_texts() -> dict[str, str]:
    """Panel title -> what the panel shows when its query has no data (Grafana's ``noValue``): why."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {panel["title"]: text for panel in panels(dashboard)
            if (text := panel.get("fieldConfig", {}).get("defaults", {}).get("noValue"))}
