"""Accuracy of the `throughput` measurement on links shaped to 20, 60 and 150 Mbit/s.

A client and a server namespace joined by veth, tbf on both ends; nginx (the harness's test
server config) in the server namespace; `probe-agent measure throughput` in the client one.
The reference is the TCP goodput curl gets through the same link in the same test, one
stream, one fixed-size transfer each way; we must land within 5 % of it. The theoretical
goodput, rate × 1448 / 1514 (the TCP payload of a full Ethernet frame with timestamps), is
printed beside it. And the latency-under-load pings must not bias the reading when the
agent shares its CPU with a busy loop (issue 20).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_nginx import NetnsNginx

from tests.harness.netns import NetnsPair, netns_unavailable

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable())),
]

PROBE_AGENT = Path(sys.executable).with_name("probe-agent")
MEASURE_S = 5.0  # per direction, after the grace period: ~10 s of measuring per rate
PAYLOAD_SHARE = 1448 / 1514


def _curl(pair: NetnsPair, argv: list[str]) -> float:
    """Run curl in the client namespace; its -w figure (bytes/s) in Mbit/s."""
    got = pair.run(
        pair.client_ns,
        ["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", *argv],
        timeout=60,
    )
    return float(got.stdout) * 8 / 1e6


@pytest.mark.timeout(90)
@pytest.mark.parametrize("rate_mbit", [20, 60, 150])
def test_goodput_within_5_percent_of_curl(rate_mbit: int, tmp_path: Path) -> None:
    theory = rate_mbit * PAYLOAD_SHARE
    size = int(theory * 1e6 / 8 * MEASURE_S)  # about MEASURE_S seconds of transfer
    with NetnsPair(f"tp{rate_mbit}", ipv6=False, rate_mbit=rate_mbit) as pair:
        web = NetnsNginx(pair, tmp_path / "nginx")
        with web:
            curl_down = _curl(
                pair, ["-w", "%{speed_download}", "-r", f"0-{size - 1}", web.large_url]
            )
            body = tmp_path / "upload.bin"
            body.write_bytes(os.urandom(size))
            curl_up = _curl(
                pair, ["-w", "%{speed_upload}", "--data-binary", f"@{body}", web.upload_url]
            )
            config = tmp_path / "agent.toml"
            config.write_text(
                f"""[probe]
id = "accuracy-{rate_mbit}"
[measurements.throughput]
mode = "http"
download_url = "{web.large_url}"
upload_url = "{web.upload_url}"
ping_url = "{web.empty_url}"
duration_s = {MEASURE_S}
"""
            )
            run = pair.run(
                pair.client_ns,
                [str(PROBE_AGENT), "measure", "throughput", "--config", str(config)],
                timeout=60,
                check=False,
            )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)["data"]
    down, up = data["download_mbps"], data["upload_mbps"]
    print(
        f"\n{rate_mbit} Mbit/s link: theory {theory:.2f}; curl down {curl_down:.2f} up "
        f"{curl_up:.2f}; ours down {down:.2f} ({down / curl_down - 1:+.1%}) up {up:.2f} "
        f"({up / curl_up - 1:+.1%}); latency idle {data['latency_idle_ms']} ms, loaded "
        f"{data['latency_download_ms']} / {data['latency_upload_ms']} ms"
    )
    # The reference itself must be the shaped line, or the comparison proves nothing.
    assert curl_down == pytest.approx(theory, rel=0.08)
    assert curl_up == pytest.approx(theory, rel=0.08)
    assert down == pytest.approx(curl_down, rel=0.05)
    assert up == pytest.approx(curl_up, rel=0.05)
    assert data["download_duration_s"] == pytest.approx(MEASURE_S, abs=0.1)
    # tbf queues up to 50 ms: a loaded line shows it, an idle one does not.
    assert data["latency_download_ms"] > data["latency_idle_ms"]


@contextlib.contextmanager
def _busy_loop(cpu: int) -> Iterator[None]:
    """A Python busy loop pinned to ``cpu`` while the block runs."""
    spin = subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spin.kill()
        spin.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_loaded_pings_do_not_bias_the_reading_under_cpu_contention(tmp_path: Path) -> None:
    """20 Mbit/s, the agent pinned to the CPU a busy loop spins on: the download reads the
    line's goodput with the loaded-latency pings on (a ping every 250 ms from a thread) as
    with them off (no ping_url). Measured (bench_throughput.py contention, 6 runs each): the
    product over iperf3 -0.01 % with pings, +0.02 % without, sd 0.1 %."""
    cpu = (os.cpu_count() or 1) - 1
    theory = 20 * PAYLOAD_SHARE
    readings: dict[str, float] = {}
    with NetnsPair("tpcpu", ipv6=False, rate_mbit=20) as pair:
        web = NetnsNginx(pair, tmp_path / "nginx")
        with web, _busy_loop(cpu):
            for pings in ("on", "off"):
                config = tmp_path / f"agent-{pings}.toml"
                ping_url = web.empty_url if pings == "on" else ""
                config.write_text(
                    f"""[probe]
id = "contention"
[measurements.throughput]
mode = "http"
download_url = "{web.large_url}"
ping_url = "{ping_url}"
directions = ["download"]
duration_s = {MEASURE_S}
"""
                )
                run = pair.run(
                    pair.client_ns,
                    ["taskset", "-c", str(cpu), str(PROBE_AGENT), "measure", "throughput",
                     "--config", str(config)],
                    timeout=60, check=False,
                )  # fmt: skip
                assert run.returncode == 0, run.stderr
                data = json.loads(run.stdout)["data"]
                assert (data.get("latency_download_ms") is not None) == (pings == "on")
                readings[pings] = data["download_mbps"]
    print(f"\n20 Mbit/s under contention: theory {theory:.2f}; pings on {readings['on']:.2f}, off "
          f"{readings['off']:.2f} ({readings['on'] / readings['off'] - 1:+.2%})")  # fmt: skip
    assert readings["on"] == pytest.approx(readings["off"], rel=0.01)
    for mbps in readings.values():
        assert mbps == pytest.approx(theory, rel=0.015)
