#!/usr/bin/env python3
"""Enrol a probe at the central site, or revoke it: broker login, inventory row, agent bundle.

    ./enrol.py enrol dongnai-tanphu-02 --commune "Tân Phú" --province "Đồng Nai" \\
        --lat 11.27 --lon 107.43 --broker mqtt.dongnai.example.vn \\
        --interface eth0:fixed:VNPT --interface wwan0:mobile:Viettel:20000
    ./enrol.py revoke dongnai-tanphu-02 [--forget]
    ./enrol.py list
    ./enrol.py service collector --password-file secrets/mqtt-collector-password

The broker has one password file and one ACL per listener, in --mosquitto (default
``mosquitto/`` here): ``probes.passwd`` + ``probes.acl`` (8883, the Internet),
``services.passwd`` + ``services.acl`` (8884: collectors, health check), ``admin.passwd`` +
``admin.acl`` (8885, loopback: the fleet admin). A name with a ``user`` block in
services.acl or admin.acl is a service account: never a probe id, and ``service`` puts its
password in that listener's file.

enrol: a random password, hashed into probes.passwd (the same PBKDF2-SHA512 ``$7$`` format
as ``mosquitto_passwd``, so no Mosquitto is needed on this host); the inventory row
(commune, province, coordinates, operator and access type per interface); and
``probes/<id>/`` for the technician: ``<id>.pw``, ``ca.pem``, ``agent.toml`` and the
``deploy/agent/install.sh`` command line. probes.acl needs no per-probe line: its
``pattern`` lines confine every probe to its own subtree. Then Mosquitto is told to reload
(SIGHUP).

revoke: the login is removed and Mosquitto reloaded; on reload Mosquitto disconnects
clients whose password no longer checks out, and the probe cannot log in again. Then the
probe's retained status is cleared (an empty retained message, sent by the fleet admin's
login with --clear-status), so nothing shows it "online" any more.
``--forget`` also removes the inventory row (keep it to keep the commune's tags on the
probe's history until you restart the collector).

The collector reads the inventory at start: restart it after enrol (see README.md).
Everything lives under --central (default: this script's folder); each path has an option.
Only the standard library is needed; where the probefleet package is importable (the
collector's venv or image) the new inventory and agent config are also checked with the
loaders the collector and the agent use.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE_ID_RE = re.compile(r"^[a-z0-9-]{1,63}$")
ACCESS = ("fixed", "mobile")
# mosquitto_passwd's format: $7$ = PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte hash.
PBKDF2_ITERATIONS = 1000
DEFAULT_RELOAD = "docker compose kill -s SIGHUP mosquitto"
# The fleet admin's login, inside the broker's container: its -u/-P come from an options
# file (compose secret mqtt-fleet-admin-options), never from this command line.
DEFAULT_CLEAR_STATUS = (
    "docker compose exec -T -e XDG_CONFIG_HOME=/run/secrets/fleet-admin mosquitto "
    "mosquitto_pub -h localhost -p 8885 --cafile /mosquitto/certs/ca.crt -q 1 -r -n -t {topic}"
)
# On reload Mosquitto disconnects the revoked probe and publishes its Last Will (a retained
# "offline"): clear the status only after that, or the Will would set it again.
RELOAD_SETTLE_S = 1.0


class EnrolError(Exception):
    """A problem the operator must fix; the message says what and where."""


# --- the password file ------------------------------------------------------------------


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(hashed: str, password: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash (ours or mosquitto_passwd's)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt = base64.b64decode(parts[3])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), 64)
    return secrets.compare_digest(base64.b64encode(digest).decode(), parts[4])


def read_users(passwd: Path) -> dict[str, str]:
    users: dict[str, str] = {}
    if not passwd.exists():
        return users
    for number, line in enumerate(passwd.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, hashed = line.partition(":")
        if not sep:
            raise EnrolError(f"{passwd}:{number}: not 'user:hash'")
        users[name] = hashed
    return users


def replace_file(path: Path, text: str, *, mode: int) -> None:
    """Write ``text`` to ``path`` atomically, keeping an existing file's owner and mode (the
    broker runs as its own user and must still read the password file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, old.st_mode & 0o777 if old else mode)
        if old is not None and os.geteuid() == 0:
            os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_users(passwd: Path, users: dict[str, str]) -> None:
    text = "".join(f"{name}:{hashed}\n" for name, hashed in users.items())
    replace_file(passwd, text, mode=0o600)


def acl_lines(acl: Path) -> list[list[str]]:
    if not acl.exists():
        raise EnrolError(f"{acl}: no ACL file (copy it from deploy/central/mosquitto/)")
    return [line.split() for line in acl.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Site:
    """The broker's files: a password file and an ACL per listener (mosquitto.conf)."""

    mosquitto: Path

    def passwd(self, role: str) -> Path:
        return self.mosquitto / f"{role}.passwd"

    def acl(self, role: str) -> Path:
        return self.mosquitto / f"{role}.acl"

    def check_acls(self) -> None:
        """probes.acl: pattern lines and no user; the others: user blocks and no pattern (a
        pattern there would give every service login a probe's rights under its name)."""
        probes = acl_lines(self.acl("probes"))
        if not any(words[0] == "pattern" for words in probes):
            raise EnrolError(f"{self.acl('probes')}: no 'pattern' lines: probes could do nothing")
        if any(words[0] == "user" for words in probes):
            raise EnrolError(
                f"{self.acl('probes')}: a 'user' line: service accounts belong in "
                "services.acl or admin.acl, on their own listeners"
            )
        for role in ("services", "admin"):
            if any(words[0] == "pattern" for words in acl_lines(self.acl(role))):
                raise EnrolError(f"{self.acl(role)}: 'pattern' lines do not belong here")

    def service_role(self, name: str) -> str | None:
        """The listener whose ACL has a ``user`` block for ``name``: services or admin."""
        self.check_acls()
        for role in ("services", "admin"):
            words = acl_lines(self.acl(role))
            if ["user", name] in words:
                return role
        return None

    def service_accounts(self) -> set[str]:
        self.check_acls()
        return {
            words[1]
            for role in ("services", "admin")
            for words in acl_lines(self.acl(role))
            if len(words) == 2 and words[0] == "user"
        }


# --- the inventory ----------------------------------------------------------------------


@dataclass(frozen=True)
class Interface:
    name: str
    access: str
    operator: str
    budget_mb: int


def parse_interface(text: str) -> Interface:
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f"{text!r}: want NAME:ACCESS:OPERATOR[:MONTHLY_BUDGET_MB], "
            "e.g. wwan0:mobile:Viettel:20000"
        )
    name, access, operator = parts[0], parts[1], parts[2]
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,15}", name):
        raise argparse.ArgumentTypeError(f"{text!r}: interface name {name!r} is not valid")
    if access not in ACCESS:
        raise argparse.ArgumentTypeError(f"{text!r}: access must be fixed or mobile")
    if not operator.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: the operator is empty")
    budget = parts[3] if len(parts) == 4 else "0"
    if not budget.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: the budget {budget!r} is not MB")
    return Interface(name, access, operator.strip(), int(budget))


def toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def inventory_block(args: argparse.Namespace) -> str:
    lines = ["", f"[probes.{args.probe_id}]", f"commune = {toml_str(args.commune)}"]
    lines.append(f"province = {toml_str(args.province)}")
    if args.district:
        lines.append(f"district = {toml_str(args.district)}")
    if args.lat is not None:
        lines += [f"lat = {args.lat!r}", f"lon = {args.lon!r}"]
    for iface in args.interface:
        lines += [
            "",
            f"[probes.{args.probe_id}.interfaces.{iface.name}]",
            f"operator = {toml_str(iface.operator)}",
            f'access = "{iface.access}"',
        ]
    return "\n".join(lines) + "\n"


def inventory_probes(inventory: Path) -> set[str]:
    if not inventory.exists():
        return set()
    try:
        data = tomllib.loads(inventory.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise EnrolError(f"{inventory}: not valid TOML: {exc}") from None
    return set(data.get("probes", {}))


def without_probe(text: str, probe_id: str) -> str:
    """The inventory text minus ``[probes.<id>]`` and its sub-tables (comments kept)."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            name = header.group(1).strip()
            skipping = name == f"probes.{probe_id}" or name.startswith(f"probes.{probe_id}.")
        if not skipping:
            out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "".join(out))


def check_with_probefleet(inventory_text: str, agent_text: str) -> None:
    """Run the collector's inventory loader and the agent's config loader, if importable."""
    sys.path.insert(0, str(HERE.parents[1]))
    try:
        from probefleet.agent.config import load_config
        from probefleet.collector.inventory import load_inventory
        from probefleet.core.configkit import ConfigError
    except ImportError:
        return  # only the standard library here: the TOML syntax was checked
    finally:
        sys.path.pop(0)
    with tempfile.TemporaryDirectory() as tmp:
        inv = Path(tmp, "inventory.toml")
        inv.write_text(inventory_text, encoding="utf-8")
        agent = Path(tmp, "agent.toml")
        agent.write_text(agent_text, encoding="utf-8")
        try:
            load_inventory(inv)
            # The password file only exists on the probe: the variable stands in for it.
            load_config(agent, env={"PROBEFLEET_MQTT_PASSWORD": "x"})
        except ConfigError as exc:
            raise EnrolError(str(exc)) from None


# --- the agent bundle -------------------------------------------------------------------


def agent_toml(args: argparse.Namespace) -> str:
    lines = [
        f"# probefleet agent config for {args.probe_id}, written by deploy/central/enrol.py.",
        "# Every key not set here has its default (config/agent.sample.toml).",
        "[probe]",
        f"id = {toml_str(args.probe_id)}",
        "",
        "[mqtt]",
        f"host = {toml_str(args.broker)}",
        f"port = {args.port}",
        "tls = true",
        'ca_file = "/etc/probefleet/ca.pem"',
        'password_file = "/etc/probefleet/mqtt-password"',
        f"topic_root = {toml_str(args.topic_root)}",
    ]
    for iface in args.interface:
        lines += [
            "",
            "[[interfaces]]",
            f"name = {toml_str(iface.name)}",
            f'access = "{iface.access}"',
            f"monthly_budget_mb = {iface.budget_mb}",
        ]
    return "\n".join(lines) + "\n"


def install_command(args: argparse.Namespace) -> str:
    words = [
        "sudo", "deploy/agent/install.sh", "--probe-id", args.probe_id,
        "--broker", args.broker, "--port", str(args.port),
        "--ca", "ca.pem", "--password-file", f"{args.probe_id}.pw",
    ]  # fmt: skip
    for iface in args.interface:
        spec = f"{iface.name}:{iface.access}" + (f":{iface.budget_mb}" if iface.budget_mb else "")
        words += ["--interface", spec]
    return shlex.join(words) + "\n"


# --- commands ---------------------------------------------------------------------------


def reload_broker(command: str) -> None:
    if not command:
        print("  mosquitto: not reloaded (--reload ''): send it SIGHUP yourself")
        return
    done = subprocess.run(shlex.split(command), cwd=HERE, check=False, capture_output=True)
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise EnrolError(f"reloading mosquitto with {command!r} failed: {err}")
    print(f"  mosquitto: reloaded ({command})")


def cmd_enrol(args: argparse.Namespace) -> int:
    if (args.lat is None) != (args.lon is None):
        raise EnrolError("give both --lat and --lon, or neither")
    if not args.interface:
        raise EnrolError("give at least one --interface NAME:ACCESS:OPERATOR")
    if args.probe_id in args.site.service_accounts():
        raise EnrolError(f"{args.probe_id!r} is a service account ({args.site.mosquitto}/*.acl)")
    users = read_users(args.passwd)
    if args.probe_id in users:
        raise EnrolError(f"{args.probe_id!r} is already in {args.passwd}: revoke it first")
    if args.probe_id in inventory_probes(args.inventory):
        raise EnrolError(
            f"{args.probe_id!r} is already in {args.inventory}: revoke it with --forget first"
        )
    if not args.ca.exists():
        raise EnrolError(f"{args.ca}: no CA certificate (run gen-certs.sh first)")

    old_inventory = args.inventory.read_text(encoding="utf-8") if args.inventory.exists() else ""
    new_inventory = old_inventory.rstrip("\n") + "\n" + inventory_block(args)
    agent = agent_toml(args)
    try:
        tomllib.loads(new_inventory)
    except tomllib.TOMLDecodeError as exc:
        raise EnrolError(f"the new inventory would not parse: {exc}") from None
    check_with_probefleet(new_inventory, agent)

    bundle = args.out / args.probe_id
    bundle.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(24)
    pw_file = bundle / f"{args.probe_id}.pw"
    pw_file.touch(mode=0o600)
    pw_file.write_text(password + "\n")
    shutil.copyfile(args.ca, bundle / "ca.pem")
    (bundle / "agent.toml").write_text(agent, encoding="utf-8")
    (bundle / "install.txt").write_text(install_command(args), encoding="utf-8")

    users[args.probe_id] = hash_password(password)
    write_users(args.passwd, users)
    replace_file(args.inventory, new_inventory, mode=0o644)
    print(f"enrolled {args.probe_id}")
    print(f"  broker login: {args.passwd}")
    print(f"  inventory:    {args.inventory}")
    print(f"  for the Pi:   {bundle}/ ({pw_file.name}, ca.pem, agent.toml, install.txt)")
    reload_broker(args.reload)
    print("  next: restart the collector so it reads the inventory (README.md, step 7)")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    if args.probe_id in args.site.service_accounts():
        raise EnrolError(f"{args.probe_id!r} is a service account, not a probe")
    users = read_users(args.passwd)
    known = args.probe_id in users
    if known:
        del users[args.probe_id]
        write_users(args.passwd, users)
        print(f"revoked {args.probe_id}: removed from {args.passwd}")
    else:
        print(f"{args.probe_id}: no login in {args.passwd} (already revoked?)")
    if args.forget and args.probe_id in inventory_probes(args.inventory):
        text = without_probe(args.inventory.read_text(encoding="utf-8"), args.probe_id)
        replace_file(args.inventory, text, mode=0o644)
        print(f"  removed from {args.inventory}")
    bundle = args.out / args.probe_id
    if bundle.exists():
        shutil.rmtree(bundle)
        print(f"  deleted {bundle}/")
    reload_broker(args.reload)
    clear_status(
        args.clear_status, f"{args.topic_root}/{args.probe_id}/status", waited=bool(args.reload)
    )
    return 0 if known else 1


def clear_status(command: str, topic: str, *, waited: bool) -> None:
    """Publish an empty retained message on the probe's status topic (the fleet admin's
    login): the broker forgets the last "online"/"offline" it kept for the probe. A failure
    is reported with the command to run by hand; the login is revoked either way."""
    words = [word.replace("{topic}", topic) for word in shlex.split(command)]
    by_hand = shlex.join(words or shlex.split(DEFAULT_CLEAR_STATUS.replace("{topic}", topic)))
    if not words:
        print(f"  retained status: not cleared (--clear-status ''): run {by_hand}")
        return
    if waited:
        time.sleep(RELOAD_SETTLE_S)
    try:
        done = subprocess.run(words, cwd=HERE, check=False, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"enrol.py: clearing {topic} failed ({exc}); run: {by_hand}", file=sys.stderr)
        return
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        print(f"enrol.py: clearing {topic} failed: {err}; run: {by_hand}", file=sys.stderr)
        return
    print(f"  retained status cleared: {topic}")


def cmd_service(args: argparse.Namespace) -> int:
    """Set a service account's password (collector, healthcheck, fleet-admin) from a file,
    in the password file of the listener whose ACL names it: setup.sh's."""
    role = args.site.service_role(args.name)
    if role is None:
        raise EnrolError(
            f"{args.name!r} has no 'user' block in {args.site.acl('services')} or "
            f"{args.site.acl('admin')}: not a service account"
        )
    try:
        password = args.password_file.read_text().strip()
    except OSError as exc:
        raise EnrolError(f"{args.password_file}: {exc.strerror}") from None
    if len(password) < 16:
        raise EnrolError(f"{args.password_file}: a service password needs 16+ characters")
    if args.name in read_users(args.passwd):
        raise EnrolError(f"{args.name!r} has a probe login in {args.passwd}: revoke it first")
    passwd = args.site.passwd(role)
    users = read_users(passwd)
    if args.name in users and check_password(users[args.name], password):
        print(f"{args.name}: password unchanged ({passwd})")
        return 0
    users[args.name] = hash_password(password)
    write_users(passwd, users)
    print(f"{args.name}: password set in {passwd}")
    reload_broker(args.reload)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    users = read_users(args.passwd)
    service = args.site.service_accounts()
    inventory = inventory_probes(args.inventory)
    for name in sorted(set(users) | inventory):
        if name in service:
            continue
        login = "login" if name in users else "no login (revoked)"
        place = "in inventory" if name in inventory else "NOT in inventory"
        print(f"{name:40} {login:20} {place}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enrol.py",
        description="Enrol or revoke probefleet probes at the central site.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--central", type=Path, default=HERE, help="the central site folder (default: here)"
    )
    parser.add_argument(
        "--mosquitto",
        type=Path,
        help="the broker's password files and ACLs, *.passwd and *.acl (default: "
        "CENTRAL/mosquitto; on a VM /etc/mosquitto)",
    )
    parser.add_argument("--inventory", type=Path, help="default: CENTRAL/etc/inventory.toml")
    parser.add_argument("--ca", type=Path, help="default: CENTRAL/certs/ca.crt")
    parser.add_argument("--out", type=Path, help="probe bundles (default: CENTRAL/probes)")
    parser.add_argument(
        "--reload",
        default=os.environ.get("PROBEFLEET_MOSQUITTO_RELOAD", DEFAULT_RELOAD),
        help="command that makes Mosquitto reload (env PROBEFLEET_MOSQUITTO_RELOAD; "
        f"default {DEFAULT_RELOAD!r}; on a VM 'systemctl reload mosquitto'; '' = none)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enrol = sub.add_parser("enrol", help="create a probe's login, inventory row and bundle")
    enrol.add_argument("probe_id", type=probe_id, metavar="PROBE_ID")
    enrol.add_argument("--commune", required=True)
    enrol.add_argument("--province", required=True)
    enrol.add_argument("--district", default="")
    enrol.add_argument("--lat", type=float)
    enrol.add_argument("--lon", type=float)
    enrol.add_argument(
        "--interface",
        type=parse_interface,
        action="append",
        default=[],
        metavar="NAME:ACCESS:OPERATOR[:BUDGET_MB]",
        help="one per uplink, e.g. eth0:fixed:VNPT or wwan0:mobile:Viettel:20000",
    )
    enrol.add_argument("--broker", required=True, help="the broker's name as the probe sees it")
    enrol.add_argument("--port", type=int, default=8883)
    enrol.add_argument("--topic-root", default="probefleet/v1")
    enrol.set_defaults(func=cmd_enrol)

    revoke = sub.add_parser("revoke", help="remove a probe's login and reload the broker")
    revoke.add_argument("probe_id", type=probe_id, metavar="PROBE_ID")
    revoke.add_argument("--forget", action="store_true", help="also drop its inventory row")
    revoke.add_argument(
        "--clear-status",
        default=os.environ.get("PROBEFLEET_CLEAR_STATUS", DEFAULT_CLEAR_STATUS),
        help="command publishing an empty retained message on {topic} with the fleet "
        "admin's login (env PROBEFLEET_CLEAR_STATUS; default: mosquitto_pub in the "
        "container; '' = print it)",
    )
    revoke.add_argument("--topic-root", default="probefleet/v1")
    revoke.set_defaults(func=cmd_revoke)

    service = sub.add_parser("service", help="set a service account's password (setup.sh)")
    service.add_argument(
        "name", help="a user services.acl or admin.acl names: collector, healthcheck, fleet-admin"
    )
    service.add_argument("--password-file", type=Path, required=True)
    service.set_defaults(func=cmd_service)

    listing = sub.add_parser("list", help="probes with a login and/or an inventory row")
    listing.set_defaults(func=cmd_list)
    return parser


def probe_id(text: str) -> str:
    if not PROBE_ID_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: a probe id is 1-63 of a-z, 0-9 and '-'")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    central: Path = args.central
    args.site = Site(args.mosquitto or central / "mosquitto")
    args.passwd = args.site.passwd("probes")
    args.inventory = args.inventory or central / "etc" / "inventory.toml"
    args.ca = args.ca or central / "certs" / "ca.crt"
    args.out = args.out or central / "probes"
    try:
        return int(args.func(args))
    except EnrolError as exc:
        print(f"enrol.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
