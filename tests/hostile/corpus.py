"""A hostile corpus generated from the wire contract: every field of every golden result,
mutated every way a broken firmware or an attacker would, plus whole-message attacks.

Each case is (category, name, probe, topic, payload). Every case gets its own seq and
measurement time before it is mutated, so that whatever is accepted is its own point."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no types shipped; validated at run time
from probefleet.core import wire

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"
TOPICS = wire.Topics()
BASE = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
PLACEHOLDER = "\u2603placeholder\u2603"


def ecma_validator(message_type: str) -> Any:
    """The schema as another device reads it: JSON Schema's patterns are ECMA-262, whose
    ``$`` (no multiline flag) is the very end of the string; Python's also matches before a
    final newline."""

    def pattern(validator: Any, patrn: str, instance: Any, _schema: Any) -> Iterator[Any]:
        regex = patrn[:-1] + r"\Z" if patrn.endswith("$") else patrn
        if validator.is_type(instance, "string") and not re.search(regex, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    ecma = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})
    return ecma(json.loads((SCHEMA_DIR / f"{message_type}.schema.json").read_text()))


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    probe: str
    topic: str
    payload: bytes


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every value's path; of a list, its first element only (the rest are alike)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), value
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node:
        yield (*path, 0), node[0]
        yield from _leaves(node[0], (*path, 0))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


_TIME = re.compile(r"\d{4}-\d\d-\d\dT")


def _mutations(value: Any) -> Iterator[tuple[str, Any]]:
    yield "wrong type", "x" if not isinstance(value, str) else 12345
    yield "null", None
    if isinstance(value, bool):
        yield "wrong type", 1
    elif isinstance(value, int | float):
        if isinstance(value, int):  # JSON calls 20.0 an integer; so must the decoder
            yield "integral float", float(value)
        yield "out of range", -1
        yield "huge", 1e300
        yield "huge", 2**64
    elif isinstance(value, str):
        yield "empty", ""
        yield "huge", "x" * 70_000
        yield "control characters", value + "\u0001\u0000"
        yield "trailing newline", value + "\n"
        yield "invalid UTF-8", PLACEHOLDER
        if _TIME.match(value):  # a day that does not exist, and one that only leap years have
            yield "impossible date", "2026-02-30" + value[10:]
            yield "impossible date", "2025-02-29" + value[10:]
            yield "leap day", "2024-02-29" + value[10:]
            yield "impossible date", "0000-01-01" + value[10:]
    elif isinstance(value, list):
        yield "empty", []
        yield "huge", value * 200
    elif isinstance(value, dict):
        yield "empty", {}
    yield "nesting", json.loads("[" * 40 + "]" * 40)


def _encode(doc: Any) -> bytes:
    raw = json.dumps(doc, ensure_ascii=False).encode()
    return raw.replace(json.dumps(PLACEHOLDER, ensure_ascii=False).encode(), b'"\xff\xfe\xfd"')


def _identity(doc: dict[str, Any], probe: str, seq: int) -> dict[str, Any]:
    doc = dict(doc, probe_id=probe, seq=seq)
    # Its own uptime too: an unsynchronised result is re-based on it (boot + uptime).
    doc["clock"] = dict(doc["clock"], uptime_s=float(100 + seq))
    if doc["clock"]["synced"]:  # the unsynced golden keeps its 1970 time (quarantined)
        when = BASE + dt.timedelta(seconds=seq)
        doc["measured_at"] = when.isoformat().replace("+00:00", "Z")
        doc["sent_at"] = (when + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    return doc


def field_cases(probe: str) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(GOLDEN.glob("result-*.json")):
        golden = json.loads(path.read_text())
        for where, value in list(_leaves(golden)):
            for category, mutated in _mutations(value):
                base = _identity(golden, probe, len(cases) + 1)
                doc = _set(base, where, mutated)
                name = f"{path.stem}:{'.'.join(map(str, where))}:{category}"
                cases.append(
                    Case(category, name, probe, TOPICS.result(probe, golden["kind"]), _encode(doc))
                )
        # Duplicate keys: the first copy of each envelope key wrong, the second right.
        for key in golden:
            raw = _encode(_identity(golden, probe, len(cases) + 1))
            dup = b'{"' + key.encode() + b'": {"x": 1}, ' + raw[1:]
            cases.append(Case("duplicate keys", f"{path.stem}:{key}", probe,
                              TOPICS.result(probe, golden["kind"]), dup))  # fmt: skip
    return cases


def message_cases(probe: str) -> list[Case]:
    """Whole-message attacks: sizes, junk, nesting, forged identities, wrong channels."""
    latency = _identity(json.loads((GOLDEN / "result-latency.json").read_text()), probe, 900_000)
    topic = TOPICS.result(probe, "latency")
    status = TOPICS.channel(probe, "status")
    deep = b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    cases = [
        Case("size", "10 MB", probe, topic, b'{"x":"' + b"y" * 10_000_000 + b'"}'),
        Case("size", "65537 bytes", probe, topic, _encode(dict(latency, reason="r" * 65_600))),
        Case("nesting", "deep result", probe, topic, deep),
        Case("nesting", "deep status", probe, status, deep),
        Case("junk", "empty", probe, topic, b""),
        Case("junk", "binary", probe, topic, bytes(range(256))),
        Case("junk", "NaN", probe, topic, _encode(latency).replace(b"100.0", b"NaN", 1)),
        Case("forged", "other probe's id", probe, topic,
             _encode(dict(latency, probe_id="someone"))),
        Case("forged", "kind of another topic", probe, TOPICS.result(probe, "dns"),
             _encode(latency)),
        Case("status", "junk status", probe, status, b"online"),
        Case("status", "status of another probe", probe, status,
             _encode({"schema": 1, "probe_id": "someone", "state": "online"})),
    ]  # fmt: skip
    return cases


def flood(probe: str, n: int) -> list[Case]:
    topic = TOPICS.result(probe, "latency")
    return [Case("junk flood", f"junk {i}", probe, topic, b"junk %d" % i) for i in range(n)]


def control_cases(probe: str) -> list[Case]:
    """The centre's messages to a probe (ack, resend, command, retained config), every
    field mutated: what a leaked login or a broken collector could send a running agent."""
    docs: list[tuple[str, Any]] = []
    for name, channel in (("ack", "ack"), ("resend", "resend"), ("command", "commands")):
        doc = json.loads((GOLDEN / f"{name}.json").read_text())
        if "probe_id" in doc:
            doc["probe_id"] = probe
        if name == "command":
            doc = dict(doc, kind="latency", interface=None)
            del doc["interface"]
        docs.append((channel, doc))
    docs.append(("config", {"measurements": {"latency": {"interval_s": 600}}, "gate": {}}))
    cases: list[Case] = []
    for channel, doc in docs:
        topic = TOPICS.channel(probe, channel)  # type: ignore[arg-type]
        for where, value in list(_leaves(doc)):
            for category, mutated in _mutations(value):
                name = f"{channel}:{'.'.join(map(str, where))}:{category}"
                cases.append(Case(category, name, probe, topic, _encode(_set(doc, where, mutated))))
        cases.append(Case("valid", f"{channel}: as sent", probe, topic, _encode(doc)))
    return cases


@dataclass(frozen=True)
class RemoteAttack:
    """A retained remote config that would turn a probe into a weapon (issue 17, item 9),
    and what the probe's retained status must then say (the refused key and why)."""

    name: str
    doc: dict[str, Any]
    named: str


def remote_attacks(lan_port: int, lan6_port: int) -> list[RemoteAttack]:
    """Service checks at the office LAN (a real listener waits on ``lan_port`` of 127.0.0.1
    and ``lan6_port`` of ::1), bandwidth tests sized as a weapon, and [remote] itself."""

    def check(target: str) -> dict[str, Any]:
        return {"measurements": {"service": {"checks": [{"name": "lan", "target": target}]}}}

    key = "measurements.service.checks[0].target"
    throughput = "measurements.throughput"
    return [
        RemoteAttack("loopback", check(f"http://127.0.0.1:{lan_port}/"),
                     f"{key} = 'http://127.0.0.1:{lan_port}/': 127.0.0.1 is loopback"),
        RemoteAttack("private", check("10.0.0.1:22"),
                     f"{key} = '10.0.0.1:22': 10.0.0.1 is private"),
        RemoteAttack("cloud metadata", check("http://169.254.169.254/latest/meta-data/"),
                     "169.254.169.254 is link-local"),
        RemoteAttack("IPv6 loopback", check(f"http://[::1]:{lan6_port}/"), "::1 is loopback"),
        RemoteAttack("tcp port scan", check(f"127.0.0.1:{lan_port}"), "127.0.0.1 is loopback"),
        RemoteAttack("64 streams", {"measurements": {"throughput": {"streams_download": 64,
                     "streams_upload": 64}}}, f"{throughput}.streams_upload = 64: above [remote] "
                     "max_streams = 8"),
        RemoteAttack("120 s", {"measurements": {"throughput": {"duration_s": 120}}},
                     f"{throughput}.duration_s = 120.0: above [remote] max_duration_s = 30"),
        RemoteAttack("endless warm-up", {"measurements": {"throughput": {"warmup_max_s": 30}}},
                     f"{throughput}.warmup_max_s = 30.0: above [remote] max_duration_s"),
        RemoteAttack("trust a server in the middle", {"measurements": {"throughput": {"tls": [
                     {"host": "speed.example.vn", "pin_sha256": "00" * 32}]}}},
                     f"{throughput}.tls: only the probe's own file may set"),
        RemoteAttack("every 10 s", {"measurements": {"throughput": {"interval_s": 10}}},
                     f"{throughput}.interval_s = 10: closer than [remote] min_interval_s"),
        RemoteAttack("every minute", {"measurements": {"throughput": {"cron": "* * * * *"}}},
                     f"{throughput}.cron = '* * * * *': runs 60 s apart"),
        RemoteAttack("huge monthly bytes", {"measurements": {"throughput": {"max_bytes": 10**15}}},
                     f"{throughput}.max_bytes = 1000000000000000: one run may move"),
        RemoteAttack("upload anywhere", {"measurements": {"throughput": {"mode": "http",
                     "upload_url": "http://victim.example/", "directions": ["upload"]}}},
                     "victim.example is not in [remote] allow_destinations"),
        RemoteAttack("open the limits", {"remote": {"allow_private": True}},
                     "remote: not changeable from the centre"),
    ]  # fmt: skip
