"""``python -m tests.kinds.toy.launch agent|collector ARGS``: either program, with the toy
kind registered first — the one registry line a new kind needs, here made at run time."""

from __future__ import annotations

import os
import sys

from probefleet import kinds

from tests.kinds import toy

kinds.register(toy.SPEC)

if os.environ.get("TOY_CLOCK_SYNCED") == "1":
    # This container's kernel says its clock is not NTP-disciplined, and the collector
    # quarantines unsynchronised results: report it synchronised, as on a real probe.
    from probefleet.agent import clock

    clock.kernel_says_synced = lambda: True

if __name__ == "__main__":
    program, args = sys.argv[1], sys.argv[2:]
    if program == "agent":
        from probefleet.agent.cli import main
    else:
        from probefleet.collector.cli import main
    raise SystemExit(main(args))
