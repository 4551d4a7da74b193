"""The `ookla` measurement: config rules, payload mapping, `probe-agent measure ookla` against a
local Ookla server, discovery failures as reasons, and a shaped link in namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # untyped; types-jsonschema is not locked
import msgspec
import pytest
from ookla_server import OoklaTestServer, silent_listener
from probefleet.core import configkit, wire
from probefleet.kinds.base import Link
from probefleet.kinds.errors import MeasurementError, MeasurementTimeout
from probefleet.kinds.ookla import seam as _speedtest_seam
from probefleet.kinds.ookla.measure import Ookla, OoklaConfig
from probefleet.kinds.ookla.payload import OoklaResult
from probefleet.kinds.throughput.payload import ThroughputData

from tests.harness import eventually
from tests.harness.netns import NetnsPair, netns_unavailable

ROOT = Path(__file__).resolve().parents[3]
PROBE_AGENT = Path(sys.executable).with_name("probe-agent")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # speedtest-cli's opener honours *_proxy variables: loopback traffic must stay direct.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def _cfg(server: OoklaTestServer | None = None, **options: Any) -> OoklaConfig:
    if server is not None:
        options.setdefault("config_url", server.config_url)
        options.setdefault("servers_url", server.servers_url)
    return configkit.build(options, OoklaConfig)


# --- config and mapping (no network) -------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"download": False, "upload": False}, "measurements.ookla.download, upload:"),
        ({"config_url": "speedtest.example"}, "measurements.ookla.config_url = 'speedtest"),
        ({"servers_url": "ftp://x/y"}, "measurements.ookla.servers_url = 'ftp://x/y'"),
        ({"timeout_s": 5, "socket_timeout_s": 10}, "measurements.ookla.socket_timeout_s = 10"),
    ],
)
def test_constructor_names_the_key(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match="^" + problem.replace("(", r"\(")):
        Ookla(_cfg(**options))


def test_server_id_must_be_digits() -> None:
    problems = configkit.problems_in({"server_id": "9903a"}, OoklaConfig)
    assert [(k, why) for k, _, why in problems] == [("server_id", "must match ^[0-9]{0,10}$")]


def test_defaults_stay_off_and_daily() -> None:
    cfg = OoklaConfig()
    assert (cfg.enabled, cfg.interval_s, cfg.server_id, cfg.config_url) == (False, 86400, "", "")
    Ookla(cfg)  # the defaults themselves are valid


def test_bits_per_second_become_mbps_and_fields_map(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit test at the seam: what run() makes of an outcome."""
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> _speedtest_seam.SpeedtestOutcome:
        calls.append(kwargs)
        return _speedtest_seam.SpeedtestOutcome(
            server_id="9903",
            server_name="Viettel Biên Hòa",
            server_url="http://st.example.vn:8080/speedtest/upload.php",
            ping_ms=12.3456,
            download_bps=58_400_000.0,
            upload_bps=None,
            bytes_received=73_000_000,
            bytes_sent=0,
            download_s=10.0004,
            download_streams=8,
        )

    monkeypatch.setattr(_speedtest_seam, "run_speedtest", fake)
    data = Ookla(_cfg(server_id="9903", upload=False)).run(Link(interface="wwan0"))
    assert data == ThroughputData(
        method="ookla",
        server_name="Viettel Biên Hòa",
        server_url="http://st.example.vn:8080/speedtest/upload.php",
        server_id="9903",
        ip_version=4,
        download_mbps=58.4,
        download_bytes=73_000_000,
        download_duration_s=10.0,
        download_streams=8,
        latency_idle_ms=12.346,
    )
    assert calls[0]["secure"] is True
    assert calls[0]["server_id"] == "9903"
    assert calls[0]["link"] == Link(interface="wwan0")
    assert calls[0]["upload"] is False


# --- against a local Ookla server -------------------------------------------------------------


@pytest.fixture
def ookla() -> Iterator[OoklaTestServer]:
    with OoklaTestServer(test_length_s=1) as server:
        yield server


def _run_cli(config: Path, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROBE_AGENT), "measure", "ookla", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _agent_toml(tmp_path: Path, ookla_table: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[probe]\nid = "test-ookla"\nstate_dir = "{tmp_path}"\n'
        f"[measurements.ookla]\n{ookla_table}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.integration
def test_probe_agent_measure_ookla_prints_a_valid_result(
    ookla: OoklaTestServer, tmp_path: Path
) -> None:
    config = _agent_toml(
        tmp_path,
        f'config_url = "{ookla.config_url}"\nservers_url = "{ookla.servers_url}"\n'
        'server_id = "9903"\ntimeout_s = 60',
    )
    proc = _run_cli(config)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    schema = json.loads((ROOT / "schema" / "result.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(payload)
    result = wire.decode_result(proc.stdout)
    assert isinstance(result, OoklaResult)
    assert result.status == "ok"
    data = result.data
    assert data is not None
    assert (data.method, data.server_id, data.ip_version) == ("ookla", "9903", 4)
    assert data.server_url == f"{ookla.base_url}/speedtest/upload.php"
    # speedtest-cli parsed our config and server list XML, reached through the redirect.
    assert any(p.startswith("/speedtest-config.php?x=") for p in ookla.paths)
    assert any(p.startswith("/speedtest-servers-static.php?threads=4&x=") for p in ookla.paths)
    assert data.download_bytes
    assert 0 < data.download_bytes <= ookla.bytes_served
    assert data.upload_bytes
    assert 0 < ookla.bytes_received <= data.upload_bytes
    assert data.download_mbps
    assert data.upload_mbps
    # speedtest-cli stops at the config's test length (1 s here).
    assert data.download_duration_s
    assert 0 < data.download_duration_s < 2.5
    assert data.upload_duration_s
    assert 0 < data.upload_duration_s < 2.5
    # Mbit/s = bytes * 8 / s / 10^6: not MiB (4.9 % off), not bytes (8x off).
    expect = data.download_bytes * 8 / data.download_duration_s / 1e6
    assert data.download_mbps == pytest.approx(expect, rel=0.005)
    assert 10 < data.download_mbps < 100_000
    assert data.latency_idle_ms is not None
    assert data.latency_idle_ms < 1000


def _failure(cfg: OoklaConfig) -> MeasurementError:
    with pytest.raises(MeasurementError) as caught:
        Ookla(cfg).run(Link())
    return caught.value


@pytest.mark.integration
@pytest.mark.parametrize(
    ("server_options", "reason", "detail"),
    [
        ({"config_status": 403}, "{host} refused the config request (HTTP 403)", 403),
        ({"servers_status": 429}, "rate-limited by {host} (HTTP 429) on the server list", 429),
        ({"servers_status": 500}, "{host} answered the server list request with HTTP 500", 500),
        ({"servers": []}, "the server list from {host} holds no Ookla server", None),
    ],
)
def test_discovery_failures_become_reasons(
    server_options: dict[str, Any], reason: str, detail: int | None
) -> None:
    with OoklaTestServer(**server_options) as server:
        error = _failure(_cfg(server))
        host = f"127.0.0.1:{server.port}"
        assert error.reason == reason.format(host=host)
        assert error.detail == ({"http_status": detail} if detail else {})
        assert server.bytes_served == 0


@pytest.mark.integration
def test_unknown_server_id_is_named(ookla: OoklaTestServer) -> None:
    error = _failure(_cfg(ookla, server_id="424242"))
    assert error.reason == (
        f"no Ookla server matched id 424242 in the server list from 127.0.0.1:{ookla.port}"
    )


@pytest.mark.integration
def test_rate_limit_wins_over_no_match_when_a_server_is_asked_for() -> None:
    with OoklaTestServer(servers_status=429) as server:
        error = _failure(_cfg(server, server_id="9903"))
    assert error.reason.startswith("rate-limited by")


@pytest.mark.integration
def test_silent_server_fails_within_the_timeout() -> None:
    with silent_listener() as base:
        cfg = _cfg(
            config_url=f"{base}/speedtest-config.php",
            servers_url=f"{base}/speedtest-servers.php",
            timeout_s=5,
            socket_timeout_s=1,
        )
        started = time.monotonic()
        error = _failure(cfg)
        elapsed = time.monotonic() - started
    assert error.reason.endswith(": no answer within 1 s")
    assert elapsed < 5


@pytest.mark.integration
def test_trickling_config_is_killed_at_timeout_s() -> None:
    """One byte every 0.2 s: no socket timeout ever fires, the deadline must."""
    with OoklaTestServer(config_trickle=True) as server:
        started = time.monotonic()
        error = _failure(_cfg(server, timeout_s=3, socket_timeout_s=1))
        elapsed = time.monotonic() - started
    assert isinstance(error, MeasurementTimeout)
    assert error.reason == "speedtest-cli timed out after 3 s while fetching the config"
    assert 3 <= elapsed < 4.5


@pytest.mark.integration
def test_failed_run_prints_a_valid_failed_result(tmp_path: Path) -> None:
    with OoklaTestServer(config_status=403) as server:
        config = _agent_toml(
            tmp_path, f'config_url = "{server.config_url}"\nservers_url = "{server.servers_url}"'
        )
        proc = _run_cli(config)
    assert proc.returncode == 1
    result = wire.decode_result(proc.stdout)
    assert result.status == "failed"
    assert result.reason == f"127.0.0.1:{server.port} refused the config request (HTTP 403)"
    assert "ookla on default route failed" in proc.stderr


# --- a shaped link ---------------------------------------------------------------------------

RATE_MBIT = 50


@pytest.mark.integration
@pytest.mark.netns
@pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))
@pytest.mark.timeout(90)
def test_reads_a_shaped_link_bound_to_its_interface(tmp_path: Path) -> None:
    """speedtest-cli over a 50 Mbit/s tbf link between namespaces, bound to veth0."""
    with NetnsPair("ookla", ipv6=False, rate_mbit=RATE_MBIT) as pair:
        base = f"http://{pair.server_v4}:8080"
        server = Path(__file__).with_name("ookla_server.py")
        pair.popen(
            pair.server_ns,
            [sys.executable, str(server), str(pair.server_v4), "8080", "--test-length-s", "4"],
            stdout=subprocess.DEVNULL,
        )
        eventually(
            lambda: (
                pair.run(
                    pair.client_ns, ["curl", "-sf", f"{base}/speedtest/latency.txt"], check=False
                ).stdout
                == "test=test"
            ),
            message="ookla test server in the namespace",
        )
        config = _agent_toml(
            tmp_path,
            f'config_url = "{base}/speedtest-config.php"\n'
            f'servers_url = "{base}/speedtest-servers.php"\ntimeout_s = 60',
        )
        proc = pair.run(
            pair.client_ns,
            [str(PROBE_AGENT), "measure", "ookla", "--config", str(config), "--interface", "veth0"],
            check=False,
            timeout=80,
        )
    assert proc.returncode == 0, proc.stderr
    result = msgspec.json.decode(proc.stdout, type=OoklaResult)
    assert result.interface == "veth0"
    data = result.data
    assert data is not None
    assert data.download_mbps
    assert data.upload_mbps
    print(f"shaped {RATE_MBIT} Mbit/s: {data}")
    # tbf at 50 Mbit/s carries ~48 Mbit/s of TCP goodput; speedtest-cli must land near it.
    assert 0.75 * RATE_MBIT < data.download_mbps < 1.02 * RATE_MBIT
    # Its upload counts bytes handed to the socket, so queued bytes inflate it a little.
    assert 0.6 * RATE_MBIT < data.upload_mbps < 1.4 * RATE_MBIT


# --- the real thing ----------------------------------------------------------------------------


@pytest.mark.internet
@pytest.mark.skip(reason="needs the Internet")
def test_against_speedtest_net() -> None:
    data = Ookla(OoklaConfig(timeout_s=120)).run(Link())
    assert data.download_mbps
    assert data.download_mbps > 0
    assert data.upload_mbps
    assert data.upload_mbps > 0
    assert data.server_id
    assert data.latency_idle_ms is not None
