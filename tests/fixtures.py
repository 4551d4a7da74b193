"""Pytest fixtures that run real Mosquitto, InfluxDB and nginx (a plugin: see conftest.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.harness import InfluxDB, InfluxTarget, Mosquitto, MosquittoFactory, NginxTestServer

# The fixtures below that start a real service. A test that uses one, itself or through
# another fixture, is an integration test whatever marks it carries, so that `make test-fast`
# (-m "not integration and not netns and not slow") can never start a service.
SERVICE_FIXTURES = frozenset(
    {"mosquitto", "mosquitto_factory", "influxdb", "influx_db", "http_server"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVICE_FIXTURES:
            item.add_marker(pytest.mark.integration)
        # Network-namespace helpers, wherever a test module defines one as a fixture.
        if any("netns" in name for name in fixtures):
            item.add_marker(pytest.mark.netns)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """An anonymous broker for this test only, stopped afterwards."""
    broker = Mosquitto(tmp_path / "mosquitto")
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[MosquittoFactory]:
    """Build custom brokers: ``make(anonymous=False, users={"alice": "pw"}, acl_lines=[...],
    extra_conf=[...], start=True)``. Every broker made is stopped at teardown."""
    brokers: list[Mosquitto] = []

    def make(
        *,
        anonymous: bool = True,
        users: dict[str, str] | None = None,
        acl_lines: Sequence[str] | None = None,
        extra_conf: Sequence[str] = (),
        start: bool = True,
    ) -> Mosquitto:
        broker = Mosquitto(
            tmp_path / f"mosquitto-{len(brokers)}",
            anonymous=anonymous,
            acl_lines=acl_lines,
            extra_conf=extra_conf,
        )
        brokers.append(broker)
        for name, password in (users or {}).items():
            broker.add_user(name, password)
        return broker.start() if start else broker

    try:
        yield make
    finally:
        errors: list[BaseException] = []
        for broker in brokers:
            try:
                broker.stop()
            except Exception as exc:  # stop the other brokers before reporting
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """One influxd (+ nginx front) for the session; tests get their own database."""
    server = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def influx_db(influxdb: InfluxDB, request: pytest.FixtureRequest) -> Iterator[InfluxTarget]:
    """A fresh, uniquely named database on the session InfluxDB: ``(influxdb, dbname)``."""
    if not influxdb.running:
        # A previous test killed influxd and did not bring it back: do it for the next ones.
        influxdb.restart()
    stem = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    name = f"t_{stem}_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(name)
    try:
        yield InfluxTarget(influxdb, name)
    finally:
        if influxdb.running:
            influxdb.drop_database(name)


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxTestServer]:
    """nginx on 127.0.0.1 and [::1] with a sparse 2 GiB /files/large.bin and /upload sink."""
    server = NginxTestServer(tmp_path_factory.mktemp("nginx-http"))
    try:
        yield server.start()
    finally:
        server.stop()
