"""Running a measurement's independent parts side by side, and never waiting past a deadline.

Daemon threads rather than a ThreadPoolExecutor: a part stuck where no timeout reaches
(getaddrinfo has none) is abandoned at the deadline, and a daemon thread cannot hold the
process's exit hostage the way an executor's workers (joined at exit) would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from probefleet.kinds.common.destinations import carried

T = TypeVar("T")


def run_bounded(parts: Sequence[Callable[[], T]], deadline: float) -> list[T | None]:
    """Call every part in its own thread; return their results in order, None for a part
    still running at ``deadline`` (time.monotonic()). The first exception a part raised is
    re-raised here, once all parts have finished or been abandoned. Each thread carries the
    caller's destination guard."""
    results: list[T | None] = [None] * len(parts)
    errors: list[BaseException | None] = [None] * len(parts)

    def call(i: int) -> None:
        try:
            results[i] = parts[i]()
        except BaseException as exc:  # handed to the caller's thread below
            errors[i] = exc

    threads = [
        threading.Thread(target=carried(call), args=(i,), name=f"measure-{i}", daemon=True)
        for i in range(len(parts))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    finished = [not thread.is_alive() for thread in threads]
    for i, error in enumerate(errors):
        if error is not None and finished[i]:
            raise error
    return [result if done else None for result, done in zip(results, finished, strict=True)]
