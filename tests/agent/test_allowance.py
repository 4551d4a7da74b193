"""What the centre may drive at run time (agent.allowance, the runner and agent.fleet, no
broker): commanded bandwidth tests spaced, the month's centre-driven bytes capped across a
restart, a guard around runs whose remote config named destinations, and a command flood
or a command for an undeclared interface dropped."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from probefleet import kinds
from probefleet.agent.allowance import USAGE_FILE, Allowance
from probefleet.agent.budget import Budget
from probefleet.agent.clock import ClockWatch
from probefleet.agent.config import AgentConfig
from probefleet.agent.fleet import ConfigSource, Fleet
from probefleet.agent.runner import Runner
from probefleet.agent.spool import Spool
from probefleet.core import wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.common import destinations
from probefleet.kinds.service.measure import ServiceConfig
from probefleet.kinds.throughput.measure import ThroughputConfig
from probefleet.kinds.throughput.payload import ThroughputData

from tests.agent.test_runner import BOOT, payloads

MB = 1_000_000
MARCH = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = MARCH
        self.mono = 1000.0


def allowance(tmp_path: Path, clock: Clock, **limits: Any) -> Allowance:
    a = Allowance(tmp_path, clock=lambda: clock.now, mono=lambda: clock.mono)
    src = _source(tmp_path, limits)
    a.configure(src.build({"measurements": {"throughput": {"duration_s": 5}}}).remote)
    return a


def _source(tmp_path: Path, limits: dict[str, Any], extra: str = "") -> ConfigSource:
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in limits.items()]
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[probe]\nid = "p-1"\nstate_dir = "{tmp_path}"\n{extra}[remote]\n' + "\n".join(lines)
    )
    return ConfigSource(path, env={})


def result(mb: int) -> ThroughputData:
    return ThroughputData(method="http", server_name="s", server_url="http://s/",
                          download_bytes=mb * MB // 2, upload_bytes=mb * MB // 2)  # fmt: skip


def test_commanded_bandwidth_tests_are_spaced_by_min_interval_s(tmp_path: Path) -> None:
    clock = Clock()
    a = allowance(tmp_path, clock, min_interval_s=900)
    assert a.allows("throughput", on_demand=True) == (True, "", {})
    with a.metered("throughput", on_demand=True) as book:
        book(result(10))
    clock.mono += 899
    ok, why, detail = a.allows("throughput", on_demand=True)
    assert not ok
    assert why == (
        "commanded bandwidth tests: at most one per [remote] min_interval_s = 900 s; "
        "the last one began 899 s ago"
    )
    assert detail == {"since_last_s": 899.0, "min_interval_s": 900.0}
    assert a.allows("throughput", on_demand=False)[0]  # the schedule is judged by limits
    clock.mono += 1
    assert a.allows("throughput", on_demand=True)[0]


def test_the_months_centre_driven_bytes_are_capped_and_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    a = allowance(tmp_path, clock, max_monthly_mb=100, min_interval_s=10)
    for _ in range(3):
        assert a.allows("throughput", on_demand=False)[0]
        with a.metered("throughput", on_demand=False) as book:
            book(result(30))
    # 90 MB moved; the next one is estimated at 30 MB: it would pass 100.
    ok, why, detail = a.allows("throughput", on_demand=False)
    assert not ok
    assert why.startswith("[remote] max_monthly_mb: bandwidth tests the centre drove moved 90 of")
    assert detail["remote_used_bytes"] == 90 * MB
    assert detail["remote_estimate_bytes"] == 30 * MB
    # A restart reads the same month from remote-usage.json.
    again = allowance(tmp_path, clock, max_monthly_mb=100)
    assert again.used() == ("2026-03", 90 * MB)
    assert not again.allows("throughput", on_demand=True)[0]
    # A failed run counts as its estimate.
    clock.now = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    assert again.allows("throughput", on_demand=False)[0]
    with pytest.raises(RuntimeError), again.metered("throughput", on_demand=False):
        raise RuntimeError("server went away")
    assert again.used() == ("2026-04", 30 * MB)
    assert (tmp_path / USAGE_FILE).exists()


def test_runs_the_file_alone_drives_are_not_counted(tmp_path: Path) -> None:
    clock = Clock()
    a = Allowance(tmp_path, clock=lambda: clock.now, mono=lambda: clock.mono)
    a.configure(_source(tmp_path, {"max_monthly_mb": 0}).build({}).remote)
    assert a.allows("throughput", on_demand=False) == (True, "", {})
    with a.metered("throughput", on_demand=False) as book:
        book(result(500))
    assert a.used() == ("2026-03", 0)
    assert not a.allows("throughput", on_demand=True)[0]  # 0: nothing the centre drives
    assert a.guard("throughput") is None


# --- the runner ------------------------------------------------------------------------------


class Sending(Measurement[ThroughputConfig]):
    """A heavy stand-in that connects to its upload_url (through net, like the real one)."""

    name: ClassVar[wire.Kind] = "throughput"
    summary = "connects to upload_url"
    config_type = ThroughputConfig
    heavy = True

    def run(self, link: Link) -> ThroughputData:
        from probefleet.kinds.common import net
        from probefleet.kinds.common.http import parse_url

        target = parse_url(self.config.upload_url)
        sock, _ = net.connect(target.host, target.port, link, timeout_s=2)
        sock.close()
        return result(1)


def runner_for(tmp_path: Path, cfg: AgentConfig) -> Runner:
    registry: dict[wire.Kind, type[Measurement[Any]]] = {
        **kinds.measurements(),
        "throughput": Sending,
    }
    return Runner(
        cfg, spool=Spool(tmp_path, max_bytes=10**6), budget=Budget(tmp_path, {}), boot_id=BOOT,
        clock=ClockWatch(), stop=threading.Event(), registry=registry,
    )  # fmt: skip


def test_the_runner_guards_remote_destinations_and_spaces_commands(tmp_path: Path) -> None:
    from tests.hostile.listener import CountingListener

    with CountingListener() as router:
        local = (
            f'[measurements.throughput]\nmode = "http"\nupload_url = "{router.url}up"\n'
            '[gate]\nenabled = false\n'
        )  # fmt: skip
        src = _source(tmp_path, {"allow_destinations": ["localhost"]}, local)
        r = runner_for(tmp_path, src.build({}))
        r.run("throughput", Link(), gated=False, request_id="r-1")  # the file's own: runs
        r.run("throughput", Link(), gated=False, request_id="r-2")  # too soon after r-1
        assert router.connections == 1
        remote = {
            "measurements": {"throughput": {"upload_url": f"http://localhost:{router.port}/"}}
        }
        r.configure(src.build(remote))
        r.run("throughput", Link())  # resolves to loopback: refused before connecting
        assert router.connections == 1
    ran, spaced, refused = payloads(r)
    assert (ran.status, ran.request_id) == ("ok", "r-1")
    assert spaced.status == "skipped"
    assert spaced.request_id == "r-2"
    assert spaced.reason is not None
    assert spaced.reason.startswith("commanded bandwidth tests: at most one per")
    assert refused.status == "failed"
    assert refused.reason is not None
    assert "localhost resolves to" in refused.reason
    assert "loopback ([remote] allow_private = false)" in refused.reason
    assert destinations.current() is None  # nothing left installed after the runs


# --- commands (agent.fleet) -----------------------------------------------------------------


def fleet_for(tmp_path: Path, **limits: Any) -> tuple[Fleet, list[wire.Command]]:
    iface = '[[interfaces]]\nname = "eth0"\naccess = "fixed"\n'
    src = _source(tmp_path, limits, iface)
    src.load()
    ran: list[wire.Command] = []
    fleet = Fleet(src, tmp_path, apply=lambda _cfg: None, command=ran.append, report=lambda: None)
    return fleet, ran


def command(i: int, **fields: Any) -> bytes:
    doc = {"schema": 1, "command": "measure", "kind": "latency", "request_id": f"r-{i}"}
    return wire.encode(wire.Command(**{**doc, **fields}))


def test_a_command_flood_is_cut_at_max_commands_per_hour_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet, ran = fleet_for(tmp_path, max_commands_per_hour=5)
    now = [0.0]
    fleet.clock = lambda: now[0]
    with caplog.at_level(logging.ERROR, logger="probefleet.agent.fleet"):
        for i in range(200):
            fleet.handle("commands", command(i))
    assert [c.request_id for c in ran] == [f"r-{i}" for i in range(5)]
    dropped = [r.message for r in caplog.records]
    assert dropped == [
        "command r-5 (latency) dropped: more than [remote] max_commands_per_hour = 5"
    ]
    now[0] = 3600.0  # an hour later: room again
    fleet.handle("commands", command(999))
    assert ran[-1].request_id == "r-999"


def test_a_command_for_an_undeclared_interface_is_dropped(tmp_path: Path) -> None:
    fleet, ran = fleet_for(tmp_path)
    fleet.handle("commands", command(1, interface="wlan0"))
    fleet.handle("commands", command(2, interface="eth0"))
    assert [c.request_id for c in ran] == ["r-2"]


def test_a_rejected_config_sent_again_is_neither_logged_nor_reported_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _source(tmp_path, {})
    src.load()
    reports: list[str | None] = []
    fleet = Fleet(src, tmp_path, apply=lambda _cfg: None, command=lambda _c: None,
                  report=lambda: reports.append(src.error))  # fmt: skip
    bad = b'{"measurements": {"service": {"checks": [{"name": "x", "target": "10.0.0.1:22"}]}}}'
    with caplog.at_level(logging.ERROR, logger="probefleet.agent.fleet"):
        for _ in range(50):  # a reconnect storm: the retained message every time
            fleet.config(bad)
    assert len(caplog.records) == 1
    assert len(reports) == 1
    assert reports[0] is not None
    assert (
        "measurements.service.checks[0].target = '10.0.0.1:22': 10.0.0.1 is private" in (reports[0])
    )
    fleet.config(b'{"measurements": {"latency": {"interval_s": 600}}}')
    assert reports[-1] is None
    assert src.in_force is not None
    assert src.in_force.measurements.latency.interval_s == 600


def test_service_config_type_marks_its_target_as_a_destination() -> None:
    from probefleet.agent.limits import destinations_in

    found = list(destinations_in("service", ServiceConfig(), "measurements.service"))
    assert [(n.key, n.fmt) for n in found] == [
        ("measurements.service.checks[0].target", "service"),
        ("measurements.service.checks[1].target", "service"),
    ]
