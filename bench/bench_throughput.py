"""Throughput engine: CPU cost per GB on loopback (``cpu``), accuracy on shaped links (``matrix``).

``cpu`` (the default): downloads ``--gb`` GB (10^9 bytes) from the harness's nginx (a sparse
file, so the server costs little) with: our engine (1 stream and ``--streams``), over HTTP
and HTTPS, curl over both, speedtest-cli's own download threads (HTTPDownloader, the request
built the way speedtest.py builds it), httpx ``iter_raw()``, and blocking raw sockets in one
thread per stream (the design the engine's single event loop was measured against). CPU =
user + sys seconds of the process doing the work: ``getrusage(RUSAGE_SELF)`` deltas in
process, ``RUSAGE_CHILDREN`` deltas for curl. Goals: engine CPU per GB <= 1.5 x curl's over
HTTP, <= 1.3 x curl's over HTTPS (a Pi must not be the bottleneck).

``matrix`` (root, iproute2, iperf3, nginx, curl): a client and a server namespace joined by
veth, shaped with tbf at each rate, delayed and made lossy with netem (or, where the kernel
has no netem, lossy with an nftables input rule, and the RTT cells skipped), the congestion
control set in both namespaces; in each cell iperf3 (same stream count, ``-O`` omitting its
own warm-up; ``-R`` for download), curl (one stream, about ``--duration`` seconds of data:
``-r`` of the large file down, ``-T`` of a sparse file POSTed to nginx's reading sink up) and
the product (the ``throughput`` measurement, its warm-up and loaded pings included) move data
through the same link, download and upload, as ratios to the shaped rate, and CPU seconds
per GB for curl and the product. Targets: within 2 % of iperf3 wherever iperf3 reaches 90 %
of the rate; the product's HTTPS CPU per GB <= 1.3 x curl's HTTPS. ``--quick`` runs a
handful of links, both ways. ``contention``: the loaded-latency pings on and off, with and
without pinned busy loops, beside iperf3 (see _tp_contention)::

    sudo .venv/bin/python bench/bench_throughput.py matrix --quick
    sudo .venv/bin/python bench/bench_throughput.py matrix          # every cell: hours
    sudo .venv/bin/python bench/bench_throughput.py contention --repeat 6
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import signal
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
from probefleet.kinds.common.tls import TlsClient, TlsPolicy
from probefleet.kinds.throughput.engine import Plan, run_direction

from tests.harness.tls_nginx import TlsTestServer, make_cert

Figures = tuple[float, float]  # (Mbit/s, CPU ms per GB)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(work: Callable[[], int], who: int = resource.RUSAGE_SELF) -> Figures:
    cpu0, t0 = _cpu(who), time.perf_counter()
    got = work()
    wall, cpu = time.perf_counter() - t0, _cpu(who) - cpu0
    return got * 8 / wall / 1e6, cpu / (got / 1e9) * 1000.0


def engine(url: str, total: int, streams: int, ca_file: str = "") -> int:
    target = parse_url(url)
    endpoint, sock = reach(target, Link(), 4, 5.0)
    tls = None
    if target.tls:  # as the measurement does: one full handshake, then resumed streams
        tls = TlsClient.for_server(target.host, url, TlsPolicy(ca_file=ca_file))
        sock = tls.handshake(sock, 5.0)
    sock.close()
    plan = Plan(
        "download", streams, duration_s=600.0, grace_s=0.0, request_bytes=total, max_bytes=total
    )
    result = run_direction(
        endpoint,
        Link(),
        plan,
        lambda want: (request_head("GET", target, byte_range=(0, want - 1)), want),
        tls,
    )
    return result.total_bytes


def curl(url: str, total: int, ca_file: str = "") -> int:
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--noproxy",
            "*",
            *(["--cacert", ca_file] if ca_file else []),
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


def cpu_main(args: argparse.Namespace) -> None:
    total = int(args.gb * 1e9)
    n = args.streams
    with tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp:
        cert, key = _self_signed(Path(tmp) / "ca", "IP:127.0.0.1")
        with TlsTestServer(
            Path(tmp) / "web", cert, key, ipv6=False, large_size=max(total, 2 * 1024**3)
        ) as server:
            url, tls_url, ca = server.large_url, server.tls_url("/files/large.bin"), str(cert)
            methods: dict[str, tuple[Callable[[], int], int]] = {
                "curl": (lambda: curl(url, total), resource.RUSAGE_CHILDREN),
                "curl https": (lambda: curl(tls_url, total, ca), resource.RUSAGE_CHILDREN),
                "engine 1 stream": (lambda: engine(url, total, 1), resource.RUSAGE_SELF),
                f"engine {n} streams": (lambda: engine(url, total, n), resource.RUSAGE_SELF),
                "engine https 1 stream": (
                    lambda: engine(tls_url, total, 1, ca),
                    resource.RUSAGE_SELF,
                ),
                f"engine https {n} streams": (
                    lambda: engine(tls_url, total, n, ca),
                    resource.RUSAGE_SELF,
                ),
                f"raw threads x{n}": (lambda: raw_threads(url, total, n), resource.RUSAGE_SELF),
                f"speedtest-cli x{n}": (
                    lambda: speedtest_cli(url, total, n),
                    resource.RUSAGE_SELF,
                ),
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
    for unit, index in (("CPU ms/GB", 1), ("Mbit/s", 0)):
        for name in methods:
            if name.startswith("curl"):
                continue
            ref_name = "curl https" if "https" in name else "curl"
            ref = f"{ref_name} -o /dev/null, same bytes, same run"
            line(name, summary(runs[name], index), summary(runs[ref_name], index), unit, ref)
    for proto, ref_name, goal in (("http", "curl", 1.5), ("https", "curl https", 1.3)):
        curl_cpu = summary(runs[ref_name], 1)[0]
        engines = [
            k for k in methods if k.startswith("engine") and (("https" in k) == (proto == "https"))
        ]
        worst = max(summary(runs[k], 1)[0] for k in engines)
        verdict = "met" if worst <= goal * curl_cpu else "MISSED"
        print(
            f"goal engine {proto} CPU/GB <= {goal} x {ref_name}'s: {verdict} "
            f"(worst engine {worst / curl_cpu:.2f} x)"
        )


def _self_signed(workdir: Path, san: str) -> tuple[Path, Path]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return make_cert(
        workdir,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=7),
        san=san,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    cpu = sub.add_parser("cpu", help="CPU per GB on loopback (the default)")
    for p in (parser, cpu):
        p.add_argument("--gb", type=float, default=2.0, help="GB (10^9 bytes) per download")
        p.add_argument("--streams", type=int, default=6)
        p.add_argument("--repeat", type=int, default=5)
    import _tp_contention
    from _tp_matrix import add_arguments, matrix_main
    from _tp_testbed import cell_main

    add_arguments(sub)
    _tp_contention.add_arguments(sub)
    args = parser.parse_args()
    # Stopped by a signal, the namespaces, nginx and busy loops are still torn down: SIGTERM
    # exits through the `with` blocks, and SIGINT does even where a shell started us with it
    # ignored (a background job).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.command == "matrix":
        matrix_main(args)
    elif args.command == "contention":
        _tp_contention.contention_main(args)
    elif args.command == "_cell":
        cell_main(args)
    else:
        cpu_main(args)


if __name__ == "__main__":
    main()
