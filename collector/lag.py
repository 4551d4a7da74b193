"""The collector's own lag (pure): pings it sends itself through the broker, and what they say.

Mosquitto queues one client's messages in one queue, in order. A ping the collector
publishes to its own topic on the results connection therefore comes back only after
everything queued ahead of it has been taken. Any ping of ours that comes back, even one
sent by an earlier run, means everything the broker had before it is taken: its send time
is ``through_s``, kept across restarts. While a ping is out, nothing after ``through_s`` is
known taken, so the lag is ``now - through_s`` (a growing backlog shows at once, and
after an outage the lag starts at the outage's length, not at zero); when every ping is
back, it is the last round trip. Caught up, that reads at most ``lag_ping_s`` for the
moment a ping is out. In a share group each collector pings its own topic (never
shared), through its own session.

Usage::

    lag = Lag(through_s=db_value)          # None on a first run
    payload = lag.ping(now_s)              # publish it QoS 1 to topic(root, client_id)
    lag.pong(payload, now_s)               # when it comes back; False: not a ping of ours
    lag.lag_s(now_s)                       # how far behind, s
"""

from __future__ import annotations

import json
from typing import Final

# State meta key (state.sqlite): the send time of the newest ping back, kept across restarts
# by the daemon and read by `probe-collector fleet`.
THROUGH_KEY: Final = "lag_through_s"
# Pings out at once, at most: beyond this the oldest are forgotten (a lost ping would
# otherwise hold the lag up; a newer one coming back settles it anyway).
MAX_OUT: Final = 1000


def topic(root: str, client_id: str) -> str:
    """The collector's own ping topic: three levels under the root, so that no probe
    subscription (``+/status``, ``+/results/+``) can match it."""
    return f"{root}/_collectors/lag/{client_id}"


class Lag:
    def __init__(self, through_s: float | None = None) -> None:
        self._out: list[float] = []  # send times (s) of this run's pings not back, oldest first
        self.through_s = through_s  # send time of the newest ping back (any run)
        self.last_rtt_s: float | None = None
        self._seq = 0

    def ping(self, now_s: float) -> bytes:
        self._seq += 1
        self._out.append(now_s)
        del self._out[:-MAX_OUT]
        return json.dumps({"sent_s": now_s, "n": self._seq}).encode()

    def pong(self, payload: bytes, now_s: float) -> bool:
        """A ping came back; False if the payload is no ping."""
        try:
            sent_s = float(json.loads(payload)["sent_s"])
        except (ValueError, KeyError, TypeError):
            return False
        self.last_rtt_s = max(0.0, now_s - sent_s)
        if self.through_s is None or sent_s > self.through_s:
            self.through_s = sent_s
        # Pings sent before this one are behind us too (taken, or lost).
        self._out = [s for s in self._out if s > sent_s]
        return True

    def lag_s(self, now_s: float) -> float:
        """How far behind the broker's queue for us is, s (see the module docstring)."""
        rtt = self.last_rtt_s or 0.0
        if not self._out:
            return rtt
        since = self.through_s if self.through_s is not None else self._out[0]
        return max(rtt, now_s - since)

    @property
    def out(self) -> int:
        return len(self._out)
