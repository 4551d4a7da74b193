"""A new kind is its folder plus one registry line: the toy kind (tests/kinds/toy/), registered
at run time, is configured, measured, published, stored and queried by the real programs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from probefleet import kinds
from probefleet.agent.config import load_config
from probefleet.core import wire

from tests.agent.helpers import write_agent_config
from tests.collector.helpers import write_config
from tests.harness import InfluxTarget, Mosquitto, eventually
from tests.kinds import toy

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = [sys.executable, "-m", "tests.kinds.toy.launch"]
# write_agent_config's extra sections; the key is no identifier, hence the functional form.
ToySection = TypedDict("ToySection", {"measurements.toy": dict[str, Any]})


@pytest.fixture
def toy_registered() -> Iterator[None]:
    kinds.register(toy.SPEC)  # the one registry line
    try:
        yield
    finally:
        kinds.unregister("toy")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_registering_the_folder_derives_wire_config_and_schema(
    toy_registered: None, tmp_path: Path
) -> None:
    assert kinds.names()[-1] == "toy"
    config = tmp_path / "agent.toml"
    config.write_text('[probe]\nid = "toy-1"\n' + toy.SPEC.sample.read_text())
    cfg = load_config(config, env={})
    from tests.kinds.toy.measure import ToyConfig

    table = cfg.measurements.of("toy")
    assert isinstance(table, ToyConfig)
    assert table.numbers == [1.0, 2.0]
    bad = tmp_path / "bad.toml"
    bad.write_text('[probe]\nid = "toy-1"\n[measurements.toy]\nnumbers = "three"\n')
    with pytest.raises(Exception, match=r"measurements\.toy\.numbers = 'three': expected a list"):
        load_config(bad, env={})
    schema = wire.json_schemas()["result.schema.json"]
    assert "ToyResult" in schema["$defs"]
    assert wire.Topics().parse("probefleet/v1/toy-1/results/toy") == ("toy-1", "results", "toy")


def test_without_its_line_the_kind_does_not_exist(tmp_path: Path) -> None:
    assert "toy" not in kinds.names()
    with pytest.raises(wire.WireError, match="unknown measurement kind 'toy'"):
        wire.Topics().parse("probefleet/v1/toy-1/results/toy")
    config = tmp_path / "agent.toml"
    config.write_text('[probe]\nid = "toy-1"\n' + toy.SPEC.sample.read_text())
    with pytest.raises(Exception, match=r"measurements\.toy = \{\.\.\.\}: unknown key"):
        load_config(config, env={})


def test_probe_agent_measure_runs_the_toy_kind(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[probe]\nid = "toy-1"\nstate_dir = "{tmp_path}"\n[measurements.toy]\nnumbers = [2.5, 4]\n'
    )
    done = subprocess.run(
        [*LAUNCH, "agent", "measure", "toy", "--config", str(config)],
        capture_output=True, cwd=tmp_path, env=_env(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    kinds.register(toy.SPEC)
    try:
        result = wire.decode_result(done.stdout)
    finally:
        kinds.unregister("toy")
    assert wire.kind_of(result) == "toy"
    assert result.data is not None
    assert (result.data.numbers, result.data.total) == (2, 6.5)  # type: ignore[attr-defined]


@pytest.mark.integration
def test_measured_published_stored_and_queried(
    tmp_path: Path, mosquitto: Mosquitto, influx_db: InfluxTarget
) -> None:
    collector_toml, _cfg = write_config(tmp_path, mosquitto, influx_db)
    agent_toml = write_agent_config(
        tmp_path,
        mosquitto,
        probe="dongnai-tanphu-01",
        enabled=(),
        **ToySection({"measurements.toy": {"interval_s": 10, "numbers": [1.0, 2.0, 3.0]}}),
    )
    acks: list[wire.StoredAck] = []
    watcher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda _c, _u, m: acks.append(
        wire.decode(bytes(m.payload), wire.StoredAck)
    )
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.subscribe(wire.Topics().channel("dongnai-tanphu-01", "ack"), qos=1)
    watcher.loop_start()
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("collector", "agent")}
    procs = [
        subprocess.Popen(
            [*LAUNCH, name, "run", "--config", str(toml)],
            stdout=logs[name],
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**_env(), "TOY_CLOCK_SYNCED": "1"},
        )
        for name, toml in (("collector", collector_toml), ("agent", agent_toml))
    ]
    try:
        query = 'SELECT "total", "numbers", "seq" FROM "toy" WHERE "parity" = \'odd\''

        def stored() -> list[dict[str, object]]:
            return influx_db.server.query_points(query, db=influx_db.db)

        eventually(
            lambda: len(stored()) >= 1,
            timeout_s=60,
            message=lambda: (
                "no toy point; logs:\n"
                + "\n".join((tmp_path / f"{n}.log").read_text()[-2000:] for n in logs)
            ),
        )
        point = stored()[0]
        assert (point["total"], point["numbers"], point["seq"]) == (6.0, 3, 1)
        # ... and the collector told the probe it is stored (the agent then deletes it).
        eventually(
            lambda: any(a.stored_through_seq >= 1 for a in acks),
            timeout_s=30,
            message="no StoredAck for the toy result",
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        for log in logs.values():
            log.close()
        watcher.loop_stop()
        watcher.disconnect()
