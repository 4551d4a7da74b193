"""Radio context cost on a probe: RSS the agent adds for the D-Bus seam, CPU per radio read.

Against ModemManager on a private D-Bus (python-dbusmock, tests/harness/modemmanager.py), a
modem in LTE with Signal and cell info. Each RSS figure comes from a fresh interpreter that
has already imported the agent's runner (what a probe has loaded anyway):

- RSS: ``import probefleet.kinds.radio.reader`` (jeepney + our seam) and then one read,
  beside jeepney's blocking client alone;
- CPU per read: ``RadioReader.read("wwan0")`` (connect, authenticate, NameHasOwner,
  GetManagedObjects, Sim GetAll, GetCellInfo, map, close), beside one bare
  ``Properties.GetAll`` of the Modem interface on an open connection.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.harness

from _report import header, line, spread
from jeepney import DBusAddress, Properties
from jeepney.io.blocking import open_dbus_connection
from probefleet.kinds.radio.reader import RadioReader

from tests.harness.modemmanager import ModemManagerMock

ROOT = Path(__file__).resolve().parents[1]

_RSS = """
import json, sys
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
import probefleet.agent.runner
before = rss()
if sys.argv[1] == "seam":
    from probefleet.kinds.radio.reader import RadioReader
    imported = rss()
    got = RadioReader(sys.argv[2]).read("wwan0")
    assert not hasattr(got, "reason"), got
    read = rss()
else:
    import jeepney.io.blocking
    imported = read = rss()
print(json.dumps([imported - before, read - before]))
"""


def rss_kib(what: str, address: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _RSS, what, address],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    imported, read = json.loads(out)
    return float(imported), float(read)


def cpu_us_per_call(call: Callable[[], object], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="reads per repetition")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    header()
    with ModemManagerMock() as mm:
        mm.add_modem(scene="lte")
        seam = [rss_kib("seam", mm.address) for _ in range(args.repeat)]
        bare = [rss_kib("jeepney", mm.address) for _ in range(args.repeat)]
        line(
            "RSS added: import",
            spread([s[0] for s in seam]),
            spread([b[0] for b in bare]),
            "KiB",
            "import jeepney.io.blocking alone",
        )
        line(
            "RSS added: import + 1st read",
            spread([s[1] for s in seam]),
            spread([b[0] for b in bare]),
            "KiB",
            "import jeepney.io.blocking alone",
        )

        reader = RadioReader(mm.address, signal_rate_s=10)
        reader.read("wwan0")  # Signal.Setup happens once: not part of a steady read
        conn = open_dbus_connection(bus=mm.address)
        modem = DBusAddress(
            "/org/freedesktop/ModemManager1/Modem/0",
            bus_name="org.freedesktop.ModemManager1",
            interface="org.freedesktop.ModemManager1.Modem",
        )
        get_all = Properties(modem).get_all()
        try:
            ours = [cpu_us_per_call(lambda: reader.read("wwan0"), args.n)
                    for _ in range(args.repeat)]  # fmt: skip
            ref = [cpu_us_per_call(lambda: conn.send_and_get_reply(get_all, timeout=2.0), args.n)
                   for _ in range(args.repeat)]  # fmt: skip
            wall_start = time.perf_counter()
            for _ in range(args.n):
                reader.read("wwan0")
            wall_ms = (time.perf_counter() - wall_start) / args.n * 1e3
        finally:
            conn.close()
        line("CPU per radio read", spread(ours), spread(ref), "us CPU",
             "one bare Properties.GetAll on an open connection")  # fmt: skip
        print(f"wall time per radio read: {wall_ms:.1f} ms (mock ModemManager, loaded machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
