"""Per-family views of a link, and checking up front that a link can be bound at all."""

from __future__ import annotations

import dataclasses
import socket
from typing import Literal

from probefleet.kinds.base import Link
from probefleet.kinds.common import net


def link_for(link: Link, version: Literal[4, 6]) -> Link:
    """``link`` without a source address of the other family: an IPv4 source address cannot
    bind an IPv6 socket; the interface binding (SO_BINDTODEVICE) still pins the path."""
    source = link.source_address
    if source and (":" in source) != (version == 6):
        return dataclasses.replace(link, source_address=None)
    return link


def check_binding(link: Link, version: Literal[4, 6]) -> None:
    """Raise MeasurementError now if ``link`` cannot be bound (a missing interface, no
    CAP_NET_RAW, a source address not on this host): that is a probe problem, not a
    property of the targets, and must not pass for packet loss or timeouts."""
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:  # no IPv6 in this kernel: the probes themselves will find out
        return
    with sock:
        net.bind(sock, link_for(link, version))
