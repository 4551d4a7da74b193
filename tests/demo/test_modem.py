"""The demo's simulated modem: the 4G commune's agent config points at it, the others read
no bus at all, and the modem on its private D-Bus reads as a radio context (H1's reader)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from probefleet.agent.config import load_config as load_agent_config
from probefleet.kinds.radio.mapping import Reading
from probefleet.kinds.radio.reader import RadioReader

from demo import preflight
from demo.modem import FALLBACK_AT_S, FALLBACK_S, SimulatedModem, lte_signal, on_3g, quality_pct
from demo.province import COMMUNES, RADIO_INTERVAL_S, Services, agent_toml
from demo.view import Radio, Row, Snapshot, radio_line, render

SERVICES = Services("10.99.0.1", 1883, "10.99.0.1", "2001:db8:99::1", 8080)
BUS = "unix:path=/tmp/pf-mm-x/bus"


def test_only_the_4g_commune_with_a_modem_reads_radio_and_from_the_demos_bus(
    tmp_path: Path,
) -> None:
    # One bus, one modem: the others get no radio at all (a reader falls back to the only
    # modem there is, so Xuân Hưng's wwan0 would read Phú Lâm's).
    with_modem = [c for c in COMMUNES if c.modem]
    assert [(c.commune, c.access) for c in with_modem] == [("Phú Lâm", "mobile")]
    for c in COMMUNES:
        path = tmp_path / f"{c.probe}.toml"
        path.write_text(
            agent_toml(
                c,
                SERVICES,
                state_dir=tmp_path / "s",
                interface=c.interface,
                radio_bus=BUS if c.modem else None,
            ),
            encoding="utf-8",
        )
        cfg = load_agent_config(path, env={})
        radio = cfg.measurements.radio
        if c.modem:
            assert (radio.enabled, radio.interval_s) == (True, RADIO_INTERVAL_S)
            assert (cfg.radio.attach, cfg.radio.bus) == (True, BUS)
        else:  # never the machine's own system bus
            assert not radio.enabled
            assert not cfg.radio.attach


def test_the_signal_moves_and_falls_back_to_3g_now_and_then() -> None:
    rsrps = [lte_signal(t)["rsrp"] for t in range(0, 240, 5)]
    assert min(rsrps) < -105 < -90 < max(rsrps)
    assert all(-125 <= r <= -80 for r in rsrps)
    assert 0 < quality_pct(min(rsrps)) < quality_pct(max(rsrps)) <= 100
    assert not on_3g(0)
    assert on_3g(FALLBACK_AT_S)
    assert not on_3g(FALLBACK_AT_S + FALLBACK_S)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_the_simulated_modem_reads_as_a_radio_context(tmp_path: Path) -> None:
    modem = SimulatedModem(tmp_path / "modem", "wwan0")
    address = modem.start()
    try:
        got = RadioReader(address, signal_rate_s=5).read("wwan0")
        assert isinstance(got, Reading), got
        snap = got.snapshot
        assert (snap.technology, snap.registration, snap.operator_code) == (
            "lte", "home", "45204")  # fmt: skip
        assert snap.rsrp_dbm is not None
        assert -125 <= snap.rsrp_dbm <= -80
    finally:
        modem.stop()
    assert modem.mm is not None
    assert not modem.mm.bus.running


def test_the_view_shows_the_4g_communes_radio() -> None:
    now = dt.datetime(2026, 1, 1, 0, 0, 12, tzinfo=dt.UTC)
    phulam = next(c for c in COMMUNES if c.modem)
    rows = [Row(phulam, 3, now, radio=Radio(now - dt.timedelta(seconds=12), "lte", -95.0, 72.0))]
    text = render(Snapshot(rows, [], "fleet"), color=False, header=["h"], footer=[], now=now)
    assert "radio Phú Lâm: 4G (lte), RSRP -95 dBm, signal 72 %, 12 s ago" in text
    lost = Radio(now, None, None, 0.0)
    assert radio_line(phulam, lost, now).startswith("radio Phú Lâm: not registered, signal 0 %")


def test_preflight_asks_for_dbusmock_as_an_optional_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preflight, "_have_dbusmock", lambda: False)
    monkeypatch.setattr(preflight, "_have", lambda _program: True)
    assert {"python3-dbusmock", "python3-dbus"} <= set(
        preflight.missing_packages(with_optional=True)
    )
    assert "python3-dbusmock" not in preflight.missing_packages(with_optional=False)
