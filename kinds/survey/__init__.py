"""The `survey` measurement kind: a point every few seconds of a drive or walk, where the
probe is (GPS through gpsd) with the radio context of its mobile link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probefleet.kinds.base import KindSpec, Measurement
from probefleet.kinds.survey import fields, payload


def _measurement() -> type[Measurement[Any]]:
    from probefleet.kinds.survey.measure import Survey  # the agent's code: loaded by the agent only

    return Survey


SPEC = KindSpec(
    name="survey",
    result=payload.SurveyResult,
    rows=fields.rows,
    measurement=_measurement,
    folder=Path(__file__).resolve().parent,
)
