"""The agent's sample config, its measurement tables assembled from the kinds' folders.

Each kind documents its own ``[measurements.<kind>]`` table in ``kinds/<kind>/sample.toml``;
``config/agent.sample.toml`` holds them between two marker lines, in registry order. A
source checkout only (the fragments are not installed)::

    python -m probefleet.kinds.samples config/agent.sample.toml           # rewrite it
    python -m probefleet.kinds.samples config/agent.sample.toml --check   # exit 1 if stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from probefleet import kinds

BEGIN = (
    "# >>> one table per measurement kind: kinds/<kind>/sample.toml, assembled here by "
    "`make samples`"
)
END = "# <<< end of the measurement kinds' tables"


def assembled(sample: str) -> str:
    """``sample`` with the text between the markers replaced by every kind's fragment."""
    head, begin, rest = sample.partition(BEGIN + "\n")
    _old, end, tail = rest.partition(END + "\n")
    if not begin or not end:
        raise ValueError(f"the sample has no {BEGIN!r} ... {END!r} block")
    fragments = [spec.sample.read_text(encoding="utf-8").strip() for spec in kinds.SPECS.values()]
    return head + begin + "\n" + "\n\n".join(fragments) + "\n\n" + end + tail


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    current = path.read_text(encoding="utf-8")
    wanted = assembled(current)
    if "--check" in argv[1:]:
        if current != wanted:
            print(f"{path} is stale: run `make samples` and commit the result", file=sys.stderr)
            return 1
        return 0
    path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
