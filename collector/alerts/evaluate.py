"""When a rule fires and when it resolves (pure): N consecutive breaches or a rolling median,
a minimum duration, and hysteresis — so that one bad test never pages anyone.

One :class:`Subject` per (rule, probe, row) holds what the rule needs to remember;
:func:`step` feeds it one value and says whether the alert fires or resolves now.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Literal

from probefleet.collector.alerts.rules import Rule

Change = Literal["fire", "resolve"]


@dataclass(slots=True)
class Subject:
    firing: bool = False
    breaches: int = 0  # consecutive, while not firing
    goods: int = 0  # consecutive, while firing
    breach_since: float | None = None  # s, when the current run of breaches began
    last_at: float = 0.0  # s, the newest value's time: older ones are ignored
    values: list[float] = field(default_factory=list)  # median mode: the window


def breaches(rule: Rule, threshold: float, value: float) -> bool:
    return value < threshold if rule.op == "below" else value > threshold


def clears(rule: Rule, threshold: float, value: float) -> bool:
    """On the good side of the threshold by at least the hysteresis."""
    margin = abs(threshold) * rule.hysteresis_pct / 100
    return value >= threshold + margin if rule.op == "below" else value <= threshold - margin


def step(rule: Rule, threshold: float, value: float, at_s: float, s: Subject) -> Change | None:
    """Feed one value measured at ``at_s``; "fire" / "resolve" when the state flips."""
    if at_s < s.last_at:
        return None  # a late value: history, not news
    s.last_at = at_s
    if rule.mode == "median":
        s.values = [*s.values, value][-rule.window :]
        if len(s.values) < rule.window:
            return None
        value = statistics.median(s.values)
    bad = breaches(rule, threshold, value)
    if not s.firing:
        if not bad:
            s.breaches, s.breach_since = 0, None
            return None
        s.breaches += 1
        if s.breach_since is None:
            s.breach_since = at_s
        needed = 1 if rule.mode == "median" else rule.count
        if s.breaches >= needed and at_s - s.breach_since >= rule.for_s:
            s.firing, s.goods = True, 0
            return "fire"
        return None
    if not clears(rule, threshold, value):
        s.goods = 0
        return None
    s.goods += 1
    needed = 1 if rule.mode == "median" else rule.clear_count
    if s.goods >= needed:
        s.firing, s.breaches, s.breach_since = False, 0, None
        return "resolve"
    return None
