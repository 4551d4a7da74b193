"""Rollup buckets held on local disk across a stop (collector/rollups_held.py): what a stop
holds comes back at the next start, exactly, counts once, and is cleared only once the part
that carries it is stored. (At 10,000 probes writing them at the stop took 10.7 s of a 10 s
shutdown; the results of the stop's own last batch were never rolled up at all.)"""

from __future__ import annotations

from pathlib import Path

from probefleet.collector._batch import Item
from probefleet.collector.rollups_bucket import Buckets
from probefleet.collector.rollups_feeder import Rollups

from tests.collector.report import rollup_fleet as rf


def _items(results: list[rf.Result]) -> list[Item]:
    return [Item("t", None, r.probe, r.seq, points=r.points) for r in results]


def _fields(lines: list[str]) -> dict[str, str]:
    """Line protocol -> series key: its fields (the part's own nanosecond left out)."""
    out = {}
    for line in lines:
        head, fields, _time = line.rsplit(" ", 2)
        out[head] = fields
    return out


def test_a_stop_holds_its_open_buckets_and_the_next_start_carries_them_exactly(
    tmp_path: Path,
) -> None:
    results = list(rf.fleet(rf.enrichment(3), rf.VN_START, 1, seed=5))
    half = len(results) // 2
    # The reference: one collector that never stops, one flush.
    ref_lines: list[str] = []
    ref = Rollups(tmp_path / "ref", emit=lambda _t, lines: ref_lines.extend(lines), flush_s=1e9)
    ref.on_batch(_items(results))
    ref.flush()
    # Stopped half-way: the open buckets go to disk, not to InfluxDB.
    emitted: list[tuple[str, list[str]]] = []
    first = Rollups(tmp_path, emit=lambda t, lines: emitted.append((t, lines)), flush_s=1e9)
    first.on_batch(_items(results[:half]))
    held = first.hold()
    assert held > 0
    assert emitted == []  # nothing written at the stop
    first.close()
    # The next start takes them back; a re-sent result counts once; the rest comes.
    again = Rollups(tmp_path, emit=lambda t, lines: emitted.append((t, lines)), flush_s=1e9)
    assert again.unclean_since is None  # a clean stop: nothing to rebuild
    assert len(again.open) == held
    again.on_batch(_items(results[half - 5 :]))  # five of them sent again
    assert again.duplicates == 5
    again.flush()
    topic, lines = emitted[-1]
    assert _fields(lines) == _fields(ref_lines)  # every figure as if it had never stopped
    # Until that part is stored, a crash would find the held rows still there.
    crashed = Rollups(tmp_path, emit=lambda _t, _lines: None, flush_s=1e9)
    assert len(crashed.open) == held
    crashed.db.close()
    again.on_batch([Item(topic, None, None, None, lines=lines)])  # the part is stored
    again.close()
    third = Rollups(tmp_path, emit=lambda _t, _lines: None)
    assert third.open == Buckets()  # cleared with the stored part
    assert third.unclean_since is None
    third.close()


def test_a_second_stop_before_the_carrying_part_is_stored_keeps_both(tmp_path: Path) -> None:
    results = list(rf.fleet(rf.enrichment(2), rf.VN_START, 1, seed=7))
    third = len(results) // 3
    ref_lines: list[str] = []
    ref = Rollups(tmp_path / "ref", emit=lambda _t, lines: ref_lines.extend(lines), flush_s=1e9)
    ref.on_batch(_items(results))
    ref.flush()
    first = Rollups(tmp_path, emit=lambda _t, _lines: None, flush_s=1e9)
    first.on_batch(_items(results[:third]))
    first.hold()
    first.close()
    # Started, flushed the held buckets into a part that is never stored, got more, stopped.
    second = Rollups(tmp_path, emit=lambda _t, _lines: None, flush_s=1e9)
    second.flush()
    second.on_batch(_items(results[third : 2 * third]))
    second.hold()
    second.close()
    emitted: list[tuple[str, list[str]]] = []
    last = Rollups(tmp_path, emit=lambda t, lines: emitted.append((t, lines)), flush_s=1e9)
    last.on_batch(_items(results[2 * third :]))
    last.flush()
    assert _fields(emitted[-1][1]) == _fields(ref_lines)
    last.db.close()
