"""Wire contract cost: strict decode+validate and encode, against stdlib json on the same data.

The collector decodes every result it receives (goal: 5,000 results/s end to end), so the
contract's decoder must be a small share of that budget.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import header, line, rate
from probefleet.core import wire

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="messages per repetition")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    payloads = [p.read_bytes() for p in sorted(GOLDEN.glob("result-*.json"))]
    batch = [payloads[i % len(payloads)] for i in range(args.n)]
    decoded = [wire.decode_result(p) for p in batch]
    plain = [json.loads(p) for p in batch]

    def ours_decode() -> int:
        for p in batch:
            wire.decode_result(p)
        return len(batch)

    def ref_decode() -> int:
        for p in batch:
            json.loads(p)
        return len(batch)

    def ours_encode() -> int:
        for m in decoded:
            wire.encode(m)
        return len(decoded)

    def ref_encode() -> int:
        for d in plain:
            json.dumps(d).encode()
        return len(plain)

    header()
    line(
        "decode+validate result",
        rate(ours_decode, args.repeat),
        rate(ref_decode, args.repeat),
        "msg/s",
        "json.loads, no validation",
    )
    line(
        "encode result",
        rate(ours_encode, args.repeat),
        rate(ref_encode, args.repeat),
        "msg/s",
        "json.dumps of the same dicts",
    )


if __name__ == "__main__":
    main()
