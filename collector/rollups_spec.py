"""What is rolled up: per measurement, which raw fields, and how (counts, sums, extremes, bins).

A rollup point is one raw *series* (measurement, every tag) plus a ``time_source`` tag, over
one UTC hour, written to ``<measurement>_1h``; its fields, for each raw field ``F`` named
here (``F_n`` = how many raw points carried ``F``):

- ``count``:  ``F_n``
- ``sum``:    ``F_n``, ``F_sum`` (0/1 fields: ``F_sum`` counts the ones)
- ``stats``:  ``F_n``, ``F_sum``, ``F_min``, ``F_max``
- ``hist``:   ``stats`` plus ``F_hist``, the bins of :mod:`.rollups_hist` as a string
  ``"<bin>:<count> …"`` (one field, not one per bin: InfluxDB 1.x pays per series and field)

and on every rollup point: ``n`` (raw points), ``unsynced_n`` (``clock_synced`` false),
``hour_utc`` (0-23, for hour-of-day figures), and on throughput ``skip_cross_n`` (skipped for
cross-traffic above the gate's limit) and ``download_band<k>_n`` (completed downloads in band
k of :data:`BANDS` times the target then in force, ``download_target_mbps``).

The compactor sums them into ``<measurement>_1d`` (local days; :func:`field_names` with
``daily``), those into ``<measurement>_1mo`` (local months, collector/rollups_monthly.py:
the daily fields, plus ``download_target_mbps_max`` when a month saw two targets) and, per
district, ``<measurement>_district_1d`` (:func:`district_field_names`).
"""

from __future__ import annotations

from typing import Final, Literal

How = Literal["count", "sum", "stats", "hist"]
SUFFIX: Final = "_1h"
HOUR_NS: Final = 3600 * 10**9

# Bands of the report's distribution chart, as multiples of the target (SamKnows: 80 %, 95 %).
BANDS: Final[tuple[tuple[float, float | None], ...]] = (
    (0.0, 0.5),
    (0.5, 0.8),
    (0.8, 0.95),
    (0.95, 1.0),
    (1.0, 1.5),
    (1.5, None),
)

SPECS: Final[dict[str, dict[str, How]]] = {
    "throughput": {
        "download_mbps": "hist",
        "upload_mbps": "hist",
        "meets_download_target": "sum",
        "meets_upload_target": "sum",
        "download_streams": "sum",
        "upload_streams": "sum",
        "download_duration_s": "sum",
        "upload_duration_s": "sum",
        "detail_max_cpu_pct": "count",
    },
    "latency": {
        "sent": "sum",
        "received": "sum",
        "rtt_min_ms": "stats",
        "rtt_median_ms": "hist",
        "rtt_max_ms": "stats",
        "jitter_ms": "hist",
    },
    "service": {"up_01": "sum", "total_ms": "hist"},
    "ipv6": {"capable_01": "sum", "works_01": "sum"},
    "health": {
        "uptime_s": "count",
        "cpu_pct": "stats",
        "memory_used_pct": "stats",
        "disk_used_pct": "stats",
        "temperature_c": "stats",
    },
}


def rollup_of(measurement: str) -> str:
    """``throughput`` -> ``throughput_1h``: one name, one suffix."""
    return measurement + SUFFIX


def band_of(value: float, target: float) -> int:
    """Which band of :data:`BANDS` ``value`` falls in, for ``target`` (> 0)."""
    ratio = value / target
    for k, (_low, high) in enumerate(BANDS):
        if high is None or ratio < high:
            return k
    return len(BANDS) - 1  # pragma: no cover - the last band has no upper edge


def field_names(measurement: str, *, daily: bool = False) -> frozenset[str]:
    """Every field a rollup of ``measurement`` may carry (for tests and dashboards' checks)."""
    names = {"n", "unsynced_n"} | (set() if daily else {"hour_utc"})
    for name, how in SPECS[measurement].items():
        names.add(f"{name}_n")
        if how != "count":
            names.add(f"{name}_sum")
        if how in ("stats", "hist"):
            names |= {f"{name}_min", f"{name}_max"}
        if how == "hist":
            names.add(f"{name}_hist")
    if measurement == "throughput":
        names |= {"skip_cross_n", "download_target_mbps"}
        names |= {f"download_band{k}_n" for k in range(len(BANDS))}
        if daily:
            names |= {
                f"peak_{f}"
                for f in (
                    "download_mbps_n",
                    "upload_mbps_n",
                    "meets_download_target_n",
                    "meets_download_target_sum",
                    "download_mbps_hist",
                    "upload_mbps_hist",
                )
            }
    if measurement == "health" and daily:
        names |= {"hours_seen", "first_hour_s"}
    return frozenset(names)


def district_field_names(measurement: str) -> frozenset[str]:
    """Every field of ``<measurement>_district_1d`` (rollups_daily.district_points): the
    daily rollup's counts and sums, no extremes or bins; health's ``probes`` too."""
    names = {
        n
        for n in field_names(measurement, daily=True)
        if not n.endswith(("_min", "_max", "_hist"))
        and n not in ("first_hour_s", "download_target_mbps")
    }
    if measurement == "health":
        names.add("probes")
    return frozenset(names)


# throughput_hours_1d: tags province, access, hour_utc.
HOURS_FIELDS: Final = frozenset(
    {"download_mbps_n", "meets_download_target_sum", "download_mbps_hist"}
)
