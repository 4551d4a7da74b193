"""The accuracy matrix of bench_throughput.py: shaped namespaces, iperf3, curl and the product.

Each cell = (rate, RTT, loss, congestion control, IP version, HTTP or HTTPS, direction). One
namespace pair for the whole run, reshaped per link; nginx (HTTP and HTTPS, its ``/upload``
sink reading every body byte) and an iperf3 server in the server namespace; every client runs
in the client namespace. Download: ``iperf3 -R``, ``curl -r 0-N`` of the large file, the
product's GETs. Upload: ``iperf3`` (the client sends), ``curl -T`` of a sparse file (zeros:
nothing on the path compresses) POSTed to ``/upload``, the product's POSTs to the same sink.
The test bed and the clients: :mod:`_tp_testbed`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _tp_testbed import Testbed, load_average, run_curl, run_iperf3, run_product, set_cc, shape

RATES = [20, 60, 150, 300, 900]
RTTS = [0, 20, 40, 80]
LOSSES = [0.0, 0.5]
CCS = ["cubic", "reno", "bbr"]
IPS = [4, 6]
PROTOS = ["http", "https"]
DIRECTIONS = ["download", "upload"]
# (rate, rtt, loss, cc, ip, proto) links, each run in every --directions: a handful that touch
# every dimension but the long ones (two IPv6 links at RTT 0, so that IPv6 runs on a kernel
# without netem too).
QUICK = [
    (20, 0, 0.0, "cubic", 4, "http"),
    (150, 0, 0.0, "reno", 4, "https"),
    (150, 0, 0.5, "cubic", 4, "http"),
    (60, 0, 0.0, "bbr", 6, "https"),
    (300, 0, 0.0, "cubic", 6, "http"),
    (60, 20, 0.0, "bbr", 6, "https"),
    (300, 40, 0.0, "reno", 4, "http"),
]
CellKey = tuple[int, int, float, str, int, str, str]
CPU_MIN_RATE = 150  # Mbit/s: the CPU-per-GB summary's cells


@dataclass
class Cell:
    rate: int
    rtt: int
    loss: float
    cc: str
    ip: int
    proto: str
    direction: str = "download"
    iperf3: float | None = None
    curl: float | None = None
    product: float | None = None
    warmup_s: float | None = None
    cpu_curl: float | None = None  # CPU s per GB
    cpu_product: float | None = None
    cipher: str | None = None
    skipped: str = ""
    notes: list[str] = field(default_factory=list)


def add_arguments(sub: Any) -> None:
    m = sub.add_parser("matrix", help="accuracy on shaped links beside iperf3 and curl (root)")
    m.add_argument("--quick", action="store_true", help=f"only {len(QUICK)} links, each way")
    m.add_argument("--duration", type=float, default=5.0, help="measured seconds per tool")
    m.add_argument("--streams", type=int, default=6, help="download streams (product, iperf3)")
    m.add_argument("--streams-upload", type=int, default=3, help="upload streams (idem)")
    m.add_argument("--rates", type=int, nargs="+", default=RATES)
    m.add_argument("--rtts", type=int, nargs="+", default=RTTS, help="ms, round trip")
    m.add_argument("--losses", type=float, nargs="+", default=LOSSES, help="percent")
    m.add_argument("--ccs", nargs="+", default=CCS)
    m.add_argument("--ips", type=int, nargs="+", default=IPS)
    m.add_argument("--protos", nargs="+", default=PROTOS)
    m.add_argument("--directions", nargs="+", default=DIRECTIONS, choices=DIRECTIONS)
    m.add_argument("--json", type=Path, help="also write every cell here")
    c = sub.add_parser("_cell", help=argparse.SUPPRESS)
    c.add_argument("--url", required=True)
    c.add_argument("--ping", required=True)
    c.add_argument("--ca", default="")
    c.add_argument("--streams", type=int, required=True)
    c.add_argument("--duration", type=float, required=True)
    c.add_argument("--direction", choices=DIRECTIONS, default="download")
    c.add_argument(
        "--no-loaded-pings",
        action="store_true",
        help="no latency-under-load pings (idle ones kept)",
    )


# --- the run -----------------------------------------------------------------------------------


def cells(args: argparse.Namespace) -> list[CellKey]:
    links = (
        QUICK
        if args.quick
        else itertools.product(args.rates, args.rtts, args.losses, args.ccs, args.ips, args.protos)
    )
    return [(*link, d) for link in links for d in args.directions]


def run_cell(bed: Testbed, cell: Cell, args: argparse.Namespace, iperf: dict[Any, Any]) -> None:
    """iperf3 (once per link and direction), curl and the product, into ``cell``."""
    up = cell.direction == "upload"
    streams = args.streams_upload if up else args.streams
    key = (cell.rate, cell.rtt, cell.loss, cell.cc, cell.ip, cell.direction)
    if key not in iperf:  # iperf3 has no HTTPS: once per link and direction
        iperf[key] = run_iperf3(bed.pair, bed.addr(cell.ip), streams, args.duration, upload=up)
    cell.iperf3 = iperf[key]
    tls = cell.proto == "https"
    ca = bed.ca if tls else ""
    url, ping = bed.url(cell.direction, ip=cell.ip, tls=tls)
    size = int(cell.rate * 1e6 / 8 * args.duration)
    cell.curl, cell.cpu_curl = run_curl(bed.pair, url, size, ca, bed.body(size) if up else None)
    got = run_product(
        bed.pair, url, ping, ca, streams=streams, duration=args.duration, direction=cell.direction
    )
    if got is not None:
        cell.product, cell.warmup_s = got["mbps"], got["warmup_s"]
        cell.cipher = got["cipher"]
        if got["bytes"]:
            cell.cpu_product = got["cpu_s"] / (got["bytes"] / 1e9)


def matrix_main(args: argparse.Namespace) -> None:
    from tests.harness.netns import netns_unavailable

    why = netns_unavailable()
    if why:
        sys.exit(f"matrix: {why}")
    todo = cells(args)
    results: list[Cell] = []
    started = time.monotonic()
    print(f"load average at the start: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp, Testbed(Path(tmp)) as bed:
        last: tuple[Any, ...] = ()
        skipped = ""
        iperf: dict[Any, Any] = {}
        for rate, rtt, loss, cc, ip, proto, direction in todo:
            cell = Cell(rate, rtt, loss, cc, ip, proto, direction)
            results.append(cell)
            if (rate, rtt, loss, cc) != last:
                skipped = shape(bed.pair, rate, rtt, loss)
                set_cc(bed.pair, cc)
                last = (rate, rtt, loss, cc)
            cell.skipped = skipped
            if not skipped:
                run_cell(bed, cell, args, iperf)
            print_row(cell, header=len(results) == 1)
    took = time.monotonic() - started
    print(f"\n{len(results)} cells in {took:.0f} s; load average {load_average()}")
    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps([c.__dict__ for c in results], indent=1))


def _ratio(value: float | None, rate: int) -> str:
    return f"{value / rate:6.3f}" if value is not None else "   n/a"


def print_row(c: Cell, *, header: bool) -> None:
    if header:
        print(
            "rate  rtt loss  cc     ip proto dir  | iperf3   curl product | prod/iperf3 warmup_s"
            " | CPU s/GB curl product | cipher"
        )
    way = c.direction.removesuffix("load")  # down, up
    where = f"{c.rate:4} {c.rtt:4} {c.loss:4g} {c.cc:6} {c.ip:2} {c.proto:5} {way:4}"
    if c.skipped:
        print(f"{where} | {c.skipped}")
        return
    vs = f"{c.product / c.iperf3 - 1:+7.1%}" if c.product and c.iperf3 else "    n/a"
    warm = f"{c.warmup_s:6.2f}" if c.warmup_s is not None else "   n/a"
    cpu_c = f"{c.cpu_curl:5.2f}" if c.cpu_curl is not None else "  n/a"
    cpu_p = f"{c.cpu_product:5.2f}" if c.cpu_product is not None else "  n/a"
    print(
        f"{where} | {_ratio(c.iperf3, c.rate)} {_ratio(c.curl, c.rate)} "
        f"{_ratio(c.product, c.rate)} |     {vs}   {warm} |         {cpu_c}   {cpu_p} | "
        f"{c.cipher or '-'}",
        flush=True,
    )


def print_summary(results: list[Cell]) -> None:
    ran = [c for c in results if not c.skipped]
    judged = [c for c in ran if c.iperf3 and c.iperf3 >= 0.9 * c.rate and c.product]
    within = [c for c in judged if c.product and c.iperf3 and abs(c.product / c.iperf3 - 1) <= 0.02]
    print(
        f"accuracy: {len(within)} of {len(judged)} cells where iperf3 reached 90 % of the rate "
        f"are within 2 % of it ({len(results) - len(ran)} cells skipped)"
    )
    for c in judged:
        if c not in within and c.product and c.iperf3:
            print(
                f"  off: {c.rate} Mbit/s {c.rtt} ms {c.loss:g} % {c.cc} IPv{c.ip} {c.proto} "
                f"{c.direction}: {c.product / c.iperf3 - 1:+.1%}"
            )

    def med(values: list[float | None]) -> float | None:
        got = [v for v in values if v is not None]
        return statistics.median(got) if got else None

    # CPU per GB is judged where a run moves enough bytes for the transfer to dominate: at
    # 20-60 Mbit/s curl's own start-up (exec, TLS library) is most of its figure.
    heavy = [c for c in ran if c.rate >= CPU_MIN_RATE]
    for direction in DIRECTIONS:
        cpu: dict[tuple[str, str], float | None] = {}
        for proto in PROTOS:
            cells_ = [c for c in heavy if c.proto == proto and c.direction == direction]
            if not cells_:
                continue
            cpu["curl", proto] = curl_cpu = med([c.cpu_curl for c in cells_])
            cpu["product", proto] = ours_cpu = med([c.cpu_product for c in cells_])
            print(
                f"CPU s/GB, {direction} over {proto} (median of {len(cells_)} cells at >= "
                f"{CPU_MIN_RATE} Mbit/s): "
                f"curl {curl_cpu if curl_cpu is None else round(curl_cpu, 2)}, "
                f"product {ours_cpu if ours_cpu is None else round(ours_cpu, 2)}"
            )
        ours, theirs = cpu.get(("product", "https")), cpu.get(("curl", "https"))
        if ours and theirs:
            verdict = "met" if ours <= 1.3 * theirs else "MISSED"
            print(
                f"goal product HTTPS CPU/GB <= 1.3 x curl's HTTPS, {direction}: {verdict} "
                f"({ours / theirs:.2f} x)"
            )
