"""What real modems reported through ModemManager (tests/golden/radio/, each with its public
source) maps to the snapshot and identity our mapping must give."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from probefleet.core import wire
from probefleet.kinds.radio import mapping

GOLDEN = Path(__file__).resolve().parents[3] / "tests" / "golden" / "radio"
CASES = sorted(GOLDEN.glob("*.json"))


def _identity(expected: dict[str, Any]) -> mapping.Identity:
    imei = expected.get("imei_sha256")
    if imei is not None:  # written as "sha256:<the IMEI the report shows>"
        imei = hashlib.sha256(imei.removeprefix("sha256:").encode()).hexdigest()
    return mapping.Identity(expected.get("model"), expected.get("firmware"), imei)


def test_there_are_real_modems() -> None:
    assert len(CASES) >= 4


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_a_real_modem_maps_to_its_snapshot(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["source"].startswith("https://github.com/")
    state = doc["state"]
    got = mapping.read(
        mapping.ModemState(
            path="/org/freedesktop/ModemManager1/Modem/0",
            modem=state["modem"],
            modem3gpp=state.get("modem3gpp"),
            signal=state.get("signal"),
            sim=state.get("sim"),
            cells=state.get("cells"),
        )
    )
    assert got.snapshot == wire.RadioSnapshot(**doc["expected"]["snapshot"])
    assert got.identity == _identity(doc["expected"]["identity"])
    assert got.dropped == ()
    if "interface" in doc:
        assert mapping.serves(state["modem"], doc["interface"])
