#!/usr/bin/env python3
"""The broker's limits from the fleet's size and the collector outage they must cover.

    ./broker_limits.py --probes 3300 --outage-hours 24            # print the limits
    ./broker_limits.py --probes 3300 --outage-hours 24 --queue-ram-gb 8 \\
        --write mosquitto/mosquitto.conf --limits-file mosquitto-limits.conf
    ./broker_limits.py --table                                    # README.md's capacity table

The formula (README.md, *Capacity*), every input named:

    results_per_hour  = N x r          r: one result per run, 3600 / interval_s summed over
                                       the enabled measurements of the agent's config (90
                                       with config/agent.sample.toml)
    max_queued_messages = up2(results_per_hour x H x 1.1)     H: outage hours; +10 % for the
                                       agents' status, alerts and early re-publications; up2:
                                       rounded up to two significant digits
                          capped at queue RAM / 1,900 B when --queue-ram-gb is given
    max_queued_bytes  = max_queued_messages x 1,500 B          (the mean result's payload)
    queue RAM         = max_queued_messages x 1,900 B          (measured on 2.0.11: 1.5 kB of
                                       payload + 371 B of bookkeeping a queued message)
    max_connections (probes) = ceil(N x 1.25)                  (+25 %: growth, dead sockets)
    LimitNOFILE       = next power of two >= every max_connections + 1,000 (files, slack)

Beyond the bound the broker drops for the collector's session only: every probe keeps each
result in its spool until a StoredAck names it and publishes it again (ack_timeout_s,
doubling up to 6 h, or sooner on the collector's ResendRequest), so an outage longer than
the queue costs delay, not data, while the spool lasts (spool_mb / 1.5 kB / r hours).
Standard library only: setup.sh runs it with the host's python3 (3.11+, for tomllib).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

HERE = Path(__file__).resolve().parent
AGENT_SAMPLE = HERE.parent.parent / "config" / "agent.sample.toml"

PAYLOAD_B = 1500  # a mean result on the wire (the sample schedule's mix)
QUEUED_RAM_B = 1900  # RAM a queued message costs Mosquitto 2.0.11 (1,500 B payload + 371 B)
HEADROOM = 1.1  # status messages, alerts, re-publications of results not yet StoredAck'd
CONNECTION_HEADROOM = 1.25
SERVICE_CONNECTIONS = 16 + 4  # the services and admin listeners' max_connections
FD_SLACK = 1000
SPOOL_MB = 100.0  # the agent's [spool] max_mb default
WEEK_H = 7 * 24.0  # the collector's session_expiry_s: what the broker keeps its session for

# Shipped in mosquitto.conf (a test checks the formula gives exactly these).
SHIPPED_PROBES = 10_000
SHIPPED_OUTAGE_H = 2.0
TABLE_FLEETS = (100, 3300, 10_000)
TABLE_OUTAGES_H = (2.0, 24.0, WEEK_H)
TABLE_QUEUE_RAM_GB = 16.0  # what a 64 GB VM can give the queue: the table's "RAM allows"
MARKER = "# limits: "


class LimitsError(Exception):
    """A bad input: the message names the option and quotes the value."""


@dataclass(frozen=True)
class Limits:
    probes: int
    outage_h: float
    results_per_probe_h: float
    max_queued_messages: int
    max_queued_bytes: int
    max_connections: int
    limit_nofile: int
    capped: bool  # the queue RAM given could not hold outage_h

    @property
    def fleet_per_h(self) -> float:
        return self.probes * self.results_per_probe_h

    @property
    def queue_ram_b(self) -> int:
        return self.max_queued_messages * QUEUED_RAM_B

    @property
    def covered_h(self) -> float:
        """Hours of the fleet's results the queue holds (before the headroom)."""
        return self.max_queued_messages / HEADROOM / self.fleet_per_h

    def marker(self) -> str:
        """The comment line in mosquitto.conf saying what its limits were computed for."""
        return (
            f"{MARKER}probes={self.probes} outage_hours={_num(self.outage_h)} "
            f"results_per_probe_hour={_num(self.results_per_probe_h)} -> "
            f"{self.max_queued_messages:,} messages, {self.queue_ram_b / 1e9:.1f} GB of RAM "
            f"at the bound (deploy/central/broker_limits.py)"
        )


def _num(x: float) -> str:
    return f"{x:g}"


def up2(x: float) -> int:
    """``x`` rounded up to two significant digits (1,980,000 -> 2,000,000)."""
    if x <= 0:
        return 0
    step = 10 ** max(math.floor(math.log10(x)) - 1, 0)
    return int(math.ceil(x / step - 1e-9) * step)


def down2(x: float) -> int:
    if x < 1:
        return 0
    step = 10 ** max(math.floor(math.log10(x)) - 1, 0)
    return int(math.floor(x / step + 1e-9) * step)


# Kinds that run on a declared mobile link only (their measurement's ``mobile_only``; the
# test holds this equal to the registry: this file runs where probefleet is not installed).
MOBILE_ONLY: Final = frozenset({"radio", "survey"})


def results_per_probe_hour(agent_config: Path) -> float:
    """3600 / interval_s summed over the enabled measurements (one result per run). The agent's
    own scheduler (agent/scheduler.py job_specs) gives the same sum; tests hold them equal."""
    try:
        doc = tomllib.loads(agent_config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LimitsError(f"--agent-config = {str(agent_config)!r}: {exc}") from exc
    total = 0.0
    interfaces = doc.get("interfaces", [])
    mobile = any(isinstance(i, dict) and i.get("access") == "mobile" for i in interfaces)
    for name, section in doc.get("measurements", {}).items():
        if not isinstance(section, dict) or not section.get("enabled", True):
            continue
        if name in MOBILE_ONLY and not mobile:
            continue  # the scheduler gives it no job without a declared mobile link
        if section.get("cron"):
            raise LimitsError(
                f"{agent_config}: [measurements.{name}] cron = {section['cron']!r}: a cron "
                "schedule has no fixed rate; give --results-per-hour"
            )
        total += 3600.0 / float(section["interval_s"])
    if total <= 0:
        raise LimitsError(f"--agent-config = {str(agent_config)!r}: no enabled measurement")
    return total


def compute(
    probes: int, outage_h: float, per_probe_h: float, queue_ram_gb: float | None = None
) -> Limits:
    """The limits for ``probes`` probes and an ``outage_h``-hour collector outage."""
    if not 1 <= probes <= 1_000_000:
        raise LimitsError(f"--probes = {probes!r}: give 1 to 1,000,000")
    if not 0.1 <= outage_h <= 8760:
        raise LimitsError(f"--outage-hours = {outage_h!r}: give 0.1 to 8760 (a year)")
    if not 0 < per_probe_h <= 100_000:
        raise LimitsError(f"--results-per-hour = {per_probe_h!r}: give more than 0")
    messages = up2(probes * per_probe_h * outage_h * HEADROOM)
    capped = False
    if queue_ram_gb is not None:
        if not queue_ram_gb > 0:
            raise LimitsError(f"--queue-ram-gb = {queue_ram_gb!r}: give more than 0")
        most = down2(queue_ram_gb * 1e9 / QUEUED_RAM_B)
        if messages > most:
            messages, capped = most, True
    connections = math.ceil(probes * CONNECTION_HEADROOM)
    nofile = 1 << math.ceil(math.log2(connections + SERVICE_CONNECTIONS + FD_SLACK))
    return Limits(
        probes=probes,
        outage_h=outage_h,
        results_per_probe_h=per_probe_h,
        max_queued_messages=messages,
        max_queued_bytes=messages * PAYLOAD_B,
        max_connections=connections,
        limit_nofile=nofile,
        capped=capped,
    )


def summary(limits: Limits) -> str:
    spool_h = SPOOL_MB * 1e6 / PAYLOAD_B / limits.results_per_probe_h
    lines = [
        f"{limits.probes:,} probes x {_num(limits.results_per_probe_h)} results an hour = "
        f"{limits.fleet_per_h:,.0f} results/h ({limits.fleet_per_h / 3600:,.1f}/s)",
        f"max_queued_messages {limits.max_queued_messages}",
        f"max_queued_bytes {limits.max_queued_bytes}",
        f"max_connections {limits.max_connections}   (probes listener)",
        f"LimitNOFILE={limits.limit_nofile}",
        f"queue RAM at the bound: {limits.queue_ram_b / 1e9:.2f} GB; it holds "
        f"{limits.covered_h:.1f} h of the fleet's results",
    ]
    if limits.capped:
        lines.append(
            f"NOTE: {_num(limits.outage_h)} h needs "
            f"{up2(limits.fleet_per_h * limits.outage_h * HEADROOM) * QUEUED_RAM_B / 1e9:.1f} GB"
            f" of queue RAM; the queue given holds {limits.covered_h:.1f} h. The rest waits in"
            f" the probes' spools ({_num(SPOOL_MB)} MB: ~{spool_h / 24:.0f} days each) and"
            " comes when the collector is back (re-published within 6 h at the latest)."
        )
    return "\n".join(lines)


def _gb(n_bytes: float) -> str:
    gb = n_bytes / 1e9
    return f"{gb:,.0f} GB" if gb >= 10 else f"{gb:.2g} GB"


def table(per_probe_h: float) -> str:
    """README.md's capacity table: what each fleet size costs for each outage."""
    head = (
        "| probes | results/h | outage | max_queued_messages | queue RAM | "
        f"with {_num(TABLE_QUEUE_RAM_GB)} GB of queue RAM | max_connections | LimitNOFILE |"
    )
    rows = [head, "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for probes in TABLE_FLEETS:
        for outage in TABLE_OUTAGES_H:
            want = compute(probes, outage, per_probe_h)
            got = compute(probes, outage, per_probe_h, TABLE_QUEUE_RAM_GB)
            if got.capped:
                fits = f"**no**: {got.covered_h:.0f} h; the spools hold the rest"
            else:
                fits = "yes"
            rows.append(
                f"| {probes:,} | {want.fleet_per_h:,.0f} | "
                f"{'a week' if outage == WEEK_H else f'{_num(outage)} h'} | "
                f"{want.max_queued_messages:,} | {_gb(want.queue_ram_b)} | {fits} | "
                f"{want.max_connections:,} | {want.limit_nofile:,} |"
            )
    return "\n".join(rows)


# --- writing a site's config ----------------------------------------------------------------


def rewrite_conf(text: str, limits: Limits) -> str:
    """mosquitto.conf ``text`` with the computed values: the general section's queue bounds,
    the probes listener's (8883) max_connections and the marker comment. Every other line
    stays as written; a file without one of those lines is refused."""
    out: list[str] = []
    listener: str | None = None
    seen = {"marker": 0, "max_queued_messages": 0, "max_queued_bytes": 0, "max_connections": 0}
    for given in text.splitlines():
        line = given
        found = re.fullmatch(r"listener (\d+)( \S+)?", line)
        if found:
            listener = found.group(1)
        if line.startswith(MARKER):
            line = limits.marker()
            seen["marker"] += 1
        elif listener is None and re.fullmatch(r"max_queued_messages \d+", line):
            line = f"max_queued_messages {limits.max_queued_messages}"
            seen["max_queued_messages"] += 1
        elif listener is None and re.fullmatch(r"max_queued_bytes \d+", line):
            line = f"max_queued_bytes {limits.max_queued_bytes}"
            seen["max_queued_bytes"] += 1
        elif listener == "8883" and re.fullmatch(r"max_connections \d+", line):
            line = f"max_connections {limits.max_connections}"
            seen["max_connections"] += 1
        out.append(line)
    missing = [name for name, count in seen.items() if count != 1]
    if missing:
        raise LimitsError(f"mosquitto.conf: expected one line each for {', '.join(missing)}")
    return "\n".join(out) + "\n"


def rewrite_limits_file(text: str, limits: Limits) -> str:
    new, count = re.subn(r"(?m)^LimitNOFILE=\d+$", f"LimitNOFILE={limits.limit_nofile}", text)
    if count != 1:
        raise LimitsError("mosquitto-limits.conf: expected one LimitNOFILE= line")
    return new


def _write(path: Path, text: str) -> bool:
    """Replace ``path`` atomically when its content changes; True if it did."""
    if path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(path.stat().st_mode & 0o777)
    tmp.replace(path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Mosquitto's limits from the fleet size and the collector outage to cover "
        "(README.md, Capacity).",
    )
    parser.add_argument("--probes", type=int, default=SHIPPED_PROBES, help="fleet size")
    parser.add_argument(
        "--outage-hours",
        type=float,
        default=SHIPPED_OUTAGE_H,
        help="collector outage the broker's queue must hold (default %(default)s)",
    )
    parser.add_argument(
        "--queue-ram-gb", type=float, help="RAM the broker may spend on the collector's queue"
    )
    parser.add_argument("--agent-config", type=Path, default=AGENT_SAMPLE)
    parser.add_argument(
        "--results-per-hour", type=float, help="per probe (default: from --agent-config)"
    )
    parser.add_argument("--write", type=Path, metavar="MOSQUITTO_CONF", help="rewrite this file")
    parser.add_argument("--limits-file", type=Path, help="rewrite this systemd drop-in too")
    parser.add_argument("--table", action="store_true", help="print README.md's capacity table")
    args = parser.parse_args(argv)
    try:
        per_probe = args.results_per_hour or results_per_probe_hour(args.agent_config)
        if args.table:
            print(table(per_probe))
            return 0
        limits = compute(args.probes, args.outage_hours, per_probe, args.queue_ram_gb)
        changes = []
        if args.write:
            changes.append((args.write, rewrite_conf(args.write.read_text(), limits)))
        if args.limits_file:
            changes.append(
                (args.limits_file, rewrite_limits_file(args.limits_file.read_text(), limits))
            )
    except (LimitsError, OSError) as exc:
        print(f"broker_limits.py: {exc}", file=sys.stderr)
        return 2
    print(summary(limits))
    for path, text in changes:  # computed both first: a refused file changes neither
        print(f"{path}: {'written' if _write(path, text) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
