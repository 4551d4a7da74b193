"""`probe-agent`: the command a probe runs, and the technician's one-shot tools."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from probefleet import kinds
from probefleet.agent import __version__
from probefleet.agent.config import AgentConfig, config_type, load_config
from probefleet.core import configkit, wire

DEFAULT_CONFIG = Path("/etc/probefleet/agent.toml")


def _load(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except configkit.ConfigError as exc:
        # A technician reads this at a commune office: the list, not a traceback.
        print(f"probe-agent: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    enabled = [k for k in kinds.names() if cfg.measurements.of(k).enabled]
    links = ", ".join(f"{i.name} ({i.access})" for i in cfg.interfaces) or "default route"
    print(f"{args.config}: OK")
    print(f"  probe       {cfg.probe.id}  (state in {cfg.probe.state_dir})")
    print(f"  broker      {cfg.mqtt.url()} as {cfg.mqtt.username}")
    print(f"  password    {'set' if cfg.mqtt.password else 'not set'}")
    print(f"  links       {links}")
    print(f"  measuring   {', '.join(enabled) or 'nothing'}")
    from probefleet.agent.scheduler import job_specs

    for spec in job_specs(cfg):
        when = f"cron {spec.cron!r} UTC" if spec.cron else f"every {spec.interval_s:.0f} s"
        print(f"    {spec.job_id:<22} {when}, this probe's offset +{spec.offset_s:.0f} s")
    remote = cfg.remote
    allowed = ", ".join(remote.allow_destinations) or "nothing beyond this file"
    print(
        f"  centre      may point measurements at {allowed}"
        f"{'; private addresses too' if remote.allow_private else ''}; bandwidth tests at most "
        f"{remote.max_streams} streams, {remote.max_duration_s:g} s, every "
        f"{remote.min_interval_s} s, {remote.max_monthly_mb} MB a month; "
        f"{remote.max_commands_per_hour} commands an hour"
    )
    print(
        f"  spool       up to {cfg.spool.max_mb:g} MB on disk, {cfg.spool.memory_max_mb:g} MB "
        f"in memory while the disk refuses results, {cfg.spool.reserve_mb:g} MB kept free; "
        f"clock {'must be synchronised' if cfg.schedule.require_synced_clock else 'must be sane'}"
    )
    return 0


def _load_for_measure(path: Path | None) -> AgentConfig:
    if path is not None or DEFAULT_CONFIG.exists():
        return _load(path or DEFAULT_CONFIG)
    # No config yet (a technician trying the probe): defaults, named after the host.
    probe_id = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")[:63]
    print(
        f"probe-agent: no {DEFAULT_CONFIG}; using defaults as probe {probe_id!r}", file=sys.stderr
    )
    return configkit.build({"probe": {"id": probe_id or "probe"}}, config_type())


def _cmd_measure(args: argparse.Namespace) -> int:
    from probefleet.agent import oneshot  # imports every measurement: only when measuring

    cfg = _load_for_measure(args.config)
    logging.basicConfig(level=cfg.log.level, format="%(levelname)s %(name)s: %(message)s")
    failed = 0
    for link in oneshot.links_for(cfg, args.name, args.interface):
        result = oneshot.measure(cfg, args.name, link)
        print(json.dumps(json.loads(wire.encode(result)), indent=2, ensure_ascii=False))
        if result.status != "ok":
            failed += 1
            where = link.interface or "default route"
            print(
                f"probe-agent: {args.name} on {where} {result.status}: {result.reason}",
                file=sys.stderr,
            )
    return 1 if failed else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from probefleet.agent import daemon  # paho, APScheduler: only for the daemon

    cfg = _load(args.config)
    logging.basicConfig(level=cfg.log.level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return daemon.run(args.config)
    except configkit.ConfigError as exc:
        print(f"probe-agent: {exc}", file=sys.stderr)
        return 2


def _cmd_status(args: argparse.Namespace) -> int:
    from probefleet.agent import statusfile

    cfg = _load(args.config)
    state_dir = Path(cfg.probe.state_dir)
    try:
        doc = statusfile.read(state_dir)
    except FileNotFoundError:
        print(f"probe-agent: no {state_dir / statusfile.STATUS_FILE}: the agent never ran here")
        return 3
    except (OSError, ValueError) as exc:
        print(f"probe-agent: cannot read the status file: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    from probefleet.agent import losses

    # The loss book is written at every loss, even on a full disk: newer than status.json
    # (no book yet, or an unreadable one: status.json's figures).
    with contextlib.suppress(OSError, ValueError):
        doc = statusfile.with_losses(doc, losses.read(state_dir))
    text, healthy = statusfile.render(doc)
    print(text)
    return 0 if healthy else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe-agent",
        description="probefleet agent: measures a commune's broadband and publishes over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="validate a config file and show what it means",
        description="Validate the config file; list every problem (exit 2) or summarise it.",
    )
    configkit.add_config_option(check, "agent", DEFAULT_CONFIG)
    check.set_defaults(func=_cmd_check)

    run = sub.add_parser(
        "run",
        help="the daemon: measure on schedule, spool, publish (what systemd starts)",
        description="Run the agent until SIGTERM: scheduled measurements, the on-disk spool, "
        "delivery over MQTT, fleet control. Exit 0 when stopped, 1 on a fatal error (let "
        "systemd restart it), 2 on a config error.",
    )
    configkit.add_config_option(run, "agent", DEFAULT_CONFIG)
    run.set_defaults(func=_cmd_run)

    status = sub.add_parser(
        "status",
        help="what the running agent is doing: broker, spool, last results, budget, clock",
        description="Show the state the running agent keeps in its state dir (status.json). "
        "Exit 0 when the agent runs and its status is current, 3 otherwise.",
    )
    configkit.add_config_option(status, "agent", DEFAULT_CONFIG)
    status.add_argument("--json", action="store_true", help="print status.json as it is")
    status.set_defaults(func=_cmd_status)

    classes = kinds.measurements()
    listing = "\n".join(f"  {name:<11} {cls.summary}" for name, cls in classes.items())
    measure = sub.add_parser(
        "measure",
        help="run one measurement now and print the JSON it would publish",
        description="Run one measurement now and print the result it would publish "
        "(exit 1 when it fails).\n\nmeasurements:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    measure.add_argument(
        "name",
        choices=list(classes),
        metavar="NAME",
        help="which measurement: " + ", ".join(classes),
    )
    configkit.add_config_option(measure, "agent", DEFAULT_CONFIG, fallback="built-in defaults")
    measure.add_argument(
        "--interface", default=None, metavar="IF", help="measure over this interface only"
    )
    measure.set_defaults(func=_cmd_measure)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
