"""The speedtest-cli seam: its own download/upload code against a local Ookla server, its
failures turned into reasons, and the child process killed on time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from ookla_server import OoklaTestServer, silent_listener
from probefleet.kinds.base import Link
from probefleet.kinds.errors import MeasurementError, MeasurementTimeout
from probefleet.kinds.ookla.seam import run_speedtest

from tests.harness import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # speedtest-cli's opener honours *_proxy variables: loopback traffic must stay direct.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ookla() -> Iterator[OoklaTestServer]:
    with OoklaTestServer(test_length_s=1) as server:
        yield server


def test_injected_config_and_servers_never_touch_discovery(ookla: OoklaTestServer) -> None:
    got = run_speedtest(
        link=Link(),
        server_id=None,
        timeout_s=30,
        config_override=ookla.speedtest_config(),
        servers_override=[ookla.entry(server_id=7)],
    )
    assert not [p for p in ookla.paths if "speedtest-config" in p or "servers" in p]
    assert got.server_id == "7"
    assert got.server_url == f"{ookla.base_url}/speedtest/upload.php"
    assert got.server_name == "Probefleet Test Biên Hòa"
    # speedtest-cli's own threads moved real bytes: what it counts is what the server saw.
    assert 0 < got.bytes_received <= ookla.bytes_served
    assert 0 < ookla.bytes_received <= got.bytes_sent
    assert got.download_bps is not None
    assert got.upload_bps is not None
    # Durations are speedtest-cli's own spans: its test length (1 s here) bounds each.
    assert got.download_s is not None
    assert 0 < got.download_s < 2.5
    assert got.upload_s is not None
    assert 0 < got.upload_s < 2.5
    assert got.download_streams == 4
    assert got.ping_ms is not None
    assert 0 < got.ping_ms < 1000
    # Every image it asked for is one Ookla serves (N in 350..4000, square).
    images = [p for p in ookla.paths if "/random" in p]
    assert len(images) == 20
    assert all(p.startswith("/speedtest/random") and ".jpg?x=" in p for p in images)


def test_download_only_leaves_upload_unmeasured(ookla: OoklaTestServer) -> None:
    got = run_speedtest(
        link=Link(),
        server_id=None,
        timeout_s=30,
        upload=False,
        config_override=ookla.speedtest_config(),
        servers_override=[ookla.entry()],
    )
    assert got.download_bps
    assert got.download_bps > 0
    assert got.upload_bps is None
    assert got.bytes_sent == 0
    assert ookla.bytes_received == 0


def test_server_id_filters_an_injected_list(ookla: OoklaTestServer) -> None:
    with pytest.raises(MeasurementError) as caught:
        run_speedtest(
            link=Link(),
            server_id="55",
            timeout_s=30,
            config_override=ookla.speedtest_config(),
            servers_override=[ookla.entry(server_id=7)],
        )
    assert caught.value.reason == "no Ookla server matched id 55 in the given server list"


def test_a_dead_server_is_a_failure_not_zero_mbps(ookla: OoklaTestServer) -> None:
    dead = ookla.entry()
    dead["url"] = f"http://127.0.0.1:{free_port()}/speedtest/upload.php"
    with pytest.raises(MeasurementError) as caught:
        run_speedtest(
            link=Link(),
            server_id=None,
            timeout_s=30,
            config_override=ookla.speedtest_config(),
            servers_override=[dead],
        )
    assert caught.value.reason.endswith(f"({dead['url']}) sent no download data")


def test_never_answering_config_is_killed_at_the_deadline() -> None:
    # The socket timeout (30 s) cannot save it: the overall deadline must.
    with silent_listener() as base:
        started = time.monotonic()
        with pytest.raises(MeasurementTimeout) as caught:
            run_speedtest(
                link=Link(),
                server_id=None,
                timeout_s=2,
                socket_timeout_s=30,
                config_url=f"{base}/speedtest-config.php",
                servers_url=f"{base}/speedtest-servers-static.php",
            )
        elapsed = time.monotonic() - started
    assert caught.value.reason == "speedtest-cli timed out after 2 s while fetching the config"
    assert caught.value.detail == {"timeout_s": 2}
    assert 2 <= elapsed < 3.5


def test_never_answering_config_hits_the_socket_timeout_first() -> None:
    with silent_listener() as base:
        started = time.monotonic()
        with pytest.raises(MeasurementError) as caught:
            run_speedtest(
                link=Link(),
                server_id=None,
                timeout_s=10,
                socket_timeout_s=1,
                config_url=f"{base}/speedtest-config.php",
                servers_url=f"{base}/speedtest-servers-static.php",
            )
        elapsed = time.monotonic() - started
    host = base.removeprefix("http://")
    assert caught.value.reason == f"cannot fetch the config from {host}: no answer within 1 s"
    assert not isinstance(caught.value, MeasurementTimeout)
    assert elapsed < 5


def test_unknown_interface_fails_before_any_traffic(ookla: OoklaTestServer) -> None:
    with pytest.raises(MeasurementError) as caught:
        run_speedtest(
            link=Link(interface="pfnosuch0"),
            server_id=None,
            timeout_s=30,
            config_override=ookla.speedtest_config(),
            servers_override=[ookla.entry()],
        )
    assert "interface pfnosuch0" in caught.value.reason
    assert ookla.paths == []
