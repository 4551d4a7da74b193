"""`python -m demo` (`make demo`): a whole simulated province on this machine, live.

Starts Mosquitto, InfluxDB, nginx (the province's HTTP test server), `probe-collector run`
and one real `probe-agent run` per simulated commune on its own shaped link, shows what
lands in InfluxDB against the plan's targets, and on exit (Ctrl-C, SIGTERM or --duration)
writes the compliance report and stops everything it started.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from demo.links import make_links
from demo.province import COMMUNES, THROUGHPUT_INTERVAL_S, Commune
from demo.stack import BUCKET, Stack
from demo.view import CollectorPoller, Screen, render, snapshot

REFRESH_S = 2.0
PEEK = (
    "--data-urlencode 'q=SELECT download_mbps, target_download_mbps, meets_download_target "
    "FROM throughput GROUP BY commune'"
)


class Stop(Exception):
    """SIGTERM/SIGHUP: leave the main loop the way Ctrl-C does."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    del frame
    raise Stop(signal.Signals(signum).name)


class _Held:
    def __init__(self) -> None:
        self.signals: list[int] = []

    def raise_if_any(self) -> None:
        if signal.SIGINT in self.signals:
            raise KeyboardInterrupt
        if self.signals:
            raise Stop(signal.Signals(self.signals[0]).name)


@contextlib.contextmanager
def held_signals() -> Iterator[_Held]:
    """Record SIGINT/SIGTERM/SIGHUP instead of raising; restore the handlers after."""
    held = _Held()

    def hold(signum: int, frame: FrameType | None) -> None:
        del frame
        if not held.signals:
            say("stopping as soon as the service being started is up ...")
        held.signals.append(signum)

    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {sig: signal.signal(sig, hold) for sig in sigs}
    try:
        yield held
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="Run a simulated Đồng Nai province on this machine: real Mosquitto, "
        "InfluxDB, nginx, collector and one probe agent per commune on shaped links. "
        "Ctrl-C stops everything and writes the compliance report.",
    )
    parser.add_argument(
        "--duration", type=float, default=0, metavar="S", help="stop after S seconds (0: Ctrl-C)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        metavar="DIR",
        help="configs, data and logs (default: a new /tmp/probefleet-demo-<time>)",
    )
    parser.add_argument(
        "--loopback", action="store_true", help="no namespaces: every probe on lo, unshaped"
    )
    parser.add_argument(
        "--offline-after",
        type=float,
        default=150.0,
        metavar="S",
        help="kill -9 the Xuân Hưng probe this long after start, once a result of each of "
        "its measurements is stored (default 150)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="one status line every 10 s instead of a redraw"
    )
    parser.add_argument("--lang", choices=("en", "vi"), default="en", help="report language")
    return parser.parse_args(argv)


EVENTS: collections.deque[str] = collections.deque(maxlen=4)  # shown under the table


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)
    EVENTS.append(f"{dt.datetime.now(dt.UTC):%H:%M:%S}Z {text}")


def _workdir(given: Path | None) -> Path:
    if given is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        given = Path(tempfile.gettempdir()) / f"probefleet-demo-{stamp}"
    given = given.resolve()
    if any(ch.isspace() or ch in ";{}'\"" for ch in str(given)):
        raise SystemExit(f"demo: the work dir must not contain blanks or quotes: {given}")
    given.mkdir(parents=True, exist_ok=True)
    return given


def _clock_hook_needed() -> bool:
    from probefleet.agent.clock import kernel_says_synced

    return kernel_says_synced() is not True


def _endpoints(stack: Stack, workdir: Path) -> dict[str, object]:
    """What a newcomer (or the test) needs to look inside while the demo runs."""
    assert stack.influx is not None
    assert stack.broker is not None
    assert stack.http is not None
    assert stack.collector is not None
    processes = {"collector": stack.collector.pid}
    processes.update({f"agent {p}": a.process.pid for p, a in stack.agents.items()})
    return {
        "workdir": str(workdir),
        "links": stack.links.mode,
        "influxdb_url": stack.influx.v1_url,
        "influxdb_v2_write_url": stack.influx.url,
        "database": BUCKET,
        "mqtt": f"{stack.broker.host}:{stack.broker.port}",
        "http_test_server": stack.http.base_url,
        "collector_config": str(stack.collector_config),
        "listening": [
            [stack.influx.host, stack.influx.http_port],
            [stack.influx.host, stack.influx.backup_port],
            [stack.influx.host, stack.influx.front_port],
            [stack.broker.host, stack.broker.port],
            [stack.http.host, stack.http.port],
            [stack.http.host, stack.http.sink_port],
        ],
        "process_groups": processes,
        "communes": {
            p: {"netns": a.link.netns, "address": a.link.address_v4, "pid": a.process.pid}
            for p, a in stack.agents.items()
        },
    }


def _offline(stack: Stack, snap_rows: dict[str, bool], elapsed_s: float, after_s: float) -> None:
    """Cut the power of the communes meant to go offline, once each of their measurements
    has been seen."""
    for probe, agent in stack.agents.items():
        due = agent.commune.offline_after_s is not None and elapsed_s >= after_s
        if due and not agent.killed and snap_rows.get(probe):
            stack.kill_agent(probe)
            say(
                f"{agent.commune.commune}: the probe lost power (kill -9): the broker sends "
                "its Last Will, the collector marks it offline"
            )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    workdir = _workdir(args.workdir)
    communes: tuple[Commune, ...] = COMMUNES
    links, why_loopback = make_links(args.loopback)
    if why_loopback:
        say(
            f"falling back to loopback ({why_loopback}): every probe runs here over lo, "
            "unshaped, so every line measures as fast as this machine; the verdicts are "
            "not the simulated lines'. Run as root with iproute2 for shaped links."
        )
    hook = _clock_hook_needed()
    if hook:
        say(
            "this kernel says its clock is not NTP-synchronised (a container or VM): the "
            "probes are told it is (demo/clockhook.py), or the collector would hold their "
            "results back as a real unsynchronised Pi's"
        )
    stack = Stack(workdir, links, communes, synced_hook=hook)
    started = dt.datetime.now(dt.UTC)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # Started in the background by a shell, SIGINT arrives ignored: Ctrl-C must still work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    poller: CollectorPoller | None = None
    status = 0
    report_note = ""
    left: list[str] = []
    last_text = ""
    try:
        say(f"work dir {workdir} (configs, data, logs)")
        # A Ctrl-C in the middle of starting a process could leave it running unknown to
        # us: while starting, signals are held and acted on once the stack is up.
        with held_signals() as held:
            stack.start(say)
        held.raise_if_any()
        endpoints = _endpoints(stack, workdir)
        (workdir / "demo.json").write_text(json.dumps(endpoints, indent=2, ensure_ascii=False))
        say(f"InfluxDB {endpoints['influxdb_url']}, database {BUCKET}; details in demo.json")
        # Shown to the user, not run here.
        peek = f"curl -sG {endpoints['influxdb_url']}/query --data-urlencode db={BUCKET} " + PEEK
        poller = CollectorPoller(stack.collector_json, stack.commands).start()
        screen = Screen(tty=sys.stdout.isatty() and not args.plain)
        t0 = time.monotonic()
        reported_dead: set[str] = set()
        assert stack.influx is not None
        while True:
            elapsed = time.monotonic() - t0
            if args.duration and elapsed >= args.duration:
                break
            snap = snapshot(stack.influx, BUCKET, communes, poller)
            _offline(
                stack,
                {r.commune.probe: r.complete for r in snap.rows},
                elapsed,
                args.offline_after,
            )
            for probe in set(stack.dead_agents()) - reported_dead:
                reported_dead.add(probe)
                say(f"the agent of {probe} exited by itself: see {workdir}/agents/{probe}/")
            header = [
                f"probefleet demo — {len(communes)} communes of Đồng Nai, "
                f"{stack.links.mode} links — {int(elapsed)} s",
                f"throughput every {THROUGHPUT_INTERVAL_S} s per commune (first results "
                "within about a minute); InfluxDB "
                f"{endpoints['influxdb_url']} database {BUCKET}",
            ]
            if stack.links.mode == "loopback":
                header.append("LOOPBACK: lines are not shaped, every commune measures this machine")
            footer = [
                *EVENTS,
                "",
                f"look inside: {peek}",
                f"logs: {workdir}",
                "Ctrl-C stops everything and writes the report.",
            ]
            last_text = render(snap, color=screen.tty, header=header, footer=footer)
            screen.show(snap, last_text, elapsed)
            time.sleep(REFRESH_S)
    except (KeyboardInterrupt, Stop) as exc:
        say(f"stopping ({exc if isinstance(exc, Stop) else 'Ctrl-C'})")
    except Exception as exc:
        say(f"failed: {exc}")
        status = 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if poller is not None:
            poller.stop()
        if stack.influx is not None and stack.influx.running and stack.collector is not None:
            say("writing the compliance report ...")
            path, report_note = stack.write_report(started, workdir)
            report_note = f"compliance report: {path}" if path else f"no report: {report_note}"
        say("stopping agents, collector, nginx, Mosquitto, InfluxDB, links ...")
        stack.stop(say)
        left = links.leftovers() + stack.processes_left()
        if left:
            say(f"NOT cleaned up: {', '.join(left)}")
            status = status or 1
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if last_text:
        print("\n" + last_text.replace("Ctrl-C stops everything and writes the report.", ""))
    if not left:
        say("everything it started is stopped; nothing is left running or listening")
    if report_note:
        say(report_note)
    say(f"configs, data and logs kept in {workdir}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
