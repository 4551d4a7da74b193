"""The `ookla` field table: the same point as `throughput` (same payload), in `ookla`."""

from __future__ import annotations

from probefleet.kinds.throughput.fields import rows

__all__ = ["rows"]
