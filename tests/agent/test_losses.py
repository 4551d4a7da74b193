"""The loss book: counts by reason for life, written in place in two slots (a torn write
costs the last update only), held results counted after a crash, a file it cannot write
waiting in memory until it can. The full disk itself: tests/agent/test_full_disk.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from probefleet.agent.losses import LOSSES_FILE, LossBook


def restarted(book: LossBook, tmp_path: Path) -> LossBook:
    """The book as the next start reads it: a copy of the file, opened afresh."""
    again = tmp_path / f"restart-{len(list(tmp_path.glob('restart-*')))}"
    again.mkdir()
    shutil.copy(book.path, again / LOSSES_FILE)
    return LossBook(again)


def test_counts_survive_a_restart_and_the_file_never_grows(tmp_path: Path) -> None:
    book = LossBook(tmp_path)
    assert book.path.stat().st_size == 512  # made at once, while there is room
    book.lost("disk_full", 3)
    book.lost("unspoolable")
    book.lost("disk_full")
    assert book.counts() == {"disk_full": 4, "unspoolable": 1}
    assert restarted(book, tmp_path).counts() == {"disk_full": 4, "unspoolable": 1}
    assert book.path.stat().st_size == 512


def test_a_torn_write_costs_only_the_update_it_was_writing(tmp_path: Path) -> None:
    book = LossBook(tmp_path)
    book.lost("disk_full", 2)
    book.lost("disk_full", 5)  # the newest slot says 7, the other one 2
    raw = bytearray(book.path.read_bytes())
    newest = 0 if b'"disk_full":7' in raw[:256] else 256
    raw[newest + 10 : newest + 40] = b"\0" * 30  # a power cut in the middle of that write
    book.path.write_bytes(bytes(raw))
    assert restarted(book, tmp_path).counts()["disk_full"] == 2


def test_results_held_when_the_agent_died_are_counted_at_the_next_start(tmp_path: Path) -> None:
    book = LossBook(tmp_path)
    book.lost("disk_full", 1, held=6)  # and then kill -9
    again = restarted(book, tmp_path)
    assert again.counts()["disk_full"] == 7
    assert restarted(again, tmp_path).counts()["disk_full"] == 7  # counted once, not twice
    book.held(0)  # a clean stop: nothing held
    assert restarted(book, tmp_path).counts()["disk_full"] == 1


def test_a_book_it_cannot_write_waits_in_memory_until_it_can(tmp_path: Path) -> None:
    (tmp_path / LOSSES_FILE).mkdir()  # a real error on every write: EISDIR
    book = LossBook(tmp_path)
    book.lost("disk_full", 2)

    def unsaved() -> bool:
        return book.unsaved

    assert unsaved()
    assert book.error is not None
    assert book.counts()["disk_full"] == 2
    assert not book.flush()
    (tmp_path / LOSSES_FILE).rmdir()
    assert book.flush()
    assert not unsaved()
    assert restarted(book, tmp_path).counts()["disk_full"] == 2


def test_an_unreadable_book_starts_from_zero_and_is_rewritten(tmp_path: Path) -> None:
    (tmp_path / LOSSES_FILE).write_bytes(b"garbage" * 100)
    book = LossBook(tmp_path)
    assert book.counts() == {"disk_full": 0, "unspoolable": 0}
    book.lost("unspoolable")
    assert restarted(book, tmp_path).counts()["unspoolable"] == 1
