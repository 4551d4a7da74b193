"""Does the loaded-latency sampler bias the throughput reading under CPU contention?

One shaped link (20 Mbit/s by default, RTT 0, cubic, IPv4, HTTP) in the matrix's namespaces
(:class:`_tp_matrix.Testbed`). Every repetition runs, for each contention level — none, or
``--spinners`` busy loops pinned with taskset to the CPU the clients are pinned to —
iperf3 (the same stream count, the reference, pinned alike), then the product with its
loaded-latency pings on and off (in alternating order). The product's reading over iperf3's
is what a sampler's bias would show in; iperf3 over the rate shows what the contention
itself costs the line. Conditions are interleaved, so drift in the machine's load (other
work on a shared machine) hits them all alike; the load average is printed per repetition.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _tp_testbed import Testbed, load_average, run_iperf3, run_product, set_cc, shape

SPIN = "while True: pass"
Figures = dict[str, list[float]]


def add_arguments(sub: Any) -> None:
    c = sub.add_parser("contention", help="the loaded-latency sampler under CPU contention (root)")
    c.add_argument("--rate", type=int, default=20, help="Mbit/s")
    c.add_argument("--direction", choices=["download", "upload"], default="download")
    c.add_argument("--streams", type=int, default=0, help="0: the product's default (6 / 3)")
    c.add_argument("--duration", type=float, default=5.0, help="measured seconds per tool")
    c.add_argument("--repeat", type=int, default=6)
    c.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1, help="CPU to pin to")
    c.add_argument("--spinners", type=int, default=1, help="busy loops per CPU of --spin-cpus")
    c.add_argument(
        "--clients-nice",
        type=int,
        default=0,
        help="niceness added to iperf3 and the product (the busy loops then weigh more)",
    )
    c.add_argument(
        "--spin-cpus", type=int, nargs="+", help="CPUs the busy loops are pinned to (--cpu)"
    )


@contextlib.contextmanager
def spinning(cpus: list[int], count: int) -> Iterator[None]:
    """``count`` busy loops pinned to each of ``cpus`` for the duration of the block."""
    procs = [
        subprocess.Popen(
            ["taskset", "-c", str(cpu), sys.executable, "-c", SPIN], start_new_session=True
        )
        for cpu in cpus
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def contention_main(args: argparse.Namespace) -> None:
    from tests.harness.netns import netns_unavailable

    why = netns_unavailable()
    if why:
        sys.exit(f"contention: {why}")
    up = args.direction == "upload"
    streams = args.streams or (3 if up else 6)
    pin: tuple[str, ...] = ("taskset", "-c", str(args.cpu))
    if args.clients_nice:
        pin = ("nice", "-n", str(args.clients_nice), *pin)
    spin_cpus = args.spin_cpus or [args.cpu]
    figures: dict[str, Figures] = {}
    print(
        f"{args.rate} Mbit/s, RTT 0, cubic, IPv4, HTTP, {args.direction}, {streams} streams, "
        f"{args.duration:g} s measured; clients pinned to CPU {args.cpu}; contention = "
        f"{args.spinners} busy loop(s) pinned to each of CPU {spin_cpus}; clients at niceness "
        f"+{args.clients_nice} relative to the busy loops"
    )
    print("rep load-avg   | contention sampler | iperf3  product | product/iperf3 loaded_ms")
    with tempfile.TemporaryDirectory(prefix="bench-contention-") as tmp, Testbed(Path(tmp)) as bed:
        shape(bed.pair, args.rate, 0, 0.0)
        set_cc(bed.pair, "cubic")
        url, ping = bed.url(args.direction, ip=4, tls=False)
        for rep in range(args.repeat):
            load = load_average()
            levels = ("none", "busy") if rep % 2 == 0 else ("busy", "none")
            for level in levels:
                spinners = args.spinners if level == "busy" else 0
                with spinning(spin_cpus, spinners):
                    ref = run_iperf3(
                        bed.pair, bed.addr(4), streams, args.duration, upload=up, prefix=pin
                    )
                    samplers = (True, False) if (rep // 2) % 2 == 0 else (False, True)
                    for sampler in samplers:
                        got = run_product(
                            bed.pair,
                            url,
                            ping,
                            "",
                            streams=streams,
                            duration=args.duration,
                            direction=args.direction,
                            loaded_pings=sampler,
                            prefix=pin,
                        )
                        if got is None or ref is None:
                            continue
                        name = f"{level:4} sampler {'on' if sampler else 'off'}"
                        row = figures.setdefault(
                            name, {"iperf3": [], "product": [], "vs": [], "cpu": [], "sampler": []}
                        )
                        row["iperf3"].append(ref / args.rate)
                        row["product"].append(got["mbps"] / args.rate)
                        row["vs"].append(got["mbps"] / ref - 1)
                        row["cpu"].append(got["cpu_s"])
                        row["sampler"].append(got["sampler_cpu_s"])
                        loaded = got["loaded_ms"]
                        print(
                            f"{rep:3} {load:14} | {level:10} {'on' if sampler else 'off':7} | "
                            f"{ref / args.rate:6.3f} {got['mbps'] / args.rate:8.3f} | "
                            f"{got['mbps'] / ref - 1:+14.2%} "
                            f"{'-' if loaded is None else f'{loaded:9.1f}'}",
                            flush=True,
                        )
    print(f"load average at the end: {load_average()}")
    print(
        "\ncondition          | n | iperf3/rate     | product/rate    | product CPU s "
        "| of which sampler | product/iperf3: mean sd"
    )
    for name, row in sorted(figures.items()):
        print(
            f"{name:18} | {len(row['vs'])} | {_mean_sd(row['iperf3'])} | "
            f"{_mean_sd(row['product'])} | {_mean_sd(row['cpu'])} | "
            f"{_mean_sd(row['sampler'])} | "
            f"{statistics.mean(row['vs']):+.2%} "
            f"{_sd(row['vs']):.2%} (min {min(row['vs']):+.2%}, max {max(row['vs']):+.2%})"
        )


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {_sd(values):.3f}"
