"""Latency probes: ICMP echo through icmplib and TCP connect, paced in series under a deadline.

A *prober* sends one probe and returns its RTT in ms, or None when it was lost (no reply in
time, an ICMP error, a refused or failed connect). :func:`series` paces probes and never
starts one whose timeout would run past the deadline, so a run ends on time and every probe
it counts as sent had its full timeout.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from probefleet.kinds.base import Link
from probefleet.kinds.common import net
from probefleet.kinds.errors import MeasurementError

log = logging.getLogger(__name__)

IcmpMode = Literal["dgram", "raw"]
Version = Literal[4, 6]
Prober = Callable[[int, float], float | None]  # (sequence number, timeout_s) -> RTT ms

# Echo identifiers for raw sockets (the kernel picks them for datagram sockets): unique per
# series in this process, so concurrent series never take each other's replies.
_identifiers = itertools.count(os.getpid())
_PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


@functools.cache
def icmp_mode() -> IcmpMode:
    """How this process can send ICMP echo: unprivileged datagram ("ping") sockets when
    net.ipv4.ping_group_range covers our group, raw sockets with CAP_NET_RAW otherwise.

    Decided once per process by opening a socket of each kind (capabilities and the sysctl
    are what they are; reading them would only approximate the kernel's own check)."""
    from icmplib import ICMPv4Socket
    from icmplib.exceptions import ICMPLibError, SocketPermissionError

    for mode, privileged in (("dgram", False), ("raw", True)):
        try:
            ICMPv4Socket(None, privileged).close()
        except SocketPermissionError:
            continue
        except ICMPLibError as exc:
            raise MeasurementError(f"cannot open an ICMP socket: {exc}") from None
        log.info(
            "ICMP echo through %s sockets",
            "unprivileged datagram" if mode == "dgram" else "raw (CAP_NET_RAW)",
        )
        return mode  # type: ignore[return-value]
    try:
        groups = _PING_GROUP_RANGE.read_text().split()
    except OSError:
        groups = ["?"]
    raise MeasurementError(
        "ICMP needs CAP_NET_RAW or net.ipv4.ping_group_range covering group "
        f'{os.getgid()} (it is {" ".join(groups)}); or use method = "tcp" for the targets'
    )


def series(
    prober: Prober, *, count: int, interval_s: float, timeout_s: float, deadline: float
) -> list[float | None]:
    """Up to ``count`` probes, one every ``interval_s`` (or right after the previous one when
    its reply took longer), each allowed ``timeout_s``; stops early at ``deadline``."""
    samples: list[float | None] = []
    started = time.monotonic()
    for seq in range(count):
        wait = started + seq * interval_s - time.monotonic()
        if time.monotonic() + max(wait, 0.0) + timeout_s > deadline:
            break
        if wait > 0:
            time.sleep(wait)
        samples.append(prober(seq, timeout_s))
    return samples


class IcmpProber:
    """ICMP echo to one address over one socket, bound to the link.

    icmplib has no interface option; its public ``sock`` property gives the socket, which
    :func:`agent.measurements.net.bind` pins like every other (SO_BINDTODEVICE, source)."""

    def __init__(self, address: str, version: Version, mode: IcmpMode, link: Link) -> None:
        from icmplib import ICMPv4Socket, ICMPv6Socket
        from icmplib.exceptions import ICMPLibError

        cls = ICMPv6Socket if version == 6 else ICMPv4Socket
        self.address = address
        self.identifier = next(_identifiers) & 0xFFFF
        try:
            self._icmp: Any = cls(None, mode == "raw")
        except ICMPLibError as exc:  # e.g. IPv6 disabled in this kernel
            raise OSError(f"cannot open an ICMPv{version} socket: {exc}") from None
        try:
            net.bind(self._icmp.sock, link)
        except MeasurementError:
            self._icmp.close()
            raise

    def __call__(self, seq: int, timeout_s: float) -> float | None:
        from icmplib import ICMPRequest
        from icmplib.exceptions import ICMPLibError

        request = ICMPRequest(destination=self.address, id=self.identifier, sequence=seq)
        began = time.perf_counter()
        try:
            self._icmp.send(request)
            reply = self._icmp.receive(request, timeout_s)
            reply.raise_for_status()  # an ICMP error (unreachable, TTL exceeded...) is a loss
        except ICMPLibError as exc:
            log.debug("icmp %s seq %d: %s", self.address, seq, exc)
            return None
        bracket_ms = (time.perf_counter() - began) * 1000.0
        # icmplib stamps send and receive with the wall clock, closer to the wire than our
        # bracket (which adds ~70 us of Python); a clock step in between (NTP at boot) would
        # show as a negative or outsized RTT: then the monotonic bracket is the truth.
        rtt_ms = (reply.time - request.time) * 1000.0
        return rtt_ms if 0.0 <= rtt_ms <= bracket_ms else bracket_ms

    def close(self) -> None:
        self._icmp.close()


def tcp_prober(address: str, port: int, version: Version, link: Link) -> Prober:
    """A TCP connect to ``address``:``port`` (closed at once); refused or timed out = lost."""

    def probe(seq: int, timeout_s: float) -> float | None:
        try:
            sock, connect_ms = net.connect(
                address, port, link, ip_version=version, timeout_s=timeout_s
            )
        except MeasurementError as exc:
            log.debug("tcp %s port %d seq %d: %s", address, port, seq, exc.reason)
            return None
        sock.close()
        return connect_ms

    return probe
