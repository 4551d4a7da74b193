"""The `survey` kind on the wire: one point of a survey run (a drive or walk with GPS)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from probefleet.core.wire import Envelope, Mbps, Ms, Strict, UtcTime

RunId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}\Z")]
PointN = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
AccuracyM = Annotated[float, msgspec.Meta(ge=0.0, le=100_000.0)]
SpeedMps = Annotated[float, msgspec.Meta(ge=0.0, le=350.0)]
FixMode = Literal["none", "2d", "3d"]
Reason = Annotated[str, msgspec.Meta(max_length=300)]


class SurveyData(Strict, frozen=True, kw_only=True):
    """Where the probe was (gpsd's newest TPV) at this point of the run; the radio context
    of the envelope says what the modem saw there."""

    run_id: RunId
    run_started_at: UtcTime
    point_n: PointN
    last: bool = False  # the run's last point: the agent stopped cleanly
    fix_mode: FixMode
    fix_ok: bool  # 2D/3D, within the configured accuracy, not stale
    fix_reason: Reason | None = None  # why fix_ok is false
    lat_deg: Latitude | None = None  # WGS84; absent without a fix (the point is kept)
    lon_deg: Longitude | None = None
    horizontal_accuracy_m: AccuracyM | None = None  # gpsd's eph (or from epx/epy)
    speed_mps: SpeedMps | None = None
    gps_time: UtcTime | None = None  # the fix's own time
    # A short test at a stop, where the survey plan asks (not built yet: always absent).
    download_mbps: Mbps | None = None
    rtt_ms: Ms | None = None

    def __post_init__(self) -> None:
        # Only what the JSON Schema says too (UTC times: its pattern), so that both accept
        # the same messages (tests/hostile). The agent always pairs lat/lon, sets fix_ok
        # only with a position and fix_reason exactly when fix_ok is false; a reader of
        # another device's points takes a good fix as fix_ok *and* a position.
        for name in ("run_started_at", "gps_time"):
            when = getattr(self, name)
            if when is not None and when.utcoffset() != dt.timedelta(0):
                raise ValueError(f"`{name}` must be in UTC (end with Z)")


class SurveyResult(Envelope, tag="survey", frozen=True, kw_only=True):
    data: SurveyData | None = None
