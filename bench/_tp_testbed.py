"""The matrix's test bed: shaped namespaces with nginx and iperf3, and the three clients.

:class:`Testbed` is one namespace pair for a whole run, reshaped per link (:func:`shape`,
:func:`set_cc`): nginx (HTTP and HTTPS, its ``/upload`` sink reading every body byte) and an
iperf3 server in the server namespace. The clients run in the client namespace:
:func:`run_iperf3`, :func:`run_curl` and :func:`run_product`, which runs
``bench_throughput.py _cell`` (:func:`cell_main`: the ``throughput`` measurement in its own
process, so its CPU is its own: ``getrusage`` around ``run()``, warm-up and pings included).
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kinds" / "throughput" / "tests"))

IPERF_PORT = 5201
OMIT_S = 2


# --- inside the client namespace -----------------------------------------------------------------


def cell_main(args: argparse.Namespace) -> None:
    """The product once, in one direction: its figures and CPU as one JSON line."""
    from probefleet.core import configkit
    from probefleet.kinds.base import Link
    from probefleet.kinds.common.http import parse_url
    from probefleet.kinds.throughput import measure
    from probefleet.kinds.throughput.ping import LoadedPings

    moved: list[int] = []
    real = vars(measure)["run_direction"]

    def counting(*a: Any, **kw: Any) -> Any:
        result = real(*a, **kw)
        moved.append(result.total_bytes)  # upload: bytes the server's TCP acknowledged
        return result

    vars(measure)["run_direction"] = counting  # the product's own call, counted
    sampler_cpu = [0.0]
    if args.no_loaded_pings:  # the sampler off: the transfer alone (idle pings still run)
        vars(measure)["LoadedPings"] = _NoPings
    else:  # the sampler's own thread's CPU (thread_time), part of cpu_s

        class TimedPings(LoadedPings):
            def _loop(self) -> None:
                start = time.thread_time()
                try:
                    super()._loop()
                finally:
                    sampler_cpu[0] += time.thread_time() - start

        vars(measure)["LoadedPings"] = TimedPings
    up = args.direction == "upload"
    host = parse_url(args.url).host
    cfg = configkit.build(
        {
            "mode": "http",
            f"{args.direction}_url": args.url,
            "ping_url": args.ping,
            "directions": [args.direction],
            f"streams_{args.direction}": args.streams,
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
                "mbps": data.upload_mbps if up else data.download_mbps,
                "warmup_s": data.upload_warmup_s if up else data.download_warmup_s,
                "loaded_ms": data.latency_upload_ms if up else data.latency_download_ms,
                "cpu_s": cpu,
                "sampler_cpu_s": sampler_cpu[0],
                "bytes": sum(moved),
                "cipher": data.tls_cipher,
            }
        )
    )


class _NoPings:
    """Stands in for measure.LoadedPings: no thread, no samples."""

    def __init__(self, *_: object) -> None:
        pass

    def __enter__(self) -> _NoPings:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def since(self, _start: float) -> list[float]:
        return []


# --- the test bed -------------------------------------------------------------------------------


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


def run_iperf3(
    pair: Any,
    addr: str,
    streams: int,
    duration: float,
    *,
    upload: bool = False,
    prefix: tuple[str, ...] = (),
) -> float | None:
    """Mbit/s the receiver got: download = ``-R`` (the server sends), upload = the client
    sends; ``prefix`` (e.g. taskset) goes before iperf3 inside the namespace."""
    reverse = [] if upload else ["-R"]
    got = pair.run(
        pair.client_ns,
        [*prefix, "iperf3", "-c", addr, "-p", str(IPERF_PORT), *reverse, "-P", str(streams),
         "-t", f"{duration:g}", "-O", str(OMIT_S), "-J"],
        check=False, timeout=duration + OMIT_S + 30,
    )  # fmt: skip
    try:
        return float(json.loads(got.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e6
    except (ValueError, KeyError):
        return None


def run_curl(
    pair: Any, url: str, size: int, ca: str, upload_from: Path | None = None
) -> tuple[float | None, float | None]:
    """(Mbit/s, CPU s per GB) of one curl transfer of ``size`` bytes: a download of the
    file's first ``size`` bytes, or (``upload_from``, a file of ``size`` bytes) a POST of it.
    ``Expect:`` off: curl would otherwise wait for a 100 Continue before its body."""
    if upload_from is None:
        how = ["-r", f"0-{size - 1}", "-w", "%{speed_download} %{size_download}"]
    else:
        how = ["-H", "Expect:", "-X", "POST", "-T", str(upload_from),
               "-w", "%{speed_upload} %{size_upload}"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    got = pair.run(
        pair.client_ns,
        ["curl", "-sS", "--noproxy", "*", *(["--cacert", ca] if ca else []), "-o", "/dev/null",
         *how, url],
        check=False, timeout=300,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if got.returncode != 0:
        print(f"  curl failed: {got.stderr.strip()[-300:]}", file=sys.stderr)
        return None, None
    speed, moved = (float(x) for x in got.stdout.split())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return speed * 8 / 1e6, cpu / (moved / 1e9) if moved else None


def run_product(
    pair: Any,
    url: str,
    ping: str,
    ca: str,
    *,
    streams: int,
    duration: float,
    direction: str = "download",
    loaded_pings: bool = True,
    prefix: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    argv = [*prefix, sys.executable, str(ROOT / "bench" / "bench_throughput.py"), "_cell",
            "--url", url, "--ping", ping, "--streams", str(streams),
            "--duration", f"{duration:g}", "--direction", direction]  # fmt: skip
    if ca:
        argv += ["--ca", ca]
    if not loaded_pings:
        argv.append("--no-loaded-pings")
    got = pair.run(pair.client_ns, argv, check=False, timeout=duration + 60)
    if got.returncode != 0:
        print(f"  product failed: {got.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    figures: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
    return figures


class Testbed:
    """The shaped namespaces with nginx (HTTP, HTTPS) and an iperf3 server, for one run:
    ``with Testbed(workdir) as bed:``, then ``bed.url(...)``, ``bed.pair``, ``bed.ca``."""

    def __init__(self, workdir: Path) -> None:
        from bench_throughput import _self_signed
        from netns_nginx import NetnsNginx

        from tests.harness.netns import NetnsPair

        self.workdir = workdir
        workdir.chmod(0o755)
        cert, key = _self_signed(workdir / "ca", "IP:198.18.0.1,IP:2001:db8::1")
        self.ca = str(cert)
        self.pair = NetnsPair("tpm", rate_mbit=None)
        self.web = NetnsNginx(self.pair, workdir / "nginx", tls=(cert, key))
        self._bodies: dict[int, Path] = {}

    def __enter__(self) -> Testbed:
        self.pair.start()
        try:
            self.web.__enter__()
            self.pair.popen(self.pair.server_ns, ["iperf3", "-s", "-p", str(IPERF_PORT)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(0.5)  # iperf3 -s has no readiness signal; its first client retries
        except BaseException:
            self.pair.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.pair.stop()

    def addr(self, ip: int) -> str:
        addr = self.pair.server_v6 if ip == 6 else self.pair.server_v4
        assert addr is not None
        return addr

    def url(self, direction: str, *, ip: int, tls: bool) -> tuple[str, str]:
        """(the data URL for ``direction``, the ping URL) on the server namespace's nginx."""
        path = "/upload" if direction == "upload" else "/files/large.bin"
        v6 = ip == 6
        return self.web.url(path, v6=v6, tls=tls), self.web.url("/empty", v6=v6, tls=tls)

    def body(self, size: int) -> Path:
        """A sparse file of ``size`` bytes for curl to upload (zeros: no disk I/O), read once
        here so that curl reads it from the page cache: a first read of a sparse file fills
        the cache with zeroed pages, which cost curl 3.5 CPU-s per GB and 4 % of its rate at
        300 Mbit/s (0.77 s/GB warm)."""
        path = self._bodies.get(size)
        if path is None:
            path = self.workdir / f"body-{size}.bin"
            with path.open("wb") as handle:
                handle.truncate(size)
            chunk = bytearray(1 << 20)
            with path.open("rb", buffering=0) as handle:
                while handle.readinto(chunk):
                    pass
            self._bodies[size] = path
        return path


def load_average() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])
