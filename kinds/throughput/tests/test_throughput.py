"""The `throughput` measurement: config rules, HTTP framing, the engine against real nginx over
127.0.0.1 and ::1, LibreSpeed server lists with dead and refusing servers, byte caps, and
`probe-agent measure throughput` checked against the schema."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # untyped; types-jsonschema is not locked
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from librespeed_server import (
    ClosedPort,
    LibreSpeedServer,
    server_entry,
    write_server_list,
)
from probefleet.core import configkit, wire
from probefleet.kinds.base import Link
from probefleet.kinds.common.endpoint import Endpoint, reach
from probefleet.kinds.common.http import Dechunker, HttpError, parse_head, parse_url, request_head
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.throughput.engine import MiB, Plan, ServerFailed, run_direction
from probefleet.kinds.throughput.librespeed import download_request, parse_server_list
from probefleet.kinds.throughput.measure import Throughput, ThroughputConfig
from probefleet.kinds.throughput.payload import ThroughputData, ThroughputResult
from probefleet.kinds.throughput.samples import settled, window

from tests.harness import NginxTestServer

ROOT = Path(__file__).resolve().parents[3]
PROBE_AGENT = Path(sys.executable).with_name("probe-agent")
LINK = Link()
# Short tests: what is checked here is behaviour, not the line (the netns tests do that).
# Loopback rates never settle within 5 %: bound the warm-up as the old 2 x grace did.
FAST = {"duration_s": 1.0, "grace_download_s": 0.3, "grace_upload_s": 0.3, "warmup_max_s": 0.6}


def _cfg(**options: Any) -> ThroughputConfig:
    return configkit.build(options, ThroughputConfig)


def _http(server: NginxTestServer, v6: bool = False, **options: Any) -> ThroughputConfig:
    base = server.base_url_v6 if v6 else server.base_url
    assert base is not None
    urls = {
        "download_url": f"{base}/files/large.bin",
        "upload_url": f"{base}/upload",
        "ping_url": f"{base}/empty",
    }
    return _cfg(mode="http", **{**urls, **FAST, **options})


# --- config (no network) -------------------------------------------------------------------


def test_defaults_are_valid_and_documented_ones() -> None:
    cfg = ThroughputConfig()
    assert (cfg.interval_s, cfg.mode, cfg.streams_download, cfg.streams_upload) == (
        3600,
        "librespeed",
        6,
        3,
    )
    assert (cfg.duration_s, cfg.grace_download_s, cfg.grace_upload_s) == (10.0, 1.5, 3.0)
    assert (cfg.warmup_max_s, cfg.warmup_tolerance_pct, cfg.tls) == (8.0, 5.0, [])
    assert (cfg.max_bytes, cfg.ip_version, cfg.adaptive) == (0, 0, False)
    assert cfg.directions == ["download", "upload"]
    assert Throughput.heavy
    Throughput(cfg)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"mode": "http"}, "measurements.throughput.download_url: required"),
        (
            {"mode": "http", "download_url": "http://h/f", "directions": ["download", "upload"]},
            "measurements.throughput.upload_url: required",
        ),
        ({"download_url": "ftp://h/f"}, "measurements.throughput.download_url = 'ftp://h/f'"),
        ({"ping_url": "h/empty"}, "measurements.throughput.ping_url = 'h/empty'"),
        ({"directions": []}, "measurements.throughput.directions = []"),
        ({"directions": ["upload", "upload"]}, "measurements.throughput.directions = "),
        ({"server_list": ""}, "measurements.throughput.server_list: required"),
        (
            {"adaptive": True, "adaptive_min_s": 20, "duration_s": 10},
            "measurements.throughput.adaptive_min_s = 20",
        ),
        ({"max_bytes": 1000}, "measurements.throughput.max_bytes = 1000"),
    ],
)
def test_constructor_names_the_key(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match="^" + problem.replace("[", r"\[")):
        Throughput(_cfg(**options))


def test_http_mode_needs_only_the_directions_it_measures() -> None:
    Throughput(_cfg(mode="http", download_url="http://h/f", directions=["download"]))


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"ip_version": 5}, "ip_version"),
        ({"streams_download": 0}, "streams_download"),
        ({"streams_upload": 65}, "streams_upload"),
        ({"mode": "ookla"}, "mode"),
        ({"directions": ["sideways"]}, "directions[0]"),
    ],
)
def test_types_reject_out_of_range_values(options: dict[str, Any], key: str) -> None:
    problems = configkit.problems_in(options, ThroughputConfig)
    assert [k for k, _, _ in problems] == [key]


# --- HTTP framing and server lists (no network) --------------------------------------------


def test_urls_parse_with_ports_ipv6_and_protocol_relative_form() -> None:
    target = parse_url("http://[::1]:8080/files/x.bin?a=1")
    assert (target.host, target.port, target.path, target.host_header) == (
        "::1",
        8080,
        "/files/x.bin?a=1",
        "[::1]:8080",
    )
    assert parse_url("//speed.example/backend/").url == "http://speed.example/backend/"
    assert parse_url("http://h").path == "/"
    assert parse_url("http://h/x").with_query("r=1").path == "/x?r=1"


def test_response_heads_parse_status_length_and_framing() -> None:
    head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\nConnection: keep-alive")
    assert (head.status, head.content_length, head.chunked, head.keep_alive) == (
        200,
        42,
        False,
        True,
    )
    chunked = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9")
    assert (chunked.chunked, chunked.content_length) == (True, None)
    refused = parse_head(b"HTTP/1.0 503 Service Unavailable")
    assert (refused.ok, refused.keep_alive, refused.describe()) == (
        False,
        False,
        "HTTP 503 Service Unavailable",
    )
    with pytest.raises(HttpError, match="not an HTTP"):
        parse_head(b"SSH-2.0-OpenSSH_9.2")


@given(
    payloads=st.lists(st.binary(min_size=1, max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=200),
)
def test_dechunker_counts_payload_only_however_the_stream_is_cut(
    payloads: list[bytes], cuts: list[int]
) -> None:
    wire_bytes = b"".join(f"{len(p):x};ext=1\r\n".encode() + p + b"\r\n" for p in payloads)
    wire_bytes += b"0\r\n\r\n"
    chunks, counted, pos, i = Dechunker(), 0, 0, 0
    while pos < len(wire_bytes):
        step = cuts[i % len(cuts)]
        counted += chunks.feed(wire_bytes, pos, min(pos + step, len(wire_bytes)))
        pos += step
        i += 1
    assert chunks.done
    assert counted == sum(map(len, payloads))


def _series(rates_mbit: list[float], step_s: float = 0.2) -> list[tuple[float, int]]:
    samples, total = [(100.0, 0)], 0
    for i, rate in enumerate(rates_mbit, 1):
        total += int(rate * 1e6 / 8 * step_s)
        samples.append((100.0 + i * step_s, total))
    return samples


def test_the_window_opens_only_once_the_rate_has_settled() -> None:
    assert settled(_series([5, 19, 19.3, 18.9]))
    # A stall, then the held-back bytes all at once: not yet.
    assert not settled(_series([19, 19, 13.2, 27.5]))
    assert not settled(_series([19, 0, 19]))
    assert not settled(_series([19, 19]))  # too few intervals to tell


def test_goodput_is_the_windows_bytes_over_its_seconds() -> None:
    samples = _series([10.0] * 5 + [20.0] * 10)
    counted, seconds, start = window(samples, 5)
    assert (seconds, start) == pytest.approx((2.0, 101.0))
    assert counted * 8 / seconds / 1e6 == pytest.approx(20.0)
    # No usable window after the grace sample: count from the start instead.
    assert window(samples[:6], 5)[0] == samples[5][1]


def test_server_list_entries_become_http_urls() -> None:
    servers = parse_server_list(
        [
            {
                "id": 7,
                "name": "Đồng Nai",
                "server": "//speed.dongnai.example/backend",
                "dlURL": "garbage.php",
                "ulURL": "/empty.php",
                "pingURL": "empty.php",
                "getIpURL": "getIP.php",
            }
        ]
    )
    (server,) = servers
    assert server.id == "7"
    assert server.dl_url == "http://speed.dongnai.example/backend/garbage.php"
    # Paths are appended to "server" as LibreSpeed's client does, with one slash between.
    assert server.ul_url == "http://speed.dongnai.example/backend/empty.php"
    with pytest.raises(ValueError, match=r"\[0\]: missing dlURL"):
        parse_server_list([{"name": "x", "server": "//h/", "ulURL": "u", "pingURL": "p"}])
    with pytest.raises(ValueError, match="non-empty JSON array"):
        parse_server_list({"servers": []})


# --- against real nginx ----------------------------------------------------------------------


def _check_consistent(data: ThroughputData, cfg: ThroughputConfig) -> None:
    """Figures that must agree with each other whatever the machine's speed."""
    for direction, streams in (("download", cfg.streams_download), ("upload", cfg.streams_upload)):
        mbps = getattr(data, f"{direction}_mbps")
        got = getattr(data, f"{direction}_bytes")
        seconds = getattr(data, f"{direction}_duration_s")
        assert got > 0
        assert seconds == pytest.approx(cfg.duration_s, abs=0.15)
        assert mbps == pytest.approx(got * 8 / seconds / 1e6, rel=2e-3)
        assert getattr(data, f"{direction}_streams") == streams
        assert getattr(data, f"latency_{direction}_ms") is not None


@pytest.mark.integration
def test_http_mode_over_ipv4(http_server: NginxTestServer) -> None:
    cfg = _http(http_server, streams_download=4, streams_upload=2)
    data = Throughput(cfg).run(LINK)
    assert (data.method, data.ip_version, data.failed_servers) == ("http", 4, [])
    assert data.server_url == http_server.large_url
    _check_consistent(data, cfg)
    assert data.latency_idle_ms is not None
    assert data.jitter_ms is not None


@pytest.mark.integration
def test_http_mode_over_ipv6(http_server: NginxTestServer) -> None:
    if not http_server.has_ipv6:
        pytest.skip("::1 is not available here")
    cfg = _http(http_server, v6=True, ip_version=6)
    data = Throughput(cfg).run(LINK)
    assert data.ip_version == 6
    _check_consistent(data, cfg)


@pytest.mark.integration
def test_forced_ip_version_is_honoured(http_server: NginxTestServer) -> None:
    if not http_server.has_ipv6:
        pytest.skip("::1 is not available here")
    with pytest.raises(MeasurementError, match="over IPv4"):
        Throughput(_http(http_server, v6=True, ip_version=4)).run(LINK)


@pytest.mark.integration
def test_byte_cap_stops_the_test_early(http_server: NginxTestServer) -> None:
    cap = 64 * MiB
    cfg = _http(http_server, max_bytes=cap, duration_s=30.0, grace_download_s=0, grace_upload_s=0)
    data = Throughput(cfg).run(LINK)
    assert data.download_bytes is not None
    assert data.upload_bytes is not None
    # grace 0: the counted bytes are all the bytes; one receive buffer of slack at most.
    assert cap * 0.9 <= data.download_bytes <= cap + MiB
    assert cap * 0.9 <= data.upload_bytes <= cap
    assert data.download_duration_s is not None
    assert data.download_duration_s < 10.0


@pytest.mark.integration
def test_adaptive_duration_stops_once_stable(http_server: NginxTestServer) -> None:
    cfg = _http(
        http_server,
        directions=["download"],
        duration_s=20.0,
        adaptive=True,
        adaptive_min_s=1.0,
        adaptive_window_s=0.6,
        adaptive_tolerance_pct=50.0,
    )
    data = Throughput(cfg).run(LINK)
    assert data.download_duration_s is not None
    assert 1.0 <= data.download_duration_s < 10.0
    assert data.upload_mbps is None


@pytest.mark.integration
def test_without_ping_url_there_are_no_latency_figures(http_server: NginxTestServer) -> None:
    cfg = msgspec.structs.replace(_http(http_server, directions=["upload"]), ping_url="")
    data = Throughput(cfg).run(LINK)
    assert data.upload_mbps is not None
    assert data.download_mbps is None
    assert (data.latency_idle_ms, data.latency_upload_ms, data.jitter_ms) == (None, None, None)


@pytest.mark.integration
def test_missing_file_is_a_refusal_with_its_status(http_server: NginxTestServer) -> None:
    cfg = _http(http_server, directions=["download"], download_url=http_server.base_url + "/nope")
    with pytest.raises(MeasurementError, match="HTTP 404 Not Found for download"):
        Throughput(cfg).run(LINK)


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """Accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        stop = threading.Event()
        held: list[socket.socket] = []

        def accept() -> None:
            server.settimeout(0.1)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    held.append(server.accept()[0])

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        stop.set()
        thread.join()
        for conn in held:
            conn.close()


@pytest.mark.integration
def test_dead_and_silent_servers_fail_within_the_timeout(silent_listener: int) -> None:
    closed = ClosedPort()
    try:
        for port in (closed.port, silent_listener):
            url = f"http://127.0.0.1:{port}/big"
            cfg = _cfg(mode="http", download_url=url, directions=["download"], **FAST)
            cfg = msgspec.structs.replace(cfg, connect_timeout_s=0.5)
            with pytest.raises(MeasurementError) as caught:
                Throughput(cfg).run(LINK)
            assert url in caught.value.reason
            assert "refused" in caught.value.reason or "no answer" in caught.value.reason
    finally:
        closed.close()


@pytest.mark.integration
def test_upload_counts_acknowledged_bytes_not_bytes_handed_to_the_kernel() -> None:
    """A server that never reads can hold (and so acknowledge) only its receive buffer;
    the kernel takes megabytes more into our send buffer, which must not count."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        target = parse_url(f"http://127.0.0.1:{port}/sink")
        endpoint, sock = reach(target, LINK, 4, 2.0)
        held = [sock, server.accept()[0]]  # the probe connection: accepted, left alone
        accepting = threading.Thread(target=lambda: held.append(server.accept()[0]))
        accepting.start()
        plan = Plan("upload", 1, duration_s=1.0, grace_s=0.0, request_bytes=1 << 30)
        result = run_direction(
            endpoint,
            LINK,
            plan,
            lambda want: (request_head("POST", target, content_length=want), want),
        )
        accepting.join(5)
        rcvbuf = held[-1].getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        for conn in held:
            conn.close()
    assert 0 < result.total_bytes <= rcvbuf


# --- LibreSpeed servers ------------------------------------------------------------------


@pytest.fixture
def three_servers(tmp_path: Path) -> Iterator[tuple[Path, LibreSpeedServer, list[str]]]:
    """A list: a dead server (closed port), a refusing one (503), then a good one."""
    dead = ClosedPort()
    with LibreSpeedServer(refuse={"*"}) as busy, LibreSpeedServer(ipv6=True) as good:
        entries = [
            server_entry(1, "dead", dead.base_url),
            busy.entry(2, "busy"),
            good.entry(3, "good"),
        ]
        path = write_server_list(tmp_path / "servers.json", entries)
        good.list_json = path.read_bytes()
        yield path, good, [dead.base_url, busy.base_url]
    dead.close()


@pytest.mark.integration
@pytest.mark.parametrize("server_id", ["", "1"])
def test_librespeed_falls_back_past_dead_and_refusing_servers(
    three_servers: tuple[Path, LibreSpeedServer, list[str]], server_id: str
) -> None:
    """By lowest ping, or starting from the dead server by id: the good one answers."""
    path, good, failed = three_servers
    cfg = _cfg(server_list=str(path), server_id=server_id, connect_timeout_s=2.0, **FAST)
    data = Throughput(cfg).run(LINK)
    assert (data.method, data.server_name, data.server_id) == ("librespeed", "good", "3")
    assert data.server_url == good.base_url
    assert data.failed_servers == failed
    _check_consistent(data, cfg)
    # The cache-buster on every request, and the download asked in MiB chunks.
    assert any(r.startswith("GET /garbage.php?ckSize=100&r=0.") for r in good.requests)
    assert any(r.startswith("POST /empty.php?r=0.") for r in good.requests)


@pytest.mark.integration
def test_librespeed_list_from_a_url_and_forced_ipv6(
    three_servers: tuple[Path, LibreSpeedServer, list[str]],
) -> None:
    path, good, _ = three_servers
    entries = json.loads(path.read_text())
    entries[2] = good.entry(3, "good", v6=True)
    good.list_json = json.dumps(entries).encode()
    cfg = _cfg(
        server_list=good.base_url + "servers.json", ip_version=6, connect_timeout_s=2.0, **FAST
    )
    data = Throughput(cfg).run(LINK)
    assert (data.server_id, data.ip_version) == ("3", 6)
    assert good.peers == {"127.0.0.1", "::1"}  # the list over IPv4, every test over IPv6


@pytest.mark.integration
def test_a_server_refusing_only_downloads_is_skipped(tmp_path: Path) -> None:
    with LibreSpeedServer(refuse={"garbage.php"}) as half, LibreSpeedServer() as good:
        path = write_server_list(
            tmp_path / "s.json", [half.entry(1, "half"), good.entry(2, "good")]
        )
        cfg = _cfg(server_list=str(path), server_id="1", **FAST)
        data = Throughput(cfg).run(LINK)
    assert data.server_id == "2"
    assert data.failed_servers == [half.base_url]


@pytest.mark.integration
def test_every_server_dead_names_each_reason(tmp_path: Path) -> None:
    dead = ClosedPort()
    try:
        with LibreSpeedServer(refuse={"*"}) as busy:
            path = write_server_list(
                tmp_path / "s.json",
                [server_entry(1, "dead", dead.base_url), busy.entry(2, "busy")],
            )
            with pytest.raises(MeasurementError) as caught:
                Throughput(_cfg(server_list=str(path), connect_timeout_s=1.0, **FAST)).run(LINK)
    finally:
        dead.close()
    reason = caught.value.reason
    assert f"{dead.base_url}: ping: cannot connect" in reason
    assert f"{busy.base_url}: ping: HTTP 503" in reason


@pytest.mark.integration
def test_unknown_server_id_and_bad_list_are_reasons(tmp_path: Path) -> None:
    with LibreSpeedServer() as good:
        path = write_server_list(tmp_path / "s.json", [good.entry(1, "good")])
        with pytest.raises(MeasurementError, match=r"server_id = '9' is not in .*\(ids: 1\)"):
            Throughput(_cfg(server_list=str(path), server_id="9")).run(LINK)
        with pytest.raises(MeasurementError, match=r"server list .*HTTPStatusError"):
            Throughput(_cfg(server_list=good.base_url + "missing.json")).run(LINK)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(MeasurementError, match=r"server list .*bad\.json"):
        Throughput(_cfg(server_list=str(tmp_path / "bad.json"))).run(LINK)


@pytest.mark.integration
def test_chunked_framing_is_not_counted() -> None:
    """Three garbage.php responses of 4 MiB each under a 12 MiB cap: exactly 12 MiB counted,
    although chunk headers and trailers crossed the wire too."""
    with LibreSpeedServer() as server:
        target = parse_url(server.base_url + "garbage.php")
        endpoint, sock = reach(target, LINK, 4, 2.0)
        sock.close()
        plan = Plan(
            "download", 1, duration_s=20.0, grace_s=0.0, request_bytes=4 * MiB, max_bytes=12 * MiB
        )
        result = run_direction(endpoint, LINK, plan, download_request(target))
    assert result.total_bytes == 12 * MiB
    assert result.connections == 3
    assert result.stopped_by == "cap"
    assert sum(r.startswith("GET /garbage.php?ckSize=4&r=") for r in server.requests) == 3


@pytest.mark.integration
def test_bodies_ended_by_close_are_counted_and_followed_by_new_requests() -> None:
    """An HTTP/1.0-style server: no length, no chunks, the body ends when it closes."""
    body = os.urandom(256 * 1024)
    with socket.create_server(("127.0.0.1", 0)) as server:

        def serve() -> None:
            for _ in range(3):
                conn, _ = server.accept()
                with conn:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: x/y\r\n\r\n" + body)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        target = parse_url(f"http://127.0.0.1:{server.getsockname()[1]}/file")
        endpoint = Endpoint(target, socket.AF_INET, ("127.0.0.1", server.getsockname()[1]))
        plan = Plan(
            "download",
            1,
            duration_s=10.0,
            grace_s=0.0,
            request_bytes=len(body),
            max_bytes=3 * len(body),
        )
        result = run_direction(
            endpoint, LINK, plan, lambda want: (request_head("GET", target), want)
        )
        thread.join(5)
    assert (result.total_bytes, result.connections, result.stopped_by) == (3 * len(body), 3, "cap")


@pytest.mark.integration
def test_refusal_mid_list_raises_server_failed_with_the_status() -> None:
    with LibreSpeedServer(refuse={"garbage.php"}) as server:
        target = parse_url(server.base_url + "garbage.php")
        endpoint, sock = reach(target, LINK, 4, 2.0)
        sock.close()
        plan = Plan("download", 3, duration_s=5.0, grace_s=0.0, request_bytes=4 * MiB)
        with pytest.raises(ServerFailed, match="HTTP 503"):
            run_direction(endpoint, LINK, plan, download_request(target))


# --- the command a technician runs -------------------------------------------------------


@pytest.mark.integration
def test_probe_agent_measure_throughput_prints_a_valid_result(
    http_server: NginxTestServer, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""[probe]
id = "dongnai-tanphu-01"
[measurements.throughput]
mode = "http"
download_url = "{http_server.large_url}"
upload_url = "{http_server.upload_url}"
ping_url = "{http_server.empty_url}"
duration_s = 1.0
grace_download_s = 0.3
grace_upload_s = 0.3
warmup_max_s = 0.6
"""
    )
    proc = subprocess.run(
        [str(PROBE_AGENT), "measure", "throughput", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    schema = json.loads((ROOT / "schema" / "result.schema.json").read_text())
    jsonschema.validate(printed, schema)
    result = wire.decode_result(proc.stdout)
    assert isinstance(result, ThroughputResult)
    assert result.status == "ok"
    golden = json.loads((ROOT / "tests" / "golden" / "result-throughput.json").read_text())
    # Everything the golden example shows is filled in, except the fallback list (no
    # server failed here) and what only HTTPS has (test_throughput_tls.py).
    assert set(golden["data"]) - set(printed["data"]) == {
        "failed_servers",
        "server_id",
        "tls_version",
        "tls_cipher",
    }
    assert printed["data"]["method"] == "http"


# --- under the destination guard (a remote config's names; kinds.common.destinations) -----


def test_a_remote_upload_target_on_the_lan_is_never_reached() -> None:
    from probefleet.kinds.common.destinations import Guard, Policy, guarded

    from tests.hostile.listener import CountingListener

    with CountingListener() as router:
        test = Throughput(configkit.build(
            {"mode": "http", "directions": ["upload"], "upload_url": f"http://localhost:{router.port}/up",
             "ping_url": f"http://localhost:{router.port}/ping", "duration_s": 1.0,
             "grace_upload_s": 0.0, "connect_timeout_s": 1.0},
            ThroughputConfig,
        ))  # fmt: skip
        with guarded(Guard(Policy(["localhost"]))), pytest.raises(MeasurementError) as failed:
            test.run(Link())
    assert "localhost resolves to" in failed.value.reason
    assert "loopback ([remote] allow_private = false)" in failed.value.reason
    assert router.connections == 0


def test_servers_of_a_list_the_file_names_are_trusted_a_remote_lists_are_not(
    tmp_path: Path,
) -> None:
    from probefleet.kinds.common.destinations import Guard, Policy, Refused, guarded
    from probefleet.kinds.throughput.librespeed import load_server_list

    from tests.hostile.listener import CountingListener

    listed = [{"name": "lan", "server": "http://router.lan/", "dlURL": "garbage.php",
               "ulURL": "empty.php", "pingURL": "empty.php"}]  # fmt: skip
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(listed))
    guard = Guard(Policy(["localhost"]))
    with guarded(guard):
        load_server_list(str(path), Link(), 1.0)  # a file: only the probe's own file names one
    assert guard.trusts("router.lan")
    refused = pytest.raises(Refused, match=r"server list http://localhost:\d+/s\.json: refused")
    with CountingListener() as lists, guarded(Guard(Policy(["localhost"]))), refused:
        load_server_list(f"http://localhost:{lists.port}/s.json", Link(), 1.0)
    assert lists.connections == 0
