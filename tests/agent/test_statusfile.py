"""status.json: padded so that a full disk can still take it in place, read again when
caught half-written, and rendered with the storage state and the losses by reason. The
real full disk: tests/agent/test_full_disk.py."""

from __future__ import annotations

import errno
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from probefleet.agent import statusfile


def doc(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "probe_id": "p-1",
        "agent_version": "0.2.0",
        "pid": os.getpid(),
        "state": "running",
        "written_at": time.time(),
        "measuring": True,
        "mqtt": {"broker": "localhost:1883", "connected": True},
        "spool": {
            "depth": 3, "bytes": 900, "max_bytes": 100_000_000, "next_seq": 41,
            "oldest_seq": 38, "dropped": 0, "held_in_memory": 0, "held_bytes": 0,
            "memory_max_bytes": 16_000_000,
            "dropped_by_reason": {"disk_full": 0, "spool_budget": 0, "unspoolable": 0},
        },
        "storage": {"state": "ok", "since": None, "error": None, "counters_unsaved": False,
                    "reserve": True},
        "clock": {"synced": True, "uptime_s": 100.0, "since_sync_s": 1.0},
        "config": {"file": "/etc/probefleet/agent.toml"},
        "budgets": [],
        "last_results": [],
    }  # fmt: skip
    base.update(changes)
    return base


def test_the_file_is_padded_to_whole_blocks_with_room_to_grow(tmp_path: Path) -> None:
    assert statusfile.write(tmp_path, doc()) == "replaced"
    path = tmp_path / statusfile.STATUS_FILE
    size = path.stat().st_size
    assert size % 4096 == 0
    assert size - len(path.read_bytes().rstrip()) >= 2048
    assert statusfile.read(tmp_path)["probe_id"] == "p-1"


def test_no_room_for_a_temp_file_rewrites_it_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statusfile.write(tmp_path, doc())
    inode = (tmp_path / statusfile.STATUS_FILE).stat().st_ino

    def no_space(*_a: Any, **_k: Any) -> tuple[int, str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    spool = {**doc()["spool"], "held_in_memory": 12}
    assert statusfile.write(tmp_path, doc(spool=spool)) == "in place"
    assert (tmp_path / statusfile.STATUS_FILE).stat().st_ino == inode
    assert statusfile.read(tmp_path)["spool"]["held_in_memory"] == 12
    # A document that outgrew the file cannot go in place: the error is the caller's.
    with pytest.raises(OSError, match="No space"):
        statusfile.write(tmp_path, doc(config={"error": "x" * 20_000}))


def test_a_reader_catching_an_in_place_write_half_done_reads_again(tmp_path: Path) -> None:
    statusfile.write(tmp_path, doc())
    path = tmp_path / statusfile.STATUS_FILE
    whole = path.read_bytes()
    path.write_bytes(whole[:100])  # what a reader may see in the middle of a rewrite

    def finish() -> None:
        time.sleep(0.1)
        path.write_bytes(whole)

    writer = threading.Thread(target=finish)
    writer.start()
    try:
        assert statusfile.read(tmp_path)["probe_id"] == "p-1"
    finally:
        writer.join()
    path.write_bytes(whole[:100])
    with pytest.raises(json.JSONDecodeError):
        statusfile.read(tmp_path)


def test_render_tells_of_a_full_disk_what_memory_holds_and_the_losses_by_reason() -> None:
    full = doc(
        spool={**doc()["spool"], "held_in_memory": 12, "held_bytes": 9000, "dropped": 5,
               "dropped_by_reason": {"disk_full": 4, "spool_budget": 1, "unspoolable": 0}},
        storage={"state": "disk_full", "since": 1_767_225_600.0, "counters_unsaved": True,
                 "error": "spool /var/lib/probefleet/spool.db: database or disk is full"},
    )  # fmt: skip
    text, healthy = statusfile.render(full)
    assert healthy
    assert "lost        5 results ever (disk full 4, spool budget 1, unspoolable 0)" in text
    assert "storage     DISK FULL since 2026-01-01 00:00:00Z: the disk refuses results; " in text
    assert "12 results (0.0 MB) held in memory, of 16.0 MB" in text
    assert "database or disk is full" in text
    assert "the lost-results counters are not written yet" in text
    text, _ = statusfile.render(doc())
    assert "lost        0 results ever\n" in text
    assert "storage     ok\n" in text


def test_probe_agent_status_shows_the_loss_book_when_it_is_newer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from probefleet.agent import cli
    from probefleet.agent.losses import LossBook

    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(f'[probe]\nid = "p-1"\nstate_dir = "{state}"\n')
    statusfile.write(state, doc())  # says 0 lost: written before the last losses
    LossBook(state).lost("disk_full", 7)
    assert cli.main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "lost        7 results ever (disk full 7, spool budget 0, unspoolable 0)" in out
    assert cli.main(["status", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spool"]["dropped"] == 0  # the file as it is


def test_render_says_per_mobile_interface_whether_radio_is_read_and_why_not() -> None:
    why = "no ModemManager on the D-Bus system bus"
    radio = {"attach": True, "bus": "system", "interfaces": {"wwan0": "ok", "wwan1": why}}
    text, _ = statusfile.render(doc(radio=radio))
    assert "radio       wwan0 ok\n" in text
    assert f"radio       wwan1 absent: {why}\n" in text
    text, _ = statusfile.render(doc(radio={**radio, "attach": False, "interfaces": {}}))
    assert "radio       not attached to results ([radio] attach = false)" in text
    assert "radio" not in statusfile.render(doc())[0]  # an older agent's status: nothing
