"""Agent hook for hosts whose kernel says its clock is not NTP-disciplined (containers, VMs).

A real probe waits for NTP, and the collector holds back results taken on an unsynchronised
clock (see collector/README.md, *Clocks*). The simulated communes share this host's clock,
which is right but not disciplined by an NTP daemon the kernel knows about. The demo loads
this module into each agent through ``PROBEFLEET_AGENT_TEST_HOOK`` only in that case (it
says so on start): the measurements themselves are the real ones, untouched.
"""

from __future__ import annotations

from typing import Any

from probefleet.agent import clock


def install(registry: dict[Any, Any]) -> None:
    """Report the clock as synchronised; leave every measurement as it is."""
    del registry
    clock.kernel_says_synced = lambda: True
