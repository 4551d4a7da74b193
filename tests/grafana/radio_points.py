"""Points with the radio context's InfluxDB names (/tmp/shared/radio-spec.md,
collector/README.md) for the dashboard tests: ``radio`` reads and mobile throughput tests
that carry ``radio_technology`` / ``radio_operator`` tags and ``radio_*`` fields, built
with the collector's own line-protocol Point. The values are kept for the tests' own
computations."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from probefleet.collector.lineproto import FieldValue, Point

# Technology -> (RSRP, SINR) around which a read's signal lies: 5G strong, 2G weak.
SIGNAL: dict[str, tuple[float, float]] = {
    "nr5g_nsa": (-85.0, 18.0),
    "nr5g_sa": (-80.0, 20.0),
    "lte": (-95.0, 12.0),
    "umts": (-105.0, 4.0),
    "gsm": (-110.0, 1.0),
}
OPERATORS = ("45204", "45201", "45202")


@dataclass(frozen=True)
class Probe:
    """A probe's mobile interface and its place (the tags every point of it carries)."""

    probe: str
    commune: str
    district: str
    operator: str  # the inventory's ISP name (the operator tag)
    radio_operator: str  # MCC+MNC of the serving network
    interface: str = "wwan0"

    def tags(self, **more: str) -> dict[str, str]:
        tags = {
            "probe": self.probe,
            "commune": self.commune,
            "district": self.district,
            "province": "Đồng Nai",
            "operator": self.operator,
            "access": "mobile",
            "interface": self.interface,
            "status": "ok",
            "radio_operator": self.radio_operator,
        }
        tags.update(more)
        return {k: v for k, v in tags.items() if v}


@dataclass
class Reads:
    """What was written: per (commune, radio_operator) the reads per technology ('' = none)."""

    technology: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    # per probe: the reads' RSRP values
    rsrp: dict[str, list[float]] = field(default_factory=dict)
    # mobile tests: (probe, technology, rsrp_dbm, snr_db, download_mbps, time_ns)
    tests: list[tuple[str, str, float, float, float, int]] = field(default_factory=list)


def _point(measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], t: int) -> Point:
    return Point(measurement, tuple(sorted(tags.items())), tuple(fields.items()), t)


def radio_reads(
    probe: Probe,
    start_ns: int,
    count: int,
    every_s: int,
    *,
    rng: random.Random,
    reads: Reads,
    last: str | None = None,
) -> Iterator[str]:
    """``count`` radio reads, ``every_s`` apart: mostly 4G, some 5G, 3G and 2G fallbacks,
    a few without service (no technology, not registered); ``last``: the newest read's
    technology (no radio alert pending at the end)."""
    weights = {"lte": 60, "nr5g_nsa": 15, "nr5g_sa": 5, "umts": 10, "gsm": 4, "": 6}
    techs = list(weights)
    for i in range(count):
        tech = rng.choices(techs, weights=[weights[t] for t in techs])[0]
        if last is not None and i == count - 1:
            tech = last
        key = (probe.commune, probe.radio_operator)
        per = reads.technology.setdefault(key, {})
        per[tech] = per.get(tech, 0) + 1
        fields: dict[str, FieldValue] = {"seq": i + 1, "registered": bool(tech)}
        if tech:
            rsrp, snr = SIGNAL[tech]
            fields["radio_rsrp_dbm"] = round(rsrp + rng.uniform(-8, 8), 1)
            fields["radio_snr_db"] = round(snr + rng.uniform(-3, 3), 1)
            fields["radio_registration"] = "home"
            reads.rsrp.setdefault(probe.probe, []).append(float(fields["radio_rsrp_dbm"]))
        else:
            fields["radio_registration"] = "searching"
        tags = probe.tags(radio_technology=tech)
        yield _point("radio", tags, fields, start_ns + i * every_s * 10**9).line()


def mobile_tests(
    probe: Probe, start_ns: int, count: int, every_s: int, *, rng: random.Random, reads: Reads
) -> Iterator[str]:
    """``count`` completed mobile downloads with their start snapshot: the download grows
    with the signal (so a scatter has a shape), target 60 Mbit/s."""
    for i in range(count):
        tech = rng.choice(["lte", "lte", "lte", "nr5g_nsa", "umts"])
        rsrp0, snr0 = SIGNAL[tech]
        rsrp = round(rsrp0 + rng.uniform(-8, 8), 1)
        snr = round(snr0 + rng.uniform(-3, 3), 1)
        down = round(max(1.0, 2.0 * (rsrp + 120) + 2.0 * snr + rng.uniform(-5, 5)), 2)
        t = start_ns + i * every_s * 10**9
        reads.tests.append((probe.probe, tech, rsrp, snr, down, t))
        fields: dict[str, FieldValue] = {
            "seq": 10_000 + i,
            "download_mbps": down,
            "upload_mbps": round(down / 3, 2),
            "target_download_mbps": 60.0,
            "meets_download_target": int(down >= 60.0),
            "radio_rsrp_dbm": rsrp,
            "radio_snr_db": snr,
            "radio_changed": False,
        }
        tags = probe.tags(radio_technology=tech, method="librespeed", ip_version="4")
        yield _point("throughput", tags, fields, t).line()
