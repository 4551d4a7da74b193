"""Small builders for Grafana's dashboard JSON (schema 39+): the data source reference,
InfluxQL targets taken from the query catalogue, panels, template variables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from grafana.panel_queries import PANEL_QUERIES

JSON = dict[str, Any]

# The one data source every panel and alert rule names (provisioning/datasources).
DS_UID: Final = "probefleet-influxdb"
DS_NAME: Final = "probefleet InfluxDB (InfluxQL)"
DATASOURCE: Final[JSON] = {"type": "influxdb", "uid": DS_UID}
SCHEMA_VERSION: Final = 39
# Tag filters every catalogue query may carry; a dashboard defines those its panels use.
TAG_VARIABLES: Final = ("district", "commune", "probe", "operator", "access", "service", "target")


def target(
    query: str, group_by: Sequence[str] = (), *, ref: str = "A", table: bool = False
) -> JSON:
    """An InfluxQL raw-query target whose text is the catalogue's ``query`` grouped by
    ``group_by``; ``probefleetQuery`` names the catalogue entry (tests map panels back)."""
    q = PANEL_QUERIES[query]
    return {
        "refId": ref,
        "datasource": DATASOURCE,
        "rawQuery": True,
        "query": q.grafana(group_by),
        "resultFormat": "table" if table else "time_series",
        # Series names: the column, then the grouped tags' values ("median_mbps Tân Phú fixed").
        "alias": " ".join(["$col", *(f"$tag_{t}" for t in (*q.fixed_group_by, *group_by))]),
        "probefleetQuery": query,
        "probefleetGroupBy": list(group_by),
    }


def panel(
    kind: str,
    title: str,
    targets: Sequence[JSON],
    *,
    description: str = "",
    unit: str = "",
    thresholds: Sequence[tuple[str, float | None]] = (),
    min_value: float | None = None,
    max_value: float | None = None,
    options: JSON | None = None,
    overrides: Sequence[JSON] = (),
    transformations: Sequence[JSON] = (),
    width: int = 12,
    height: int = 8,
) -> JSON:
    defaults: JSON = {}
    if unit:
        defaults["unit"] = unit
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    if thresholds:
        defaults["color"] = {"mode": "thresholds"}
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in thresholds],
        }
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": list(targets),
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "options": options or {},
        "transformations": list(transformations),
        "gridPos": {"w": width, "h": height},
    }


def row(title: str) -> JSON:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"w": 24, "h": 1},
    }


def threshold_line(field: str) -> JSON:
    """An override drawing ``field`` (a target column) as a dashed red line: the plan's
    target next to the measured values."""
    return {
        "matcher": {"id": "byRegexp", "options": f".*{field}.*"},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
            {"id": "custom.lineWidth", "value": 2},
        ],
    }


def tag_variable(name: str, measurement: str, depends: Sequence[str] = ()) -> JSON:
    """A multi-value query variable over a tag's values; "All" is ``.*`` so that it also
    matches points without the tag (district is optional), as the catalogue expects."""
    where = " AND ".join(f'"{d}" =~ /^${d}$/' for d in depends)
    query = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{name}"'
    if where:
        query += f" WHERE {where}"
    return {
        "name": name,
        "label": name.replace("_", " ").capitalize(),
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def access_variable() -> JSON:
    return {
        "name": "access",
        "label": "Access",
        "type": "custom",
        "query": "fixed,mobile",
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }


def layout(panels: Sequence[JSON]) -> list[JSON]:
    """Ids and positions: left to right, wrapping at 24 columns; rows start a new line."""
    out: list[JSON] = []
    x = y = 0
    line_height = 0
    for number, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > 24:
            x, y, line_height = 0, y + line_height, 0
        placed = {**p, "id": number, "gridPos": {"x": x, "y": y, "w": w, "h": h}}
        out.append(placed)
        if p["type"] == "row":
            y += h
            continue
        x += w
        line_height = max(line_height, h)
    return out


def peak_hours_region() -> JSON:
    """A shaded time region over the peak hours on every time-series panel: the same hours,
    on the same clock, as the report's peak figures (collector/queries.py)."""
    from probefleet.collector import queries

    start, end = queries.PEAK_START_HOUR, queries.PEAK_END_HOUR
    return {
        "name": f"Peak hours {start:02d}:00-{end:02d}:00",
        "enable": True,
        "iconColor": "rgba(255, 152, 48, 0.15)",
        "datasource": {"type": "grafana", "uid": "grafana"},
        "target": {
            "refId": "Peak",
            "queryType": "timeRegions",
            "timeRegion": {
                "from": f"{start:02d}:00",
                "to": f"{end % 24:02d}:00",
                "timezone": queries.LOCAL_TZ,
            },
        },
    }


# The collector's alert transitions (measurement ``alert``, one point per fired / resolved),
# for the place the dashboard's variables select. Tests run it like every panel query.
ALERT_ANNOTATION_QUERY: Final = (
    'SELECT "text", "state", "rule", "severity" FROM "alert" WHERE $timeFilter '
    'AND "district" =~ /^$district$/ AND "commune" =~ /^$commune$/ AND "probe" =~ /^$probe$/'
)


def alert_annotations() -> JSON:
    """Alerts as annotations: the text sent to on-call, tagged with state, rule, severity."""
    return {
        "name": "Alerts (collector)",
        "enable": True,
        "iconColor": "red",
        "datasource": DATASOURCE,
        "query": ALERT_ANNOTATION_QUERY,
        "textColumn": "text",
        "tagsColumn": "state,rule,severity",
    }


def dashboard(
    uid: str,
    title: str,
    panels: Sequence[JSON],
    *,
    description: str,
    variables: Sequence[JSON],
    time_from: str = "now-7d",
    links: Sequence[JSON] = (),
    annotations: Sequence[JSON] = (),
) -> JSON:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["probefleet"],
        "timezone": "Asia/Ho_Chi_Minh",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "5m",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": list(variables)},
        "annotations": {"list": list(annotations)},
        "links": list(links),
        "panels": layout(panels),
    }
