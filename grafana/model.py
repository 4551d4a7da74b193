"""Small builders for Grafana's dashboard JSON (schema 39+): the data source reference,
InfluxQL targets taken from the query catalogue, panels, template variables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from grafana.i18n import COLUMNS, Words
from grafana.panel_queries import PANEL_QUERIES

JSON = dict[str, Any]

# The one data source every panel and alert rule names (provisioning/datasources).
DS_UID: Final = "probefleet-influxdb"
DS_NAME: Final = "probefleet InfluxDB (InfluxQL)"
DATASOURCE: Final[JSON] = {"type": "influxdb", "uid": DS_UID}
SCHEMA_VERSION: Final = 39
# Tag filters every catalogue query may carry; a dashboard defines those its panels use.
TAG_VARIABLES: Final = ("district", "commune", "probe", "operator", "access", "service", "target")
# Grafana's $__interval is range / maxDataPoints rounded to a "nice" step, down by up to
# 1.7x (12h for 17.5 h: tests/grafana/test_row_counts.py has its table). 500 keeps a series
# at ~720 points at a day, a month or a year, under the ~1,000 of issue 19; without it
# Grafana takes the panel's width in pixels (1,800 on a wide screen: 1,460 points a year).
MAX_DATA_POINTS: Final = 500


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
        "maxDataPoints": MAX_DATA_POINTS,
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


def tag_variable(
    w: Words, name: str, measurement: str, depends: Sequence[str] = (), *, key: str = ""
) -> JSON:
    """A multi-value query variable over a tag's values; "All" is ``.*`` so that it also
    matches points without the tag (district is optional), as the catalogue expects.
    ``key``: the tag, when the variable's name differs (``technology`` for
    ``radio_technology``)."""
    key = key or name
    where = " AND ".join(f'"{d}" =~ /^${d}$/' for d in depends)
    query = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{key}"'
    if where:
        query += f" WHERE {where}"
    return {
        "name": name,
        "label": w.column(key),
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": [w("Tất cả", "All")], "value": ["$__all"]},
        "sort": 1,
    }


def custom_variable(w: Words, name: str, options: Sequence[tuple[str, str]]) -> JSON:
    """A multi-value variable over fixed tag values, shown by their label in the board's
    language (Grafana's ``text : value`` form); "All" is ``.*`` as for the tag variables."""
    return {
        "name": name,
        "label": w.column(name) if name in COLUMNS else name,
        "type": "custom",
        "query": ",".join(f"{text} : {value}" for text, value in options),
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": [w("Tất cả", "All")], "value": ["$__all"]},
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


def access_variable(w: Words) -> JSON:
    return custom_variable(
        w, "access", [(w("Cố định", "Fixed"), "fixed"), (w("Di động", "Mobile"), "mobile")]
    )


def peak_hours_region(w: Words) -> JSON:
    """A shaded time region over the peak hours on every time-series panel: the same hours,
    on the same clock, as the report's peak figures (collector/queries.py)."""
    from probefleet.collector import queries

    start, end = queries.PEAK_START_HOUR, queries.PEAK_END_HOUR
    return {
        "name": w("Giờ cao điểm", "Peak hours") + f" {start:02d}:00-{end:02d}:00",
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


def alert_annotations(w: Words) -> JSON:
    """Alerts as annotations: the text sent to on-call, tagged with state, rule, severity."""
    return {
        "name": w("Cảnh báo (bộ thu thập)", "Alerts (collector)"),
        "enable": True,
        "iconColor": "red",
        "datasource": DATASOURCE,
        "query": ALERT_ANNOTATION_QUERY,
        "textColumn": "text",
        "tagsColumn": "state,rule,severity",
    }


def dashboard(
    w: Words,
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
        "uid": uid + w.uid_suffix,
        "title": title,
        "description": description,
        # The language tag keeps the boards' link menu within one language.
        "tags": ["probefleet", w.lang],
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
        "panels": layout([localize(p, w) for p in panels]),
    }


def _label(w: Words, column: str, tags: Sequence[str]) -> str:
    """A series' name in the board's language: the column's label, then the grouped tags'
    values (what the target's alias says with the column's own name)."""
    return " ".join([w.column(column), *(f"${{__field.labels.{t}}}" for t in tags)])


def localize(p: JSON, w: Words) -> JSON:
    """Column labels in the board's language (field overrides placed first, so a panel's
    own displayName wins) and the axis label of its unit. Geomap and xychart panels find
    their fields by name after overrides: they get axis labels only."""
    if p["type"] == "row":
        return p
    defaults = p["fieldConfig"]["defaults"]
    axis = w.axis(defaults.get("unit", ""))
    if axis and p["type"] == "timeseries":
        defaults.setdefault("custom", {})["axisLabel"] = axis
    if p["type"] in ("geomap", "xychart"):
        return p
    labels: list[JSON] = []
    columns: list[tuple[str, list[str]]] = []
    joined = any(t["id"] == "joinByField" for t in p["transformations"])
    names_of: list[list[str]] = []
    for t in p["targets"]:
        q = PANEL_QUERIES[t["probefleetQuery"]]
        tags = list(dict.fromkeys([*q.fixed_group_by, *t["probefleetGroupBy"]]))
        names_of.append(list(dict.fromkeys([*tags, *q.columns])))
    for i, t in enumerate(p["targets"]):
        q = PANEL_QUERIES[t["probefleetQuery"]]
        tags = list(dict.fromkeys([*q.fixed_group_by, *t["probefleetGroupBy"]]))
        columns += [(c, tags) for c in q.columns]
        if t["resultFormat"] == "table":
            # Every table frame has InfluxDB's time column, "Time <n>" after a join.
            labels.append(_override_by_name(f"Time {i + 1}" if joined else "Time", w.time))
            for name in names_of[i]:
                shared = sum(name in n for n in names_of) > 1
                # After a join, a name several queries return is "<name> <query number>"
                # (Grafana's suffix); the join field itself stays one column.
                field = name
                if joined and shared and name != _join_field(p):
                    field = f"{name} {i + 1}"
                labels.append(_override_by_name(field, w.column(name)))
        else:
            for c in q.columns:
                label = _label(w, c, tags)
                labels.append(
                    {
                        "matcher": {"id": "byRegexp", "options": f"^{re.escape(c)}( .*)?$"},
                        "properties": [{"id": "displayName", "value": label}],
                    }
                )
    p["fieldConfig"]["overrides"] = [*labels, *p["fieldConfig"]["overrides"]]
    reduce = p["options"].get("reduceOptions", {})
    if reduce.get("fields"):
        # A stat's field pattern meets the display names (after the labels above).
        pattern = re.compile(reduce["fields"].strip("/"))
        names = [n for c, _t in columns if pattern.search(c) for n in (c, w.column(c))]
        reduce["fields"] = "/" + "|".join(_js_literal(n) for n in dict.fromkeys(names)) + "/"
    return p


def _js_literal(text: str) -> str:
    """``text`` matched literally in a JavaScript regex written as ``/…/``."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", text)


def _join_field(p: JSON) -> str:
    for t in p["transformations"]:
        if t["id"] == "joinByField":
            field: str = t["options"]["byField"]
            return field
    return ""


def _override_by_name(name: str, label: str) -> JSON:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": "displayName", "value": label}],
    }
