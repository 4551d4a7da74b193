"""The central site on the real broker, for tests/deploy: certificates by gen-certs.sh, the
broker on deploy's mosquitto.conf and ACLs, probes enrolled by enrol.py, the service logins
in their listeners' password files, and a factory of logged-in test clients."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.central import ENROL, CentralBroker, Client, make_certs
from tests.harness import eventually

# The service accounts (services.acl, admin.acl) and the listener each logs in on.
SERVICE_LOGINS = {
    "collector": "services",
    "collector-status": "services",
    "healthcheck": "services",
    "fleet-admin": "admin",
}


def enrol_args(broker: CentralBroker, central: Path) -> list[str]:
    """enrol.py's options for the test broker's files and ``central``'s inventory."""
    return [
        sys.executable, str(ENROL), "--mosquitto", str(broker.config_dir),
        "--inventory", str(central / "inventory.toml"), "--ca", str(broker.certs / "ca.crt"),
        "--out", str(central / "probes"), "--reload", f"kill -HUP {broker.pid}",
    ]  # fmt: skip


def enrol_probe(broker: CentralBroker, central: Path, probe: str, *extra: str) -> str:
    """Run enrol.py for ``probe`` against the test broker; return the password it made."""
    done = subprocess.run(
        [*enrol_args(broker, central), "enrol", probe, "--commune", "Tân Phú",
         "--province", "Đồng Nai", "--interface", "eth0:fixed:VNPT", "--broker", "localhost",
         *extra],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return (central / "probes" / probe / f"{probe}.pw").read_text().strip()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"), "probe-a", "probe-b")


@dataclass
class Site:
    broker: CentralBroker
    central: Path  # inventory.toml and the probes' bundles
    passwords: dict[str, str]
    made: list[Client] = field(default_factory=list)

    def client(self, user: str | None, **kwargs: object) -> Client:
        """A client for ``user`` with its password, on its own listener unless told."""
        kwargs.setdefault("listener", SERVICE_LOGINS.get(user or "", "probes"))
        password = kwargs.pop("password", self.passwords.get(user or ""))
        made = Client(self.broker, user, password, **kwargs)  # type: ignore[arg-type]
        self.made.append(made)
        return made


def start_site(workdir: Path, certs: Path, **broker_kwargs: object) -> Site:
    """The broker with the three service logins and probes a and b enrolled."""
    broker = CentralBroker(workdir / "broker", certs, **broker_kwargs)  # type: ignore[arg-type]
    for user, role in SERVICE_LOGINS.items():
        broker.add_user(user, f"{user}-secret", role=role)
    broker.start()
    central = workdir / "central"
    central.mkdir()
    passwords = {user: f"{user}-secret" for user in SERVICE_LOGINS}
    passwords |= {p: enrol_probe(broker, central, p) for p in ("probe-a", "probe-b")}
    # SIGHUP is asynchronous: wait until the broker has read the last login.
    eventually(lambda: logs_in(broker, "probe-b", passwords["probe-b"]), timeout_s=10,
               message="the enrolled probe cannot log in")  # fmt: skip
    return Site(broker, central, passwords)


def logs_in(broker: CentralBroker, user: str, password: str, listener: str = "probes") -> bool:
    """One login attempt: True if the broker's CONNACK says yes."""
    client = Client(broker, user, password, listener=listener)
    try:
        client.connect(expect_ok=False)
        eventually(lambda: client.connack or client.disconnects, timeout_s=5)
        return client.connack == [0]
    finally:
        client.close()


@pytest.fixture
def site(tmp_path: Path, certs: Path) -> Iterator[Site]:
    made = start_site(tmp_path, certs)
    try:
        yield made
    finally:
        for client in made.made:
            client.close()
        made.broker.stop()
