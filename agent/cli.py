"""`probe-agent`: the command a probe runs, and the technician's one-shot tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__, configkit, wire
from agent.config import AgentConfig, load_config

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
    enabled = [k for k in wire.KINDS if getattr(cfg.measurements, k).enabled]
    links = ", ".join(f"{i.name} ({i.access})" for i in cfg.interfaces) or "default route"
    scheme = "mqtts" if cfg.mqtt.tls else "mqtt"
    print(f"{args.config}: OK")
    print(f"  probe       {cfg.probe.id}  (state in {cfg.probe.state_dir})")
    print(f"  broker      {scheme}://{cfg.mqtt.host}:{cfg.mqtt.port} as {cfg.mqtt.username}")
    print(f"  password    {'set' if cfg.mqtt.password else 'not set'}")
    print(f"  links       {links}")
    print(f"  measuring   {', '.join(enabled) or 'nothing'}")
    return 0


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
    check.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"agent config (default {DEFAULT_CONFIG})",
    )
    check.set_defaults(func=_cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
