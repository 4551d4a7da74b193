"""TEST ONLY: fast stand-in measurements for `probe-agent run`, via PROBEFLEET_AGENT_TEST_HOOK.

Never imported by the agent itself: the daemon imports this module only when the variable
names it, and replaces entries of its own copy of the registry. The stand-ins keep each
kind's wire shape, so the real collector stores them like real results.

Environment (read at install time):
  STANDIN_KINDS        comma list of kinds to replace (default "latency,throughput")
  STANDIN_HEAVY_S      seconds a stand-in throughput run lasts (default 0.3)
  STANDIN_TRACE        file that gets "start|end <kind> <interface> <monotonic>" lines
  STANDIN_INTERVAL_S   replaces every job's interval (sub-second allowed)
  STANDIN_SYNCED       "1": report the clock as NTP-synchronised (this container's kernel
                       says it is not, and the collector quarantines unsynchronised results)
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from probefleet.agent import clock
from probefleet.core import wire
from probefleet.kinds import Link, Measurement
from probefleet.kinds.latency.measure import LatencyConfig
from probefleet.kinds.latency.payload import LatencyData, LatencyTarget
from probefleet.kinds.throughput.measure import ThroughputConfig
from probefleet.kinds.throughput.payload import ThroughputData

_interval = os.environ.get("STANDIN_INTERVAL_S")
INTERVAL_S = float(_interval) if _interval else None


def _trace(what: str, kind: str, link: Link) -> None:
    path = os.environ.get("STANDIN_TRACE")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{what} {kind} {link.interface or 'default'} {time.monotonic():.6f}\n")


class FastLatency(Measurement[LatencyConfig]):
    name: ClassVar[wire.Kind] = "latency"
    summary = "stand-in latency (tests only)"
    config_type = LatencyConfig

    def run(self, link: Link) -> LatencyData:
        _trace("start", "latency", link)
        target = LatencyTarget(
            target="standin.invalid", method="tcp", port=80, sent=1, received=1,
            loss_pct=0.0, rtt_min_ms=1.0, rtt_avg_ms=1.0, rtt_median_ms=1.0,
            rtt_p95_ms=1.0, rtt_max_ms=1.0,
        )  # fmt: skip
        _trace("end", "latency", link)
        return LatencyData(targets=[target])


class SlowThroughput(Measurement[ThroughputConfig]):
    name: ClassVar[wire.Kind] = "throughput"
    summary = "stand-in bandwidth test (tests only): sleeps, moves nothing"
    config_type = ThroughputConfig
    heavy = True

    def run(self, link: Link) -> ThroughputData:
        _trace("start", "throughput", link)
        time.sleep(float(os.environ.get("STANDIN_HEAVY_S", "0.3")))
        _trace("end", "throughput", link)
        return ThroughputData(
            method="http", server_name="stand-in", server_url="http://standin.invalid/",
            download_mbps=42.0,
        )  # fmt: skip


class SlowOokla(SlowThroughput):
    name: ClassVar[wire.Kind] = "ookla"

    def run(self, link: Link) -> ThroughputData:
        _trace("start", "ookla", link)
        time.sleep(float(os.environ.get("STANDIN_HEAVY_S", "0.3")))
        _trace("end", "ookla", link)
        return ThroughputData(
            method="ookla", server_name="stand-in", server_url="http://standin.invalid/",
            download_mbps=41.0,
        )  # fmt: skip


STANDINS: dict[str, type[Measurement[Any]]] = {
    "latency": FastLatency,
    "throughput": SlowThroughput,
    "ookla": SlowOokla,
}


def install(registry: dict[wire.Kind, type[Measurement[Any]]]) -> None:
    kinds = os.environ.get("STANDIN_KINDS", "latency,throughput").split(",")
    for kind in filter(None, kinds):
        registry[kind] = STANDINS[kind]
    if os.environ.get("STANDIN_SYNCED") == "1":
        clock.kernel_says_synced = lambda: True
