"""`make demo`'s first step, before any venv exists (standard library only): are the
services the demo starts installed? As root on Debian/Ubuntu it installs what is missing
with apt-get; otherwise it prints the exact command to run and exits 2.

    python3 -m demo.preflight            # check (and install, as root)
    python3 -m demo.preflight --check    # check only
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# program -> Debian package. iproute2 is optional: without it the demo runs on loopback.
NEEDED = {
    "mosquitto": "mosquitto",
    "influxd": "influxdb",
    "nginx": "nginx-light",
}
OPTIONAL = {"ip": "iproute2", "tc": "iproute2", "dbus-daemon": "dbus"}
# Optional too: the 4G commune's simulated modem (demo.modem) is python3-dbusmock, run by
# Debian's own python3. Without it that commune runs without a radio context.
SYSTEM_PYTHON = "/usr/bin/python3"


def _have_dbusmock() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = [SYSTEM_PYTHON, "-c", "import dbusmock, dbus"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


SBIN = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"


def _have(program: str) -> bool:
    return (shutil.which(program) or shutil.which(program, path=SBIN)) is not None


def missing_packages(*, with_optional: bool) -> list[str]:
    wanted = dict(NEEDED, **OPTIONAL) if with_optional else NEEDED
    packages = {pkg for prog, pkg in wanted.items() if not _have(prog)}
    if with_optional and not _have_dbusmock():
        packages |= {"python3-dbusmock", "python3-dbus"}
    venv = ROOT / ".venv" / "bin" / "python"
    if not venv.exists():
        # Debian's python3 creates venvs only with python3-venv (ensurepip) installed.
        probe = subprocess.run(
            [sys.executable, "-c", "import ensurepip, venv"], capture_output=True, check=False
        )
        if probe.returncode != 0:
            packages.add("python3-venv")
    return sorted(packages)


def main(argv: list[str]) -> int:
    check_only = "--check" in argv
    root = os.geteuid() == 0
    missing = missing_packages(with_optional=root)
    if not missing:
        return 0
    command = f"apt-get update && apt-get install -y --no-install-recommends {' '.join(missing)}"
    if root and not check_only and shutil.which("apt-get"):
        print(f"demo: installing {', '.join(missing)} ...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for step in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        ):
            if subprocess.run(step, env=env, check=False).returncode != 0:
                print(f"demo: `{' '.join(step)}` failed; install by hand: {command}")
                return 2
        # Debian starts the services it installs; the demo runs its own, on its own ports.
        services = {"mosquitto": "mosquitto", "influxdb": "influxdb", "nginx-light": "nginx"}
        for service in (services[p] for p in missing if p in services):
            subprocess.run(
                ["service", service, "stop"], capture_output=True, check=False, timeout=60
            )
        still = missing_packages(with_optional=True)
        if still:
            print(f"demo: still missing after apt-get: {', '.join(still)}")
            return 2
        return 0
    who = "" if root else "sudo "
    print(
        f"demo: missing: {', '.join(missing)}. Install them with:\n\n"
        f"    {who}{command}\n\n"
        "then run `make demo` again. (As root the demo also builds shaped network namespaces; "
        "without root it runs every probe over loopback, unshaped.)"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
