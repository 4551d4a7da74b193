"""The `survey` measurement: one point of a survey run, where the GPS says the probe is.

A point every ``interval_s`` (default 5 s) on each mobile link while enabled; the runner
gives it the radio context of the link like every result on a mobile link. The position is
the newest fix of a :class:`GpsReader` (gpsd, its own thread); no gpsd, no receiver or no
fix: the point is still made, ``fix_ok = false`` with ``fix_reason``, and without
``lat_deg`` / ``lon_deg`` when there is no position at all.

The run (agent.runner binds it): the first point starts it (``survey.run``); each point
counts up ``point_n``; :meth:`Survey.ending` asks for the last points, made by the runner
when the agent stops cleanly (``last = true``). A crash leaves its run without a last
point: its end is its newest point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

import msgspec
from probefleet.core import wire
from probefleet.kinds.base import Link, Measurement, Schedule
from probefleet.kinds.survey.payload import SurveyData
from probefleet.kinds.survey.reader import Fix, GpsReader
from probefleet.kinds.survey.run import SurveyRun, start_run

Port = Annotated[int, msgspec.Meta(ge=1, le=65_535)]


class SurveyConfig(Schedule, frozen=True, kw_only=True):
    """[measurements.survey]"""

    enabled: bool = False  # a portable probe on a survey only
    interval_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 5
    # Empty: <YYYYMMDD>-<probe>-<n>, n counting the runs started that day.
    run_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{0,64}\Z")] = ""
    gpsd_host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)] = "127.0.0.1"
    gpsd_port: Port = 2947
    # A fix is good (fix_ok) within this horizontal accuracy (gpsd's eph, 95 %).
    max_accuracy_m: Annotated[float, msgspec.Meta(gt=0.0, le=100_000.0)] = 50.0
    # A GPS report older than this is no fix (a receiver that stopped talking).
    stale_s: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)] = 5.0
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0, le=30.0)] = 2.0


class Survey(Measurement[SurveyConfig]):
    name: ClassVar[wire.Kind] = "survey"
    summary = "a survey point: where the GPS (gpsd) says the probe is, with the radio context"
    config_type = SurveyConfig
    # A survey measures mobile coverage along the way: a point per mobile link.
    mobile_only: ClassVar[bool] = True

    def __init__(self, config: SurveyConfig) -> None:
        super().__init__(config)
        self.probe_id = "probe"  # the runner binds the real ones (bind)
        self.state_dir: Path | None = None
        self._reader: GpsReader | None = None
        self._runs: dict[str, SurveyRun] = {}  # interface -> its run going on
        self._ending: set[str] = set()

    def bind(self, *, probe_id: str, state_dir: Path, previous: Survey | None) -> None:
        """The agent's probe and state; ``previous``: the measurement this one replaces (a
        new config): its runs go on unless the run_id changed, its reader unless gpsd did."""
        self.probe_id, self.state_dir = probe_id, state_dir
        if previous is None:
            return
        if previous.config.run_id == self.config.run_id:
            self._runs = previous._runs
        if previous._reader is not None:
            if _gps_keys(previous.config) == _gps_keys(self.config):
                self._reader = previous._reader
            else:
                previous._reader.close()

    def reader(self) -> GpsReader:
        if self._reader is None:
            c = self.config
            self._reader = GpsReader(
                c.gpsd_host, c.gpsd_port, stale_s=c.stale_s, timeout_s=c.timeout_s
            )
        return self._reader

    def ending(self) -> list[str]:
        """The interfaces whose runs go on; their next points are their last ones."""
        self._ending = set(self._runs)
        return sorted(self._ending)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def run(self, link: Link) -> SurveyData:
        key = link.interface or ""
        now = wire.utc_now()
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = start_run(
                configured=self.config.run_id, probe_id=self.probe_id,
                state_dir=self.state_dir, now=now,
            )  # fmt: skip
        last = key in self._ending
        if last:
            self._ending.discard(key)
            self._runs.pop(key, None)  # a point after this one starts a new run
        got = self.reader().fix()
        fix = got if isinstance(got, Fix) else None
        why = self._not_good(fix) if fix is not None else getattr(got, "reason", "no fix")
        if why is not None:
            why = why[:300]  # the wire's bound: a longer reason would lose the point
        return SurveyData(
            run_id=run.run_id,
            run_started_at=run.started_at,
            point_n=run.next_point(),
            last=last,
            fix_mode=fix.mode if fix else "none",
            fix_ok=why is None,
            fix_reason=why,
            lat_deg=fix.lat_deg if fix else None,
            lon_deg=fix.lon_deg if fix else None,
            horizontal_accuracy_m=fix.horizontal_accuracy_m if fix else None,
            speed_mps=fix.speed_mps if fix else None,
            gps_time=fix.gps_time if fix else None,
        )

    def _not_good(self, fix: Fix) -> str | None:
        accuracy, bound = fix.horizontal_accuracy_m, self.config.max_accuracy_m
        if accuracy is None:
            return "gpsd gave no accuracy estimate (eph, epx/epy) for the fix"
        if accuracy > bound:
            return f"accuracy {accuracy:.0f} m is worse than max_accuracy_m = {bound:g}"
        return None


def _gps_keys(c: SurveyConfig) -> tuple[object, ...]:
    return (c.gpsd_host, c.gpsd_port, c.stale_s, c.timeout_s)
