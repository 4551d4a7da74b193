"""Survey points with the InfluxDB names of the ``survey`` measurement (kinds/survey/README.md,
/tmp/shared/survey-spec.md, collector/README.md's hamlet tags) for the dashboard tests: a
synthetic walk east through three hamlets of two communes, with points without a fix (no
position), coarse fixes (a position, ``fix_ok`` false, no hamlet), and the modem on 4G, 5G,
3G, 2G or without service along the way. Built with the collector's line-protocol Point;
the points are kept for the tests' own computations."""

from __future__ import annotations

import random
from dataclasses import dataclass

from probefleet.collector.lineproto import FieldValue, Point

LAT = 11.2851
# Hamlet code -> the walk's longitudes in it [west, east), and the LTE RSRP around which
# its points lie (the second is weak: below the coverage rule's -110 dBm).
HAMLETS: dict[str, tuple[float, float, float]] = {
    "X26101-01": (107.460, 107.470, -95.0),
    "X26101-02": (107.470, 107.480, -113.0),
    "X26102-01": (107.480, 107.490, -104.0),
}
WEST, EAST = 107.460, 107.490
BROADBAND = ("lte", "nr5g_nsa", "nr5g_sa")
_TECH_WEIGHTS = {"lte": 70, "nr5g_nsa": 10, "umts": 10, "gsm": 4, "": 6}


@dataclass(frozen=True)
class SurveyPoint:
    run_id: str
    probe: str
    point_n: int
    time_ns: int
    last: bool
    fix_ok: bool
    lat: float | None
    lon: float | None
    hamlet: str  # "" outside every hamlet or without a good fix (the collector's rule)
    technology: str  # "" without service
    operator: str  # radio_operator, MCC+MNC ("" without service)
    rsrp: float | None
    snr: float | None

    @property
    def hamlet_commune(self) -> str:
        return self.hamlet.split("-", 1)[0] if self.hamlet else ""

    @property
    def good(self) -> bool:
        """A good fix as the board takes it: fix_ok and a position."""
        return self.fix_ok and self.lat is not None and self.lon is not None

    def point(self) -> Point:
        tags = {
            "probe": self.probe,
            "commune": "Tân Phú",  # the probe's own (inventory) commune, not where it is
            "district": "Tân Phú",
            "province": "Đồng Nai",
            "operator": "Viettel",
            "access": "mobile",
            "interface": "wwan0",
            "status": "ok",
            "run_id": self.run_id,
            "fix_ok": "true" if self.fix_ok else "false",
            "radio_technology": self.technology,
            "radio_operator": self.operator,
            "hamlet": self.hamlet,
            "hamlet_commune": self.hamlet_commune,
        }
        fields: dict[str, FieldValue] = {
            "seq": self.point_n,
            "point_n": self.point_n,
            "last": self.last,
            "fix_mode": "3d" if self.lat is not None else "none",
        }
        if self.lat is not None and self.lon is not None:
            fields.update(lat_deg=self.lat, lon_deg=self.lon, speed_mps=1.4)
            fields["horizontal_accuracy_m"] = 4.5 if self.fix_ok else 120.0
        if not self.fix_ok:
            fields["fix_reason"] = "no fix yet" if self.lat is None else "too coarse"
        fields["radio_registration"] = "home" if self.technology else "searching"
        if self.rsrp is not None:
            fields["radio_rsrp_dbm"] = self.rsrp
        if self.snr is not None:
            fields["radio_snr_db"] = self.snr
        present = tuple(sorted((k, v) for k, v in tags.items() if v))
        return Point("survey", present, tuple(fields.items()), self.time_ns)


def hamlet_at(lon: float) -> str:
    return next((code for code, (w, e, _r) in HAMLETS.items() if w <= lon < e), "")


def walk(
    run_id: str,
    probe: str,
    start_ns: int,
    count: int,
    *,
    rng: random.Random,
    every_s: int = 5,
    operator: str = "45204",
) -> list[SurveyPoint]:
    """``count`` points ``every_s`` apart from WEST to EAST: every 17th without a fix,
    every 23rd a coarse fix; the last one ``last``."""
    out: list[SurveyPoint] = []
    techs = list(_TECH_WEIGHTS)
    for i in range(count):
        lon = round(WEST + (EAST - WEST) * i / count, 6)
        lat = round(LAT + rng.uniform(-0.0005, 0.0005), 6)
        fix_ok, position = True, True
        if i % 17 == 5:
            fix_ok, position = False, False
        elif i % 23 == 7:
            fix_ok = False
        tech = rng.choices(techs, weights=[_TECH_WEIGHTS[t] for t in techs])[0]
        hamlet = hamlet_at(lon)
        rsrp = snr = None
        if tech in ("lte", "nr5g_nsa"):
            base = HAMLETS[hamlet][2] if hamlet else -100.0
            rsrp = round(base + rng.uniform(-6, 6), 1)
            snr = round(rng.uniform(-2, 20), 1)
        out.append(
            SurveyPoint(
                run_id=run_id,
                probe=probe,
                point_n=i + 1,
                time_ns=start_ns + i * every_s * 10**9,
                last=i == count - 1,
                fix_ok=fix_ok,
                lat=lat if position else None,
                lon=lon if position else None,
                hamlet=hamlet if fix_ok else "",
                technology=tech,
                operator=operator if tech else "",
                rsrp=rsrp,
                snr=snr,
            )
        )
    return out
