"""The wire contract: goldens against code and schema, hostile payloads, fuzzing, topics."""

from __future__ import annotations

import contextlib
import copy
import json
import typing
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # untyped; types-jsonschema is not locked
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from probefleet import kinds
from probefleet.core import wire
from probefleet.kinds.dns.payload import DnsData

from tests.hostile.corpus import ecma_validator

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
SCHEMA_DIR = ROOT / "schema"


def _golden_type(path: Path) -> str:
    return "result" if path.name.startswith("result-") else path.stem.split("-")[0]


GOLDENS = sorted(GOLDEN.glob("*.json"))


def _validator(message_type: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{message_type}.schema.json").read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_schema_files_are_generated_from_the_code() -> None:
    expected = wire.json_schemas()
    on_disk = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert on_disk == set(expected), "schema/ holds other files than the code generates"
    for filename, schema in expected.items():
        current = (SCHEMA_DIR / filename).read_text(encoding="utf-8")
        assert current == wire.render_schema(schema), (
            f"schema/{filename} is stale: run `make schema` and commit the result"
        )


def test_every_kind_and_message_type_has_a_golden() -> None:
    decoded = {
        wire.kind_of(wire.decode_result(p.read_bytes()))
        for p in GOLDENS
        if _golden_type(p) == "result"
    }
    assert decoded == set(kinds.names())
    assert {p.name for p in GOLDENS} >= {f"result-{k}.json" for k in kinds.names()}
    assert {_golden_type(p) for p in GOLDENS} == set(wire.schema_types())


def test_a_command_may_name_only_a_registered_kind_in_the_schema() -> None:
    command = wire.json_schemas()["command.schema.json"]["$defs"]["Command"]
    assert command["properties"]["kind"]["enum"] == list(kinds.names())


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.name)
def test_golden_decodes_validates_and_round_trips(path: Path) -> None:
    message_type = _golden_type(path)
    raw = path.read_bytes()
    decoded = wire.decode(raw, wire.schema_types()[message_type])
    _validator(message_type).validate(json.loads(raw))
    # What we encode decodes to the same message, and is valid against the schema too.
    encoded = wire.encode(decoded)
    assert wire.decode(encoded, wire.schema_types()[message_type]) == decoded
    _validator(message_type).validate(json.loads(encoded))


def _result(name: str = "result-throughput.json") -> dict[str, Any]:
    return typing.cast(dict[str, Any], json.loads((GOLDEN / name).read_text()))


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return doc


_DELETE = object()

# (name, golden, dotted path to change, new value, field the error must name, reason part)
HOSTILE: list[tuple[str, str, str, Any, str, str]] = [
    ("negative speed", "throughput", "data.download_mbps", -1.0, "data.download_mbps", ">= 0"),
    ("over 100 Gbit/s", "throughput", "data.upload_mbps", 100_001.0, "data.upload_mbps", "<="),
    ("speed as string", "throughput", "data.download_mbps", "148", "data.download_mbps", "str"),
    ("speed as bool", "throughput", "data.download_mbps", True, "data.download_mbps", "bool"),
    ("unknown payload field", "throughput", "data.colour", "red", "data", "unknown field"),
    ("unknown envelope field", "throughput", "extra", 1, "$", "unknown field"),
    ("unknown kind", "throughput", "kind", "speed", "kind", "Invalid value"),
    ("schema 2", "throughput", "schema", 2, "schema", "Invalid"),
    ("uppercase probe id", "throughput", "probe_id", "DongNai-01", "probe_id", "regex"),
    ("probe id with slash", "throughput", "probe_id", "a/b", "probe_id", "regex"),
    ("probe id with wildcard", "throughput", "probe_id", "a+", "probe_id", "regex"),
    ("empty probe id", "throughput", "probe_id", "", "probe_id", "regex"),
    ("seq zero", "throughput", "seq", 0, "seq", ">= 1"),
    ("seq beyond 2^53", "throughput", "seq", 2**53, "seq", "<="),
    ("seq float", "throughput", "seq", 1.5, "seq", "int"),
    ("boot id not uuid", "throughput", "boot_id", "boot-1", "boot_id", "regex"),
    ("naive time", "throughput", "measured_at", "2025-11-03T13:00:04", "measured_at", "timezone"),
    ("non-utc time", "throughput", "sent_at", "2025-11-03T20:00:04+07:00", "sent_at", "UTC"),
    ("not a time", "throughput", "sent_at", "yesterday", "sent_at", "datetime"),
    ("missing clock", "throughput", "clock", _DELETE, "$", "clock"),
    ("negative since_sync", "throughput", "clock.since_sync_s", -1, "clock.since_sync_s", ">="),
    ("bad access type", "throughput", "access", "satellite", "access", "Invalid"),
    ("bad interface", "throughput", "interface", "eth0; rm -rf /", "interface", "regex"),
    ("ok without data", "throughput", "data", None, "data", "required"),
    ("ok with reason", "throughput", "reason", "why", "reason", "absent"),
    ("failed without reason", "failed", "reason", _DELETE, "reason", "required"),
    (
        "skipped with data",
        "skipped",
        "data",
        {"method": "http", "server_name": "x", "server_url": "http://x/"},
        "data",
        "absent",
    ),
    ("bad status", "throughput", "status", "maybe", "status", "Invalid"),
    ("streams zero", "throughput", "data.download_streams", 0, "data.download_streams", ">="),
    ("negative bytes", "throughput", "data.download_bytes", -5, "data.download_bytes", ">="),
    ("ip version 5", "throughput", "data.ip_version", 5, "data.ip_version", "Invalid"),
    (
        "negative rtt",
        "latency",
        "data.targets.0.rtt_min_ms",
        -0.1,
        "data.targets[0].rtt_min_ms",
        ">=",
    ),
    (
        "loss over 100",
        "latency",
        "data.targets.0.loss_pct",
        100.5,
        "data.targets[0].loss_pct",
        "<=",
    ),
    (
        "received > sent",
        "latency",
        "data.targets.0.received",
        21,
        "data.targets[0].received",
        "exceeds",
    ),
    ("no targets", "latency", "data.targets", [], "data.targets", "length"),
    ("bad rrtype", "dns", "data.queries.0.rrtype", "MX", "data.queries[0].rrtype", "Invalid"),
    ("bad rcode", "dns", "data.queries.0.rcode", "ok", "data.queries[0].rcode", "regex"),
    ("bad verdict", "ipv6", "data.checks.0.verdict", "maybe", "data.checks[0].verdict", "Invalid"),
    ("status 999", "service", "data.checks.0.status_code", 999, "data.checks[0].status_code", "<="),
    ("cpu over 100", "health", "data.cpu_pct", 250.0, "data.cpu_pct", "<="),
    ("temperature absurd", "health", "data.temperature_c", 900.0, "data.temperature_c", "<="),
    (
        "bad budget month",
        "health",
        "data.budgets.0.month",
        "2025-13",
        "data.budgets[0].month",
        "regex",
    ),
    ("detail key with space", "skipped", "detail", {"cross traffic": 1.0}, "detail", "regex"),
    ("data wrong shape", "dns", "data", {"targets": []}, "data", "unknown field"),
    ("kind mismatch payload", "latency", "kind", "health", "data", "unknown field"),
]


@pytest.mark.parametrize(
    ("golden", "path", "value", "field", "reason"),
    [h[1:] for h in HOSTILE],
    ids=[h[0] for h in HOSTILE],
)
def test_hostile_result_is_rejected_naming_the_field(
    golden: str, path: str, value: Any, field: str, reason: str
) -> None:
    doc = _set(_result(f"result-{golden}.json"), path, value)
    with pytest.raises(wire.WireError) as caught:
        wire.decode_result(json.dumps(doc))
    assert caught.value.field == field, str(caught.value)
    assert reason in caught.value.reason, str(caught.value)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"schema": 1, "seq": NaN}', "not valid JSON"),
        (b'{"schema": 1, "seq": Infinity}', "not valid JSON"),
        (b"not json at all", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2, 3]", "object"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_json_is_rejected(raw: bytes, reason: str) -> None:
    with pytest.raises(wire.WireError) as caught:
        wire.decode_result(raw)
    assert reason in caught.value.reason


def test_infinite_number_is_out_of_range() -> None:
    raw = json.dumps(_result()).replace('"download_mbps": 148.72', '"download_mbps": 1e999')
    with pytest.raises(wire.WireError) as caught:
        wire.decode_result(raw)
    assert caught.value.field == "data.download_mbps"


def test_oversized_payload_is_rejected_before_parsing() -> None:
    doc = _result()
    doc["reason"] = "x" * wire.MAX_PAYLOAD_BYTES
    with pytest.raises(wire.WireError) as caught:
        wire.decode_result(json.dumps(doc))
    assert caught.value.field == "$"
    assert "limit is 65536" in caught.value.reason


def test_encode_refuses_what_the_collector_would_refuse() -> None:
    result = wire.decode_result((GOLDEN / "result-dns.json").read_bytes())
    # The largest legal DNS result still fits ...
    query = result.data.queries[0]  # type: ignore[union-attr]
    longest = msgspec.structs.replace(query, name="n" * 253)
    big = msgspec.structs.replace(result, data=DnsData(queries=[longest] * 128))
    assert len(wire.encode(big)) < wire.MAX_PAYLOAD_BYTES
    # ... and a message past the limit is refused at the sender, naming the limit.
    with pytest.raises(wire.WireError, match="limit is 65536"):
        wire.encode(
            msgspec.structs.replace(
                big, status="failed", data=None, reason="x" * wire.MAX_PAYLOAD_BYTES
            )
        )


@pytest.mark.parametrize(
    ("name", "field"),
    [("ack", "also_stored[0]"), ("resend", "ranges[0]")],
)
def test_control_ranges_must_be_ordered(name: str, field: str) -> None:
    doc = json.loads((GOLDEN / f"{name}.json").read_text())
    key = field.split("[", maxsplit=1)[0]
    doc[key] = [[10, 5]]
    with pytest.raises(wire.WireError) as caught:
        wire.decode(json.dumps(doc), wire.schema_types()[name])
    assert caught.value.field == field
    assert "starts after it ends" in caught.value.reason


def test_schema_rejects_what_the_code_rejects_on_the_envelope() -> None:
    validator = _validator("result")
    for name, golden, path, value, _field, _reason in HOSTILE:
        if name in {"received > sent", "non-utc time"} or "json" in name:
            continue  # __post_init__ range rules live in code only (documented)
        doc = _set(_result(f"result-{golden}.json"), path, value)
        assert list(validator.iter_errors(doc)), f"schema accepts hostile case {name!r}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.slow  # > 1 s: the full suite runs it
@settings(max_examples=300, deadline=None)
@given(doc=json_values)
def test_fuzzed_documents_raise_only_wire_errors(doc: Any) -> None:
    try:
        wire.decode_result(json.dumps(doc))
    except wire.WireError as exc:
        error = exc
    else:
        return
    assert error.field
    assert error.reason


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(
        [
            "seq",
            "data.download_mbps",
            "clock",
            "data",
            "measured_at",
            "probe_id",
            "data.failed_servers",
            "detail",
            "status",
        ]
    ),
    value=json_values,
)
@pytest.mark.slow  # > 1 s: the full suite runs it
def test_fuzzed_golden_mutations_never_crash(path: str, value: Any) -> None:
    doc = _set(_result(), path, value)
    try:
        result = wire.decode_result(json.dumps(doc))
    except wire.WireError:
        return
    # Accepted: then it must survive a round trip unchanged.
    assert wire.decode_result(wire.encode(result)) == result


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200))
def test_fuzzed_bytes_raise_only_wire_errors(raw: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        wire.decode_result(raw)


def test_topics_build_and_parse() -> None:
    topics = wire.Topics("probefleet/v1")
    assert topics.result("p-1", "latency") == "probefleet/v1/p-1/results/latency"
    assert topics.parse("probefleet/v1/p-1/results/latency") == ("p-1", "results", "latency")
    assert topics.parse(topics.channel("p-1", "status")) == ("p-1", "status", None)
    for bad in [
        "other/p-1/status",
        "probefleet/v1/P1/status",
        "probefleet/v1/p-1/results/x",
        "probefleet/v1/p-1/results",
        "probefleet/v1/p-1/status/extra",
        "probefleet/v1//status",
    ]:
        with pytest.raises(wire.WireError):
            topics.parse(bad)
    for bad_root in ["", "a/", "a/+", "a/#"]:
        with pytest.raises(ValueError, match="invalid topic root"):
            wire.Topics(bad_root)


TIMESTAMPS = [
    "2026-03-01T12:00:00Z", "2026-03-01 12:00:00Z", "2026-03-01t12:00:00z",
    "2026-03-01T12:00:00.5Z", "2026-03-01T12:00:00.123456789012Z", "2026-03-01T12:00:00+00:00",
    "2026-03-01T12:00:00-00:00", "2026-03-01T12:00:60Z", "2026-03-01T12:00Z",
    "2026-03-01T24:00:00Z", "2026-03-01T12:00:00+07:00", "2026-03-01T12:00:00",
    "2026-3-1T12:00:00Z", "2026-03-01T12:00:00Z\n", "2026-03-01T12:00:00.Z",
    "2026-13-01T12:00:00Z", "2026-02-30T12:00:00Z", "2026-04-31T12:00:00Z",
    "2025-02-29T12:00:00Z", "2024-02-29T12:00:00Z", "2000-02-29T12:00:00Z",
    "1900-02-29T12:00:00Z", "0000-01-01T12:00:00Z", "0001-01-01T12:00:00Z",
]  # fmt: skip


@pytest.mark.parametrize("when", TIMESTAMPS)
def test_the_schema_and_the_decoder_agree_on_timestamps(when: str) -> None:
    doc = json.loads((GOLDEN / "result-latency.json").read_text())
    doc["measured_at"] = when
    raw = json.dumps(doc).encode()
    try:
        wire.decode_result(raw)
        decoded = True
    except wire.WireError:
        decoded = False
    assert ecma_validator("result").is_valid(json.loads(raw)) == decoded, when


@pytest.mark.parametrize("field", ["interface", "boot_id", "request_id"])
def test_the_schema_and_the_decoder_agree_on_a_final_newline(field: str) -> None:
    doc = json.loads((GOLDEN / "result-latency.json").read_text())
    doc[field] = {"interface": "eth0", "boot_id": doc["boot_id"], "request_id": "r-1"}[field]
    for value, accepted in ((doc[field], True), (doc[field] + "\n", False)):
        doc[field] = value
        with contextlib.suppress(wire.WireError):
            wire.decode_result(json.dumps(doc))
            assert accepted, f"{field} = {value!r} was decoded"
        assert ecma_validator("result").is_valid(doc) == accepted, (field, value)


def test_an_integer_written_with_a_zero_fraction_is_that_integer() -> None:
    """JSON Schema calls 20.0 an integer, so the decoder takes it as 20; a float elsewhere
    stays a float (its InfluxDB field type must not change) and 20.5 is still refused."""
    doc = json.loads((GOLDEN / "result-throughput.json").read_text())
    doc["seq"] = 20.0
    doc["data"]["download_streams"] = 4.0
    doc["data"]["download_mbps"] = 88.0
    result = wire.decode_result(json.dumps(doc))
    assert (result.seq, type(result.seq)) == (20, int)
    data: Any = result.data
    assert (data.download_streams, type(data.download_streams)) == (4, int)
    assert type(data.download_mbps) is float
    for bad, where in ((20.5, "seq"), (1e300, "seq")):
        doc["seq"] = bad
        with pytest.raises(wire.WireError) as refused:
            wire.decode_result(json.dumps(doc))
        assert refused.value.field == where
