"""The data budget of metered links: booking from counters, months, refusals, estimates, the
ledger's durability (restarts, kill -9 mid-write, a corrupt file) and its health figures."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from probefleet.agent.budget import MB, Budget, BudgetConfig, limits_from
from probefleet.agent.config import InterfaceSection
from probefleet.agent.errors import StateError
from probefleet.core import configkit, wire
from probefleet.kinds.health.payload import BudgetUsage, HealthData

ROOT = Path(__file__).resolve().parents[2]
MAY_END = dt.datetime(2026, 5, 31, 23, 59, 30, tzinfo=dt.UTC)


class Nic(NamedTuple):  # the shape of psutil's snetio, the fields the budget reads
    bytes_recv: int
    bytes_sent: int


class FakeProbe:
    """Clock, boot id, interface counters and indexes of a simulated probe."""

    def __init__(self) -> None:
        self.now = MAY_END
        self.boot = str(uuid.uuid4())
        self.nics: dict[str, int] = {"wwan0": 0, "eth0": 0}
        self.ifindex: dict[str, int] = {"wwan0": 3, "eth0": 2}

    def move(self, name: str, n: int) -> None:
        self.nics[name] += n

    def counters(self) -> dict[str, Nic]:
        return {n: Nic(total // 3, total - total // 3) for n, total in self.nics.items()}

    def reboot(self) -> None:
        self.boot = str(uuid.uuid4())
        self.nics = dict.fromkeys(self.nics, 0)

    def budget(self, state: Path, limits: dict[str, int] | None = None, **kw: object) -> Budget:
        return Budget(
            state,
            {"wwan0": 2_000 * MB} if limits is None else limits,
            clock=lambda: self.now,
            counters=self.counters,
            boot=lambda: self.boot,
            ifindex=self.ifindex.__getitem__,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
def probe() -> FakeProbe:
    return FakeProbe()


def _ledger(state: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / "budget.json").read_text())
    return data


# --- booking ---------------------------------------------------------------------------------


def test_counters_are_booked_from_the_first_sight_on(probe: FakeProbe, tmp_path: Path) -> None:
    probe.move("wwan0", 900 * MB)  # before the agent ever looked: unknown month, not booked
    budget = probe.budget(tmp_path)
    assert budget.sync() == {}
    probe.move("wwan0", 30 * MB)
    probe.move("eth0", 5_000 * MB)  # unmetered: never booked
    assert budget.sync() == {"wwan0": 30 * MB}
    assert budget.used("wwan0") == 30 * MB
    assert budget.sync() == {"wwan0": 0}
    assert budget.used("eth0") == 0


def test_a_reboot_or_a_replugged_modem_books_everything_the_counters_show(
    probe: FakeProbe, tmp_path: Path
) -> None:
    budget = probe.budget(tmp_path)
    budget.sync()
    probe.move("wwan0", 10 * MB)
    budget.sync()
    probe.reboot()
    probe.move("wwan0", 4 * MB)  # since boot; the agent was down meanwhile
    budget = probe.budget(tmp_path)
    assert budget.sync() == {"wwan0": 4 * MB}
    # The modem re-plugged: a new interface (new index) whose counters restarted at zero and
    # already passed the old reading.
    probe.ifindex["wwan0"] = 9
    probe.nics["wwan0"] = 6 * MB
    assert budget.sync() == {"wwan0": 6 * MB}
    assert budget.used("wwan0") == 20 * MB
    del probe.nics["wwan0"]  # unplugged: nothing moves, nothing is booked
    assert budget.sync() == {}


def test_a_restart_keeps_the_ledger_and_books_what_moved_while_down(
    probe: FakeProbe, tmp_path: Path
) -> None:
    budget = probe.budget(tmp_path)
    budget.sync()
    probe.move("wwan0", 7 * MB)
    budget.sync()
    budget.note_test("wwan0", 120 * MB)
    budget.charge("wwan0", 1 * MB)
    probe.move("wwan0", 2 * MB)  # the agent is stopped; the SIM still carries traffic
    again = probe.budget(tmp_path)  # a new process, same boot
    assert again.used("wwan0") == 8 * MB
    assert again.estimate("wwan0") == 120 * MB
    assert again.sync() == {"wwan0": 2 * MB}
    assert again.used("wwan0") == 10 * MB


def test_a_new_month_starts_at_zero(probe: FakeProbe, tmp_path: Path) -> None:
    budget = probe.budget(tmp_path)
    budget.charge("wwan0", 1_500 * MB)
    assert [u.month for u in budget.usage()] == ["2026-05"]
    probe.now = MAY_END + dt.timedelta(seconds=31)  # 2026-06-01T00:00:01Z
    assert budget.used("wwan0") == 0
    assert budget.usage() == [
        BudgetUsage(interface="wwan0", month="2026-06", used_bytes=0, limit_bytes=2_000 * MB)
    ]
    budget.charge("wwan0", 1 * MB)
    assert _ledger(tmp_path)["used"] == {"2026-05": {"wwan0": 1_500 * MB}, "2026-06": {"wwan0": MB}}


def test_a_clock_in_the_past_keeps_booking_the_latest_month(
    probe: FakeProbe, tmp_path: Path
) -> None:
    budget = probe.budget(tmp_path)
    budget.charge("wwan0", 100 * MB)
    probe.now = dt.datetime(1970, 1, 1, 0, 0, 42, tzinfo=dt.UTC)  # booted without a clock
    budget.charge("wwan0", 5 * MB)
    assert budget.month() == "2026-05"
    assert budget.used("wwan0") == 105 * MB


def test_months_older_than_a_year_are_dropped(probe: FakeProbe, tmp_path: Path) -> None:
    budget = probe.budget(tmp_path)
    for month in range(20):
        probe.now = dt.datetime(2025 + month // 12, month % 12 + 1, 15, tzinfo=dt.UTC)
        budget.charge("wwan0", MB)
    months = sorted(_ledger(tmp_path)["used"])
    assert (len(months), months[0], months[-1]) == (13, "2025-08", "2026-08")


# --- decisions ---------------------------------------------------------------------------------


def test_a_test_that_would_pass_the_limit_is_refused(probe: FakeProbe, tmp_path: Path) -> None:
    # 2,000 MB a month, 500 MB kept for results: heavy tests may use up to 1,500 MB.
    budget = probe.budget(tmp_path)
    budget.charge("wwan0", 1_300 * MB)
    ok, why = budget.allows("wwan0")  # first test: 150 MB assumed
    assert ok, why
    assert (
        why
        == "data budget of wwan0 for 2026-05: 1,300 MB of 2,000 MB used; this test needs ~150 MB"
    )
    probe.move("wwan0", 60 * MB)  # after the first sight, so booked by allows()
    ok, why = budget.allows("wwan0")
    assert not ok
    assert why == (
        "data budget of wwan0 for 2026-05: 1,360 MB of 2,000 MB used; "
        "this test needs ~150 MB and 500 MB is kept for results"
    )
    assert budget.allows("wwan0", 140 * MB)[0]
    assert budget.detail("wwan0") == {
        "budget_used_bytes": 1_360e6,
        "budget_limit_bytes": 2_000e6,
        "budget_estimate_bytes": 150e6,
        "budget_reserve_bytes": 500e6,
    }
    probe.now = MAY_END + dt.timedelta(days=1)
    assert budget.allows("wwan0")[0]  # June


def test_unmetered_links_are_always_allowed(probe: FakeProbe, tmp_path: Path) -> None:
    budget = probe.budget(tmp_path, {"wwan0": 1_000 * MB, "eth0": 0})
    budget.charge("wwan0", 1_000 * MB)
    for interface in ("eth0", "wlan0", None):
        ok, why = budget.allows(interface, 10**15)
        assert ok, why
        assert why.endswith("is unmetered")
    budget.charge("eth0", 10**12)
    assert budget.used("eth0") == 0
    assert not budget.allows("wwan0")[0]
    assert [u.interface for u in budget.usage()] == ["wwan0"]


def test_the_estimate_is_the_largest_of_the_last_three_tests(
    probe: FakeProbe, tmp_path: Path
) -> None:
    budget = probe.budget(tmp_path, config=BudgetConfig(first_estimate_mb=200))
    assert budget.estimate("wwan0") == 200 * MB
    for size in (90, 300, 110, 100):
        budget.note_test("wwan0", size * MB)
    assert budget.estimate("wwan0") == 300 * MB
    budget.note_test("wwan0", 95 * MB)  # 300 falls out of the window
    assert budget.estimate("wwan0") == 110 * MB
    assert budget.estimate("wwan0", kind="ookla") == 200 * MB  # another kind, its own sizes


def test_metered_books_the_test_and_remembers_its_size(probe: FakeProbe, tmp_path: Path) -> None:
    budget = probe.budget(tmp_path)
    budget.sync()
    probe.move("wwan0", 3 * MB)  # MQTT before the test: booked, not part of the test
    with budget.metered("wwan0", kind="throughput"):
        probe.move("wwan0", 180 * MB)
    assert budget.used("wwan0") == 183 * MB
    assert budget.estimate("wwan0") == 180 * MB

    def failing_test() -> None:
        with budget.metered("wwan0"):
            probe.move("wwan0", 7 * MB)
            raise RuntimeError("server vanished")

    with pytest.raises(RuntimeError):
        failing_test()
    assert budget.used("wwan0") == 190 * MB  # booked all the same
    assert budget.estimate("wwan0") == 180 * MB  # a failed test is no estimate
    with budget.metered("eth0"):  # unmetered: nothing to do
        probe.move("eth0", 10**9)
    assert budget.used("eth0") == 0


def test_near_limit(probe: FakeProbe, tmp_path: Path) -> None:
    budget = probe.budget(tmp_path)
    budget.charge("wwan0", 1_799 * MB)
    assert not budget.near_limit("wwan0")
    budget.charge("wwan0", 1 * MB)
    assert budget.near_limit("wwan0")
    assert not budget.near_limit("wwan0", fraction=0.95)
    assert not budget.near_limit("eth0", fraction=0.0)


def test_usage_is_valid_health_on_the_wire(probe: FakeProbe, tmp_path: Path) -> None:
    budget = probe.budget(tmp_path, {"wwan0": 20_000 * MB, "ppp0": 500 * MB})
    budget.charge("wwan0", 1_234_567_890)
    health = HealthData(
        cpu_pct=3.0,
        load_1m=0.1,
        memory_used_pct=40.0,
        memory_available_bytes=10**9,
        disk_used_pct=20.0,
        disk_free_bytes=10**10,
        uptime_s=100.0,
        agent_rss_bytes=40 * 10**6,
        budgets=budget.usage(),
    )
    back: HealthData = wire.decode(wire.encode(health), HealthData)
    assert [(u.interface, u.month, u.used_bytes, u.limit_bytes) for u in back.budgets] == [
        ("ppp0", "2026-05", 0, 500 * MB),
        ("wwan0", "2026-05", 1_234_567_890, 20_000 * MB),
    ]


def test_limits_come_from_the_interfaces_section() -> None:
    interfaces = [
        InterfaceSection(name="eth0", access="fixed"),
        InterfaceSection(name="wwan0", access="mobile", monthly_budget_mb=20_000),
    ]
    assert limits_from(interfaces) == {"wwan0": 20_000 * MB}
    assert configkit.build({}, BudgetConfig) == BudgetConfig()


# --- durability --------------------------------------------------------------------------------


def test_a_write_interrupted_by_a_crash_leaves_the_old_ledger(
    probe: FakeProbe, tmp_path: Path
) -> None:
    budget = probe.budget(tmp_path)
    budget.charge("wwan0", 42 * MB)
    before = (tmp_path / "budget.json").read_bytes()
    # kill -9 between writing the temp file and renaming it: half a new ledger on disk.
    partial = tmp_path / ".budget.json.k9x2ab.tmp"
    partial.write_bytes(before.replace(b"42000000", b"99000000")[: len(before) // 2])
    again = probe.budget(tmp_path)
    assert again.used("wwan0") == 42 * MB
    assert not partial.exists()  # cleaned up
    assert (tmp_path / "budget.json").read_bytes() == before


_WRITER = """
import sys
from probefleet.agent.budget import Budget
budget = Budget(sys.argv[1], {"wwan0": 10**15}, counters=dict)
done = 0
while True:
    budget.charge("wwan0", 1000)
    done += 1
    print(done, flush=True)
"""


@pytest.mark.slow  # > 1 s: the full suite runs it
def test_kill_9_during_writes_never_breaks_the_ledger(tmp_path: Path) -> None:
    """A real process charging as fast as it can, killed with SIGKILL after a random number
    of charges (so at a random point of a write): each time a new Budget reads a whole
    ledger holding at least every charge that had returned."""
    targets = [3, 41, 7, 150, 19, 88]
    leftovers = 0
    for target in targets:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        acknowledged = 0
        try:
            while acknowledged < target:
                line = proc.stdout.readline()
                assert line, "the writer died"
                acknowledged = int(line)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stdout.close()
        leftovers += len(list(tmp_path.glob(".budget.json.*.tmp")))
        used = Budget(tmp_path, {"wwan0": 10**15}, counters=dict).used("wwan0")
        assert used % 1000 == 0
        assert used >= acknowledged * 1000
        total = sum(targets[: targets.index(target) + 1]) * 1000
        assert used >= total
    assert not list(tmp_path.glob(".budget.json.*.tmp"))
    print(f"kill -9: {leftovers} of {len(targets)} kills left a temp file behind")


def test_an_unreadable_ledger_counts_the_month_as_spent(probe: FakeProbe, tmp_path: Path) -> None:
    (tmp_path / "budget.json").write_bytes(b"\x00\x00\x00 sd card gave up")
    budget = probe.budget(tmp_path)
    ok, why = budget.allows("wwan0")
    assert not ok
    assert "2,000 MB of 2,000 MB used" in why
    assert (tmp_path / "budget.json.corrupt").read_bytes().startswith(b"\x00\x00\x00")
    probe.now = MAY_END + dt.timedelta(days=1)
    assert budget.allows("wwan0")[0]  # June starts afresh
    assert probe.budget(tmp_path).used("wwan0") == 0  # and the new ledger is whole


def test_an_unusable_state_dir_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StateError, match="cannot create"):
        Budget(tmp_path / "file" / "state", {"wwan0": MB})


def test_a_disk_refusing_the_ledger_costs_no_test_and_no_health_report(
    probe: FakeProbe, tmp_path: Path
) -> None:
    budget = probe.budget(tmp_path)
    budget.sync()
    (tmp_path / "budget.json").unlink()
    (tmp_path / "budget.json").mkdir()  # every write fails for real: rename onto a directory
    (tmp_path / "budget.json" / "x").touch()
    with budget.metered("wwan0"):
        probe.move("wwan0", 300 * MB)  # a test that ends well: no StateError out of it
    assert budget.used("wwan0") == 300 * MB  # booked in memory
    assert budget.usage()[0].used_bytes == 300 * MB  # health still gets its figures
    assert budget.allows("wwan0")[0]
    (tmp_path / "budget.json" / "x").unlink()
    (tmp_path / "budget.json").rmdir()
    budget.sync()  # nothing moved since, but the booking is written now
    assert probe.budget(tmp_path).used("wwan0") == 300 * MB


# --- real counters -------------------------------------------------------------------------------


def _push(n: int) -> None:
    """``n`` bytes through a TCP pair on loopback."""
    server = socket.create_server(("127.0.0.1", 0))
    got = 0

    def drain() -> None:
        nonlocal got
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(1 << 16):
                got += len(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with socket.create_connection(server.getsockname()) as client:
        client.sendall(b"\0" * n)
    reader.join(timeout=10)
    server.close()
    assert got == n


def test_real_counters_book_real_traffic(tmp_path: Path) -> None:
    """psutil's counters of ``lo``, treated as a metered link: 4 MB pushed through it is
    booked at least twice (loopback counts each byte received and sent). Other traffic on
    the machine's loopback can only add to it."""
    budget = Budget(tmp_path, {"lo": 10**15})
    budget.sync()
    _push(4 * MB)
    booked = budget.sync()["lo"]
    assert booked >= 2 * 4 * MB
    assert budget.used("lo") == booked
    assert os.stat(tmp_path / "budget.json").st_mode & 0o777 == 0o640
