"""The accuracy matrix of bench_throughput.py: shaped namespaces, iperf3, curl and the product.

Each cell = (rate, RTT, loss, congestion control, IP version, HTTP or HTTPS), download. One
namespace pair for the whole run, reshaped per cell; nginx (HTTP and HTTPS) and an iperf3
server in the server namespace; every client runs in the client namespace. The product runs
as ``bench_throughput.py _cell`` there (the ``throughput`` measurement, its own process, so
its CPU is its own: ``getrusage`` around ``run()``, warm-up and pings included).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kinds" / "throughput" / "tests"))

RATES = [20, 60, 150, 300, 900]
RTTS = [0, 20, 40, 80]
LOSSES = [0.0, 0.5]
CCS = ["cubic", "reno", "bbr"]
IPS = [4, 6]
PROTOS = ["http", "https"]
# (rate, rtt, loss, cc, ip, proto): a handful that touch every dimension but the long ones.
QUICK = [
    (20, 0, 0.0, "cubic", 4, "http"),
    (150, 0, 0.0, "reno", 4, "https"),
    (150, 0, 0.5, "cubic", 4, "http"),
    (60, 20, 0.0, "bbr", 6, "https"),
    (300, 40, 0.0, "reno", 4, "http"),
]
IPERF_PORT = 5201
OMIT_S = 2


@dataclass
class Cell:
    rate: int
    rtt: int
    loss: float
    cc: str
    ip: int
    proto: str
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
    m.add_argument("--quick", action="store_true", help=f"only {len(QUICK)} cells")
    m.add_argument("--duration", type=float, default=5.0, help="measured seconds per tool")
    m.add_argument("--streams", type=int, default=6, help="product and iperf3 streams")
    m.add_argument("--rates", type=int, nargs="+", default=RATES)
    m.add_argument("--rtts", type=int, nargs="+", default=RTTS, help="ms, round trip")
    m.add_argument("--losses", type=float, nargs="+", default=LOSSES, help="percent")
    m.add_argument("--ccs", nargs="+", default=CCS)
    m.add_argument("--ips", type=int, nargs="+", default=IPS)
    m.add_argument("--protos", nargs="+", default=PROTOS)
    m.add_argument("--json", type=Path, help="also write every cell here")
    c = sub.add_parser("_cell", help=argparse.SUPPRESS)
    c.add_argument("--url", required=True)
    c.add_argument("--ping", required=True)
    c.add_argument("--ca", default="")
    c.add_argument("--streams", type=int, required=True)
    c.add_argument("--duration", type=float, required=True)


# --- inside the client namespace -----------------------------------------------------------------


def cell_main(args: argparse.Namespace) -> None:
    """The product once, download: its figures and CPU as one JSON line."""
    from probefleet.core import configkit
    from probefleet.kinds.base import Link
    from probefleet.kinds.common.http import parse_url
    from probefleet.kinds.throughput import measure

    moved: list[int] = []
    real = vars(measure)["run_direction"]

    def counting(*a: Any, **kw: Any) -> Any:
        result = real(*a, **kw)
        moved.append(result.total_bytes)
        return result

    vars(measure)["run_direction"] = counting  # the product's own call, counted
    host = parse_url(args.url).host
    cfg = configkit.build(
        {
            "mode": "http",
            "download_url": args.url,
            "ping_url": args.ping,
            "directions": ["download"],
            "streams_download": args.streams,
            "duration_s": args.duration,
            "tls": [{"host": host, "ca_file": args.ca}] if args.ca else [],
        },
        measure.ThroughputConfig,
    )
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    data = measure.Throughput(cfg).run(Link())
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    print(
        json.dumps(
            {
                "mbps": data.download_mbps,
                "warmup_s": data.download_warmup_s,
                "cpu_s": cpu,
                "bytes": sum(moved),
                "cipher": data.tls_cipher,
            }
        )
    )


# --- the run -----------------------------------------------------------------------------------


@functools.cache
def has_netem(pair_ns: str) -> bool:
    probe = subprocess.run(
        ["ip", "netns", "exec", pair_ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem"],
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0:
        subprocess.run(
            ["ip", "netns", "exec", pair_ns, "tc", "qdisc", "del", "dev", "lo", "root"],
            capture_output=True,
            check=False,
        )
    return probe.returncode == 0


def _tc(pair: Any, ns: str, *args: str, check: bool = True) -> None:
    pair.run(ns, ["tc", *args], check=check)


def shape(pair: Any, rate: int, rtt: int, loss: float) -> str:
    """Rate, delay and loss on both veth ends; "" or why the cell cannot be run here."""
    netem = has_netem(pair.client_ns)
    if rtt and not netem:
        return "no netem in this kernel: RTT cells need it"
    burst = max(64 * 1024, int(rate * 1e6 / 8 / 250))
    tbf = ["tbf", "rate", f"{rate}mbit", "burst", str(burst), "latency", "50ms"]
    for ns in (pair.client_ns, pair.server_ns):
        _tc(pair, ns, "qdisc", "del", "dev", "veth0", "root", check=False)
        pair.run(ns, ["nft", "flush", "ruleset"], check=False)
        if netem and (rtt or loss):
            delay = ["delay", f"{rtt / 2:g}ms"] if rtt else []
            lossy = ["loss", "random", f"{loss:g}%"] if loss else []
            # netem's own queue must hold the line's bytes in flight: limit in packets.
            limit = max(1000, int(rate * 1e6 / 8 * (rtt + 100) / 1000 / 1500) * 2)
            _tc(pair, ns, "qdisc", "add", "dev", "veth0", "root", "handle", "1:", "netem",
                *delay, *lossy, "limit", str(limit))  # fmt: skip
            _tc(pair, ns, "qdisc", "add", "dev", "veth0", "parent", "1:1", "handle", "10:", *tbf)
        else:
            _tc(pair, ns, "qdisc", "add", "dev", "veth0", "root", *tbf)
            if loss:  # at the input: the sender sees a network loss, not a local drop
                rules = (
                    "add table inet lossy; add chain inet lossy in { type filter hook input "
                    "priority 0; }; add rule inet lossy in numgen random mod 100000 < "
                    f"{int(loss * 1000)} drop"
                )
                pair.run(ns, ["nft", rules])
    return ""


def set_cc(pair: Any, cc: str) -> None:
    """On every route of both namespaces (``congctl``): a namespace other than the host's may
    only make an algorithm of the host's tcp_allowed_congestion_control its default, and
    the bench leaves the host's settings alone."""
    for ns, me in ((pair.client_ns, pair.client_v4), (pair.server_ns, pair.server_v4)):
        routes = [
            ["route", "replace", "198.18.0.0/24", "dev", "veth0", "proto", "kernel", "scope",
             "link", "src", me],
            ["-6", "route", "replace", "2001:db8::/64", "dev", "veth0", "proto", "kernel",
             "metric", "256"],
        ]  # fmt: skip
        if ns == pair.client_ns:
            routes += [
                ["route", "replace", "default", "via", pair.server_v4],
                ["-6", "route", "replace", "default", "via", pair.server_v6],
            ]
        for route in routes:
            subprocess.run(["ip", "-n", ns, *route, "congctl", cc], check=True, timeout=20)


def run_iperf3(pair: Any, addr: str, streams: int, duration: float) -> float | None:
    got = pair.run(
        pair.client_ns,
        ["iperf3", "-c", addr, "-p", str(IPERF_PORT), "-R", "-P", str(streams),
         "-t", f"{duration:g}", "-O", str(OMIT_S), "-J"],
        check=False, timeout=duration + OMIT_S + 30,
    )  # fmt: skip
    try:
        return float(json.loads(got.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e6
    except (ValueError, KeyError):
        return None


def run_curl(pair: Any, url: str, size: int, ca: str) -> tuple[float | None, float | None]:
    """(Mbit/s, CPU s per GB) of one curl download of ``size`` bytes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    got = pair.run(
        pair.client_ns,
        ["curl", "-sS", "--noproxy", "*", *(["--cacert", ca] if ca else []), "-o", "/dev/null",
         "-r", f"0-{size - 1}", "-w", "%{speed_download} %{size_download}", url],
        check=False, timeout=300,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if got.returncode != 0:
        return None, None
    speed, moved = (float(x) for x in got.stdout.split())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return speed * 8 / 1e6, cpu / (moved / 1e9) if moved else None


def run_product(
    pair: Any, url: str, ping: str, ca: str, *, streams: int, duration: float
) -> dict[str, Any] | None:
    argv = [sys.executable, str(ROOT / "bench" / "bench_throughput.py"), "_cell", "--url", url,
            "--ping", ping, "--streams", str(streams), "--duration", f"{duration:g}"]  # fmt: skip
    if ca:
        argv += ["--ca", ca]
    got = pair.run(pair.client_ns, argv, check=False, timeout=duration + 60)
    if got.returncode != 0:
        print(f"  product failed: {got.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    figures: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
    return figures


def cells(args: argparse.Namespace) -> list[tuple[int, int, float, str, int, str]]:
    if args.quick:
        return list(QUICK)
    return list(
        itertools.product(args.rates, args.rtts, args.losses, args.ccs, args.ips, args.protos)
    )


def matrix_main(args: argparse.Namespace) -> None:
    from netns_nginx import NetnsNginx

    from tests.harness.netns import NetnsPair, netns_unavailable

    why = netns_unavailable()
    if why:
        sys.exit(f"matrix: {why}")
    todo = cells(args)
    results: list[Cell] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        from bench_throughput import _self_signed

        cert, key = _self_signed(workdir / "ca", "IP:198.18.0.1,IP:2001:db8::1")
        with NetnsPair("tpm", rate_mbit=None) as pair:
            web = NetnsNginx(pair, workdir / "nginx", tls=(cert, key))
            with web:
                pair.popen(pair.server_ns, ["iperf3", "-s", "-p", str(IPERF_PORT)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                time.sleep(0.5)  # iperf3 -s has no readiness signal; its first client retries
                last: tuple[Any, ...] = ()
                iperf_cache: dict[tuple[Any, ...], float | None] = {}
                for rate, rtt, loss, cc, ip, proto in todo:
                    cell = Cell(rate, rtt, loss, cc, ip, proto)
                    results.append(cell)
                    if (rate, rtt, loss, cc) != last:
                        cell.skipped = shape(pair, rate, rtt, loss)
                        set_cc(pair, cc)
                        last = (rate, rtt, loss, cc)
                    else:
                        cell.skipped = results[-2].skipped if len(results) > 1 else ""
                    if cell.skipped:
                        print_row(cell, header=len(results) == 1)
                        continue
                    v6 = ip == 6
                    addr = pair.server_v6 if v6 else pair.server_v4
                    assert addr is not None
                    key_ = (rate, rtt, loss, cc, ip)
                    if key_ not in iperf_cache:  # iperf3 has no HTTPS: once per link
                        iperf_cache[key_] = run_iperf3(pair, addr, args.streams, args.duration)
                    cell.iperf3 = iperf_cache[key_]
                    tls = proto == "https"
                    ca = str(cert) if tls else ""
                    url = web.url("/files/large.bin", v6=v6, tls=tls)
                    size = int(rate * 1e6 / 8 * args.duration)
                    cell.curl, cell.cpu_curl = run_curl(pair, url, size, ca)
                    ping = web.url("/empty", v6=v6, tls=tls)
                    got = run_product(
                        pair, url, ping, ca, streams=args.streams, duration=args.duration
                    )
                    if got is not None:
                        cell.product, cell.warmup_s = got["mbps"], got["warmup_s"]
                        cell.cipher = got["cipher"]
                        if got["bytes"]:
                            cell.cpu_product = got["cpu_s"] / (got["bytes"] / 1e9)
                    print_row(cell, header=len(results) == 1)
    print(f"\n{len(results)} cells in {time.monotonic() - started:.0f} s")
    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps([c.__dict__ for c in results], indent=1))


def _ratio(value: float | None, rate: int) -> str:
    return f"{value / rate:6.3f}" if value is not None else "   n/a"


def print_row(c: Cell, *, header: bool) -> None:
    if header:
        print(
            "rate  rtt loss  cc     ip proto | iperf3   curl product | prod/iperf3 warmup_s"
            " | CPU s/GB curl product | cipher"
        )
    if c.skipped:
        print(f"{c.rate:4} {c.rtt:4} {c.loss:4g} {c.cc:6} {c.ip:2} {c.proto:5} | {c.skipped}")
        return
    vs = f"{c.product / c.iperf3 - 1:+7.1%}" if c.product and c.iperf3 else "    n/a"
    warm = f"{c.warmup_s:6.2f}" if c.warmup_s is not None else "   n/a"
    cpu_c = f"{c.cpu_curl:5.2f}" if c.cpu_curl is not None else "  n/a"
    cpu_p = f"{c.cpu_product:5.2f}" if c.cpu_product is not None else "  n/a"
    print(
        f"{c.rate:4} {c.rtt:4} {c.loss:4g} {c.cc:6} {c.ip:2} {c.proto:5} | "
        f"{_ratio(c.iperf3, c.rate)} {_ratio(c.curl, c.rate)} {_ratio(c.product, c.rate)} | "
        f"    {vs}   {warm} |         {cpu_c}   {cpu_p} | {c.cipher or '-'}",
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
                f"  off: {c.rate} Mbit/s {c.rtt} ms {c.loss:g} % {c.cc} IPv{c.ip} {c.proto}: "
                f"{c.product / c.iperf3 - 1:+.1%}"
            )

    def med(values: list[float | None]) -> float | None:
        got = [v for v in values if v is not None]
        return statistics.median(got) if got else None

    cpu: dict[tuple[str, str], float | None] = {}
    for proto in ("http", "https"):
        cells_ = [c for c in ran if c.proto == proto]
        cpu["curl", proto] = med([c.cpu_curl for c in cells_])
        cpu["product", proto] = med([c.cpu_product for c in cells_])
        curl_cpu, ours_cpu = cpu["curl", proto], cpu["product", proto]
        print(
            f"CPU s/GB over {proto} (median of cells): "
            f"curl {curl_cpu if curl_cpu is None else round(curl_cpu, 2)}, "
            f"product {ours_cpu if ours_cpu is None else round(ours_cpu, 2)}"
        )
    ours, theirs = cpu["product", "https"], cpu["curl", "https"]
    if ours and theirs:
        verdict = "met" if ours <= 1.3 * theirs else "MISSED"
        print(f"goal product HTTPS CPU/GB <= 1.3 x curl's HTTPS: {verdict} ({ours / theirs:.2f} x)")
