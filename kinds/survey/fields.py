"""The `survey` field table (see README.md): one point per survey point."""

from __future__ import annotations

from probefleet.kinds.base import FieldValue, Row
from probefleet.kinds.survey.payload import SurveyData


def rows(data: SurveyData) -> list[Row]:
    # run_id and fix_ok are tags: a run is what the coverage queries group by, and the
    # good fixes what they keep. One run_id per run (a few a day at most per probe).
    tags: dict[str, str | None] = {
        "run_id": data.run_id,
        "fix_ok": "true" if data.fix_ok else "false",
    }
    fields: dict[str, FieldValue | None] = {
        "point_n": data.point_n,
        "last": data.last,
        "fix_mode": data.fix_mode,
        "fix_reason": data.fix_reason,
        "lat_deg": data.lat_deg,
        "lon_deg": data.lon_deg,
        "horizontal_accuracy_m": data.horizontal_accuracy_m,
        "speed_mps": data.speed_mps,
    }
    # Only a point with a stop test has these: a "download_mbps" key, even empty, makes the
    # collector compare it with the plan's target (collector/_rows.py).
    if data.download_mbps is not None:
        fields["download_mbps"] = data.download_mbps
    if data.rtt_ms is not None:
        fields["rtt_ms"] = data.rtt_ms
    return [Row(tags, fields)]


__all__ = ["rows"]
