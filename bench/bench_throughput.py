"""Throughput engine CPU cost: the same volume from the same local nginx, ours against curl.

Downloads ``--gb`` GB (10^9 bytes) from the harness's nginx (a sparse file, so the server costs
little) with: our engine (1 stream and ``--streams``), curl, speedtest-cli's own download
threads (HTTPDownloader, the request built the way speedtest.py builds it), httpx
``iter_raw()``, and blocking raw sockets in one thread per stream (the design the engine's
single event loop was measured against). CPU = user + sys seconds of the process doing the
work: ``getrusage(RUSAGE_SELF)`` deltas in process, ``RUSAGE_CHILDREN`` deltas for curl.
Goal: engine CPU per GB <= 1.5 x curl's (a Pi must not be the bottleneck).
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import header, line, spread
from probefleet.kinds.base import Link
from probefleet.kinds.common.endpoint import reach
from probefleet.kinds.common.http import parse_url, request_head
from probefleet.kinds.throughput.engine import Plan, run_direction

from tests.harness import NginxTestServer

Figures = tuple[float, float]  # (Mbit/s, CPU ms per GB)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(work: Callable[[], int], who: int = resource.RUSAGE_SELF) -> Figures:
    cpu0, t0 = _cpu(who), time.perf_counter()
    got = work()
    wall, cpu = time.perf_counter() - t0, _cpu(who) - cpu0
    return got * 8 / wall / 1e6, cpu / (got / 1e9) * 1000.0


def engine(url: str, total: int, streams: int) -> int:
    target = parse_url(url)
    endpoint, sock = reach(target, Link(), 4, 5.0)
    sock.close()
    plan = Plan(
        "download", streams, duration_s=600.0, grace_s=0.0, request_bytes=total, max_bytes=total
    )
    result = run_direction(
        endpoint,
        Link(),
        plan,
        lambda want: (request_head("GET", target, byte_range=(0, want - 1)), want),
    )
    return result.total_bytes


def curl(url: str, total: int) -> int:
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-r",
            f"0-{total - 1}",
            "-w",
            "%{size_download}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def _ranges(total: int, parts: int) -> list[tuple[int, int]]:
    step = -(-total // parts)
    return [(i, min(i + step, total) - 1) for i in range(0, total, step)]


def speedtest_cli(url: str, total: int, threads: int) -> int:
    """speedtest.py's HTTPDownloader threads, each on its share of the file, joined the way
    Speedtest.download() joins them (a 1 ms join loop)."""
    import speedtest

    opener = speedtest.build_opener(None, 10)
    start = time.perf_counter()
    workers = []
    for i, (first, last) in enumerate(_ranges(total, threads)):
        request = speedtest.build_request(
            url, headers={"Range": f"bytes={first}-{last}"}, bump=str(i)
        )
        worker = speedtest.HTTPDownloader(i, request, start, 600, opener=opener)
        worker.start()
        workers.append(worker)
    for worker in workers:
        while worker.is_alive():
            worker.join(timeout=0.001)
    return sum(sum(w.result) for w in workers)


def httpx_raw(url: str, total: int) -> int:
    import httpx

    got = 0
    with (
        httpx.Client(trust_env=False) as client,
        client.stream("GET", url, headers={"Range": f"bytes=0-{total - 1}"}) as response,
    ):
        for chunk in response.iter_raw():
            got += len(chunk)
    return got


def raw_threads(url: str, total: int, threads: int) -> int:
    """Blocking sockets, one thread each, recv_into a 1 MiB buffer per thread."""
    target = parse_url(url)
    counts = [0] * threads

    def work(i: int, first: int, last: int) -> None:
        buf = memoryview(bytearray(1 << 20))
        with socket.create_connection((target.host, target.port)) as sock:
            sock.sendall(request_head("GET", target, byte_range=(first, last)))
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            got = len(head.split(b"\r\n\r\n", 1)[1])
            while n := sock.recv_into(buf):
                got += n
            counts[i] = got

    pool = [
        threading.Thread(target=work, args=(i, a, b))
        for i, (a, b) in enumerate(_ranges(total, threads))
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(counts)


def summary(runs: list[Figures], index: int) -> tuple[float, float, float]:
    return spread([r[index] for r in runs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=2.0, help="GB (10^9 bytes) per download")
    parser.add_argument("--streams", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    total = int(args.gb * 1e9)
    n = args.streams
    with (
        tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp,
        NginxTestServer(Path(tmp), ipv6=False, large_size=max(total, 2 * 1024**3)) as server,
    ):
        url = server.large_url
        methods: dict[str, tuple[Callable[[], int], int]] = {
            "curl": (lambda: curl(url, total), resource.RUSAGE_CHILDREN),
            "engine 1 stream": (lambda: engine(url, total, 1), resource.RUSAGE_SELF),
            f"engine {n} streams": (lambda: engine(url, total, n), resource.RUSAGE_SELF),
            f"raw threads x{n}": (lambda: raw_threads(url, total, n), resource.RUSAGE_SELF),
            f"speedtest-cli x{n}": (lambda: speedtest_cli(url, total, n), resource.RUSAGE_SELF),
            "httpx iter_raw": (lambda: httpx_raw(url, total), resource.RUSAGE_SELF),
        }
        runs: dict[str, list[Figures]] = {name: [] for name in methods}
        for _ in range(args.repeat):  # interleaved, so drift in the machine hits all alike
            for name, (work, who) in methods.items():
                runs[name].append(measure(work, who))
    print(
        f"volume {total / 1e9:g} GB per download from nginx on 127.0.0.1; median of {args.repeat}"
    )
    header()
    ref = "curl -o /dev/null, same bytes, same run"
    for unit, index in (("CPU ms/GB", 1), ("Mbit/s", 0)):
        for name in methods:
            if name != "curl":
                line(name, summary(runs[name], index), summary(runs["curl"], index), unit, ref)
    curl_cpu = summary(runs["curl"], 1)[0]
    worst = max(summary(runs[k], 1)[0] for k in methods if k.startswith("engine"))
    verdict = "met" if worst <= 1.5 * curl_cpu else "MISSED"
    print(f"goal engine CPU/GB <= 1.5 x curl's: {verdict} (worst engine {worst / curl_cpu:.2f} x)")


if __name__ == "__main__":
    main()
