"""Survey runs: their ids, start and point count; the one small file a run start writes.

A run is one drive or walk: from the agent's start (or a new ``run_id`` in the config) to
its clean stop. Its id is the configured ``run_id`` or ``<YYYYMMDD>-<probe>-<n>``, ``n``
counting the runs started that day on this probe; a configured id that already ran on this
probe gets ``.<n>`` (``phulam-a.2``) so that no two runs ever share one. The counters live
in ``<state_dir>/survey-runs.json`` (written once per run start, not per point).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

FILE: Final = "survey-runs.json"
_KEEP: Final = 100  # counters kept (the newest): one per day or configured id
_MAX_ID: Final = 64


@dataclass
class SurveyRun:
    """One run going on: its id, when it started, and the points it has so far."""

    run_id: str
    started_at: dt.datetime
    points: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def next_point(self) -> int:
        with self.lock:
            self.points += 1
            return self.points


def _counters(path: Path) -> dict[str, int]:
    try:
        got = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("survey run counters in %s unreadable (%s): starting again", path, exc)
        return {}
    if not isinstance(got, dict):
        return {}
    return {k: v for k, v in got.items() if isinstance(k, str) and type(v) is int and v > 0}


def _write(path: Path, counters: dict[str, int]) -> None:
    newest = dict(list(counters.items())[-_KEEP:])
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as handle:
        json.dump(newest, handle)
        handle.flush()
        os.fsync(handle.fileno())  # a crash must not hand the same id to the next run
    os.replace(tmp, path)


def start_run(
    *, configured: str, probe_id: str, state_dir: Path | None, now: dt.datetime
) -> SurveyRun:
    """A new run: its id from ``configured`` (may be empty) or the date and probe.
    ``state_dir`` None (``probe-agent measure``): no counters, the first id of the day."""
    prefix = configured or f"{now:%Y%m%d}-{probe_id}"[: _MAX_ID - 4]
    n = 1
    if state_dir is not None:
        path = state_dir / FILE
        try:
            counters = _counters(path)
            n = counters.pop(prefix, 0) + 1
            counters[prefix] = n  # last in order: the newest are kept
            _write(path, counters)
        except OSError as exc:  # a full disk must not stop the survey: the id may repeat
            log.error("survey run counters not written to %s: %s", path, exc)
    if configured:
        run_id = configured if n == 1 else f"{configured[: _MAX_ID - 8]}.{n}"
    else:
        run_id = f"{prefix}-{n}"
    log.info("survey run %s started", run_id)
    return SurveyRun(run_id=run_id, started_at=now)


__all__ = ["FILE", "SurveyRun", "start_run"]
