"""`probe-collector`: the central consumer, and the engineer's one-shot tools."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from probefleet.collector import __version__
from probefleet.collector.config import CollectorConfig, load_config
from probefleet.core import configkit, wire

DEFAULT_CONFIG = Path("/etc/probefleet/collector.toml")


def _load(path: Path) -> CollectorConfig:
    try:
        return load_config(path)
    except configkit.ConfigError as exc:
        print(f"probe-collector: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _file_problems(what: str, path: Path, load: Callable[[Path], object]) -> list[str]:
    """Every problem ``load`` finds in ``path`` (the config's ``what``), as printable blocks;
    [] if it loads. A missing or unreadable file is a problem like any other."""
    if path.is_dir():
        return [f"{path}: is a directory, not a file ({what})"]
    try:
        load(path)
    except configkit.ConfigError as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"{path}: cannot read it ({what}): {exc.strerror or exc}"]
    return []


def _declared_checks(
    areas: Path, names: list[str]
) -> list[tuple[str, Path, Callable[[Path], object]]]:
    """The declared-FTTH files, each checked against the registry's hamlet codes (none when
    the registry itself is broken: its own check says why)."""
    from probefleet.collector.report.areas import load_areas
    from probefleet.collector.report.ftth import load_declared

    try:
        registry = load_areas(areas)
    except configkit.ConfigError:
        return []
    return [
        ("report.ftth_declared_files", Path(name), lambda p: load_declared([p], registry))
        for name in names
    ]


def _cmd_check(args: argparse.Namespace) -> int:
    """The config file and every file it names, all checked, every problem listed at once:
    ``run``, ``fleet`` and ``report`` fail on any of them later, so ``check`` must too."""
    from probefleet.collector.alerts.rules import load_alerts
    from probefleet.collector.inventory import load_inventory, load_targets
    from probefleet.collector.report.settings import load_settings

    cfg = _load(args.config)
    files: list[tuple[str, Path, Callable[[Path], object]]] = [
        ("files.inventory", Path(cfg.files.inventory), load_inventory),
        ("files.targets", Path(cfg.files.targets), load_targets),
    ]
    if cfg.files.alerts:
        files.append(("files.alerts", Path(cfg.files.alerts), load_alerts))
    if cfg.files.areas:
        from probefleet.collector.hamlets import load_hamlets

        files.append(("files.areas", Path(cfg.files.areas), load_hamlets))
    if args.settings is not None:
        files.append(("report --settings", args.settings, load_settings))
        from probefleet.collector.report.areas import load_areas

        try:
            report_settings = load_settings(args.settings)
        except configkit.ConfigError:
            report_settings = None  # the settings' own problems are listed by the line above
        areas = report_settings.areas_file if report_settings else ""
        if areas:
            files.append(("report.areas_file", Path(areas), load_areas))
        if areas and report_settings and report_settings.ftth_declared_files:
            files.extend(_declared_checks(Path(areas), report_settings.ftth_declared_files))
    problems = [p for what, path, load in files for p in _file_problems(what, path, load)]
    state_dir = Path(cfg.files.state_dir)
    if state_dir.exists() and not state_dir.is_dir():
        problems.append(f"{state_dir}: files.state_dir is not a directory")
    if problems:
        noun = "file has" if len(problems) == 1 else "files have"
        print(f"{args.config}: {len(problems)} {noun} problems:", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    shared = f" (shared group {cfg.mqtt.share_group})" if cfg.mqtt.share_group else ""
    print(f"{args.config}: OK, and every file it names")
    print(f"  broker      {cfg.mqtt.url()} as {cfg.mqtt.username}")
    print(f"  session     client id {cfg.mqtt.client_id}{shared}")
    print(f"  influxdb    {cfg.influxdb.url} bucket {cfg.influxdb.bucket}")
    print(f"  token       {'set' if cfg.influxdb.token else 'not set'}")
    for what, path, _load_file in files:
        print(f"  {what.removeprefix('files.'):<11} {path}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    """Check messages against the wire contract, e.g. from a new device's firmware."""
    failures = unreadable = 0
    for path in args.files:
        try:
            raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        except OSError as exc:
            unreadable += 1
            print(f"{path}: cannot read it: {exc.strerror or exc}", file=sys.stderr)
            continue
        try:
            message = wire.decode(raw, wire.schema_types()[args.type])
        except wire.WireError as exc:
            failures += 1
            print(f"{path}: REJECTED at {exc.field}: {exc.reason}")
            continue
        what = wire.kind_of(message) if args.type == "result" else args.type
        print(f"{path}: OK ({what})")
    return 2 if unreadable else 1 if failures else 0


def writable_problem(out: Path) -> str | None:
    """Why ``out`` cannot be written, found before any work (a report runs dozens of
    queries first); None if a file can be created beside it. Tried for real: permission
    bits say nothing for root or a read-only mount."""
    if out.is_dir():
        return f"{out}: is a directory; give a file name"
    parent = out.parent
    if not parent.is_dir():
        return f"{parent}: no such directory"
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{out.name}.", delete=True):
            pass
    except OSError as exc:
        return f"{parent}: cannot write there: {exc.strerror or exc}"
    return None


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    logging.basicConfig(level=cfg.log.level, format="%(levelname)s %(name)s: %(message)s")
    from probefleet.collector.service import (
        run,  # paho and influxdb-client load only for the daemon
    )

    return run(cfg)


def _since(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _cmd_deadletters(args: argparse.Namespace) -> int:
    from probefleet.collector import deadletter
    from probefleet.collector.errors import StateError

    cfg = _load(args.config)
    try:
        rows = deadletter.list_deadletters(
            Path(cfg.files.state_dir), limit=args.limit, probe=args.probe, since=args.since
        )
    except StateError as exc:
        print(f"probe-collector: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for d in rows:
            doc = {
                "id": d.id,
                "received_at": d.received.isoformat().replace("+00:00", "Z"),
                "topic": d.topic,
                "probe": d.probe,
                "stage": d.stage,
                "field": d.field,
                "reason": d.reason,
                "payload_bytes": d.payload_bytes,
                "payload": d.payload.decode("utf-8", errors="replace"),
            }
            print(json.dumps(doc, ensure_ascii=False))
    elif rows:
        print(deadletter.format_rows(rows))
    else:
        print("no dead letters")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from probefleet.collector.report.run import run as run_report  # loads only for the report

    cfg = _load(args.config)
    problem = writable_problem(args.out)
    if problem is not None:
        print(f"probe-collector: --out {problem}", file=sys.stderr)
        return 2
    return run_report(
        cfg,
        settings_path=args.settings,
        start_text=args.start,
        end_text=args.end,
        fmt=args.format,
        lang=args.lang,
        out=args.out,
        quiet=args.quiet,
    )


def _cmd_rollup_rebuild(args: argparse.Namespace) -> int:
    from probefleet.collector.rollups_rebuild import run as rebuild

    cfg = _load(args.config)
    return rebuild(
        cfg,
        start_text=args.start,
        end_text=args.end,
        tz=cfg.rollups.timezone,
        peak=(cfg.rollups.peak_start_hour, cfg.rollups.peak_end_hour),
        delete=not args.keep,
    )


def _cmd_fleet(args: argparse.Namespace) -> int:
    import time

    from probefleet.collector import fleet, lag, statedb
    from probefleet.collector.errors import StateError
    from probefleet.collector.inventory import load_inventory

    cfg = _load(args.config)
    try:
        inventory = load_inventory(Path(cfg.files.inventory))
    except configkit.ConfigError as exc:
        print(f"probe-collector: {exc}", file=sys.stderr)
        return 2
    state_dir = Path(cfg.files.state_dir)
    now_s = time.time()
    lag_s = 0.0
    if (state_dir / statedb.FILENAME).exists():
        try:
            states = statedb.load_presence_readonly(state_dir)
            through = statedb.read_meta_readonly(state_dir, lag.THROUGH_KEY)
        except StateError as exc:
            print(f"probe-collector: {exc}", file=sys.stderr)
            return 1
        # What the daemon has taken from the broker reaches up to ``through`` (its newest
        # ping back, saved every 10 s): quiet since then is its lag, not the probes'. A
        # daemon that is down has taken nothing since: nobody is called silent for that.
        if through is not None:
            lag_s = max(0.0, now_s - float(through))
    else:
        print(f"probe-collector: no collector state in {state_dir} yet", file=sys.stderr)
        states = {}
    rows = fleet.fleet_rows(inventory, states, now_s, cfg.presence.offline_after_s, lag_s)
    if args.format == "json":
        print(fleet.format_json(rows))
    else:
        print(fleet.format_table(rows, now_s))
    return 0


def _cmd_alerts(args: argparse.Namespace) -> int:
    from probefleet.collector import statedb
    from probefleet.collector.alerts.lifecycle import alerts_from_rows
    from probefleet.collector.errors import StateError

    cfg = _load(args.config)
    state_dir = Path(cfg.files.state_dir)
    if not cfg.files.alerts:
        print("probe-collector: alerting is off (files.alerts is empty)", file=sys.stderr)
    try:
        rows = statedb.load_alert_rows_readonly(state_dir)
    except StateError as exc:
        print(f"probe-collector: {exc}", file=sys.stderr)
        return 1
    active = alerts_from_rows(rows)
    if args.json:
        print(json.dumps([a.document() for a in active], ensure_ascii=False, indent=2))
        return 0
    if not active:
        print("no active alerts")
        return 0
    for alert in active:
        since = dt.datetime.fromtimestamp(alert.started_s, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        flags = " [silenced]" if alert.silenced else ""
        print(f"{since}  {alert.text()}{flags}")
    print(f"{len(active)} active alert(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe-collector",
        description="probefleet collector: stores probe results in InfluxDB and reports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="validate a config file, and every file it names",
        description="Validate the config file and the inventory, targets and alerts files it "
        "names (and report settings with --settings); list every problem of every file at "
        "once (exit 2) or summarise them.",
    )
    configkit.add_config_option(check, "collector", DEFAULT_CONFIG)
    check.add_argument(
        "--settings", type=Path, metavar="FILE", help="also check these report settings"
    )
    check.set_defaults(func=_cmd_check)

    validate = sub.add_parser(
        "validate",
        help="check JSON messages against the wire contract",
        description="Decode each file strictly as a wire message; exit 1 if any is rejected.",
    )
    validate.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="JSON message files ('-' reads standard input)",
    )
    validate.add_argument(
        "--type",
        choices=sorted(wire.schema_types()),
        default="result",
        help="message type (default: result)",
    )
    validate.set_defaults(func=_cmd_validate)

    run = sub.add_parser(
        "run",
        help="run the collector daemon (MQTT -> InfluxDB)",
        description="Consume probe results from MQTT, validate, enrich and store them in "
        "InfluxDB; stop with SIGTERM or Ctrl-C (the batch in hand is flushed first).",
    )
    configkit.add_config_option(run, "collector", DEFAULT_CONFIG)
    run.set_defaults(func=_cmd_run)

    letters = sub.add_parser(
        "deadletters",
        help="list rejected messages and why",
        description="List the newest dead letters (messages or points that were refused) "
        "from <state_dir>/deadletters.sqlite.",
    )
    configkit.add_config_option(letters, "collector", DEFAULT_CONFIG)
    letters.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    letters.add_argument("--probe", help="only this probe's")
    letters.add_argument("--since", type=_since, help="only since this UTC time (ISO 8601)")
    letters.add_argument("--json", action="store_true", help="one JSON object per line")
    letters.set_defaults(func=_cmd_deadletters)

    report = sub.add_parser(
        "report",
        help="the annual compliance report (HTML, CSV or JSON)",
        description="Per commune, district and province: speeds against the plan's targets, "
        "peak hours, latency, IPv6, services, data network, uptime, and a verdict per plan "
        "target, from InfluxDB. A bare --to date is included (the period ends at the next "
        "midnight, province time); progress goes to stderr.",
    )
    configkit.add_config_option(report, "collector", DEFAULT_CONFIG)
    report.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="report settings (config/report.sample.toml; default: built-in defaults)",
    )
    report.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day")
    report.add_argument("--to", dest="end", required=True, metavar="DATE", help="last day")
    report.add_argument("--format", choices=("html", "csv", "json"), default="html")
    report.add_argument("--lang", choices=("vi", "en"), default="vi")
    report.add_argument("--out", type=Path, required=True, metavar="PATH", help="file to write")
    report.add_argument("--quiet", action="store_true", help="no progress on stderr")
    report.set_defaults(func=_cmd_report)

    rollup = sub.add_parser(
        "rollup",
        help="rollups: rebuild closed days from raw points",
        description="The hourly and daily rollups the collector writes as results arrive "
        "([rollups]); rebuild them from raw points for history or the hours a crash left out.",
    )
    rollup_sub = rollup.add_subparsers(dest="rollup_command", required=True, metavar="ACTION")
    rebuild = rollup_sub.add_parser(
        "rebuild",
        help="recompute the rollups of closed local days from raw points",
        description="Recompute the hourly and daily rollups of each local day from --from to "
        "--to (included) from raw points; the days' rollup points are deleted first. Not "
        "the current day while the collector runs (its parts would be deleted).",
    )
    configkit.add_config_option(rebuild, "collector", DEFAULT_CONFIG)
    rebuild.add_argument("--from", dest="start", required=True, metavar="DATE",
                         help="first day, YYYY-MM-DD (the province's time)")  # fmt: skip
    rebuild.add_argument("--to", dest="end", required=True, metavar="DATE",
                         help="last day, included")  # fmt: skip
    rebuild.add_argument(
        "--keep",
        action="store_true",
        help="do not DELETE the days' rollup points first (InfluxDB 2.x: `influx delete` them)",
    )
    rebuild.set_defaults(func=_cmd_rollup_rebuild)

    fleet = sub.add_parser(
        "fleet",
        help="show every probe: online/offline, last seen, line up, last test",
        description="The fleet table from the collector's state (works while it runs) and the "
        "inventory; probes of the inventory that never reported show as 'never seen'.",
    )
    configkit.add_config_option(fleet, "collector", DEFAULT_CONFIG)
    fleet.add_argument(
        "--format", choices=("table", "json"), default="table", help="output (default table)"
    )
    fleet.set_defaults(func=_cmd_fleet)

    alerts = sub.add_parser(
        "alerts",
        help="list the active (firing) alerts",
        description="The alerts firing now, oldest first, from the collector's state "
        "(works while it runs).",
    )
    configkit.add_config_option(alerts, "collector", DEFAULT_CONFIG)
    alerts.add_argument("--json", action="store_true", help="a JSON list")
    alerts.set_defaults(func=_cmd_alerts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
