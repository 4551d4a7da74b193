"""The wire contract: every JSON message that travels over MQTT, version 1, in one place.

Who sends what (``<root>`` defaults to ``probefleet/v1``, ``<probe>`` is the probe id)::

    probe  -> centre   <root>/<probe>/results/<kind>   Result (one per measurement run), QoS 1
    probe  -> centre   <root>/<probe>/status           ProbeStatus, retained; also the Last Will
    centre -> probe    <root>/<probe>/ack              StoredAck: "stored up to seq N (and these)"
    centre -> probe    <root>/<probe>/resend           ResendRequest: "send these seqs again"
    centre -> probe    <root>/<probe>/commands         Command: run a measurement now
    centre -> probe    <root>/<probe>/config           retained config (shape owned by agent.config)

A Result's identity is ``(probe_id, seq)``: ``seq`` is persistent on the probe and only grows,
so the collector can drop duplicates and see gaps; ``boot_id`` tells reboots apart. Every
number carries its unit in its name. Decoding is strict: unknown fields, wrong types, NaN or
infinity, out-of-range values and oversized payloads raise :class:`WireError`, which names the
field and the reason. ``python -m probefleet.core.wire`` regenerates the JSON Schema files in
``schema/``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

SCHEMA_VERSION: Final = 1
# A result is a few hundred bytes; 64 KiB leaves room for big lists while staying far below
# Mosquitto's and MQTT v5's limits (paho reconnects forever on an oversized message).
MAX_PAYLOAD_BYTES: Final = 65_536
DEFAULT_TOPIC_ROOT: Final = "probefleet/v1"
# No message of the contract is nested deeper than 5 levels (result > data > list > entry
# > list); deeper input is refused before it is parsed.
MAX_DEPTH: Final = 16
# Before this no wall clock can be right: a probe (no battery clock) booted without a time
# source. The agent waits for a later clock; the collector re-bases or quarantines earlier
# timestamps.
SANE_AFTER: Final = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

PROBE_ID_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{0,62})\Z"
_UUID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"
# Linux interface names (IFNAMSIZ is 16 with the NUL).
_IFNAME_PATTERN: Final = r"^[A-Za-z0-9_.:@-]{1,15}\Z"
_NAME_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,64}\Z"

_MAX_SEQ: Final = 2**53 - 1  # largest integer every JSON reader keeps exactly
_MAX_MBPS: Final = 100_000.0  # 100 Gbit/s: anything faster is a bug, not a line
_MAX_MS: Final = 600_000.0  # ten minutes: a slower "reply" is a hang, not an RTT
_MAX_BYTES: Final = 2**63 - 1

ProbeId = Annotated[
    str,
    msgspec.Meta(
        pattern=PROBE_ID_PATTERN, description="1-63 of a-z, 0-9 and -, not starting with -"
    ),
]
BootId = Annotated[str, msgspec.Meta(pattern=_UUID_PATTERN, description="kernel boot_id")]
Seq = Annotated[int, msgspec.Meta(ge=1, le=_MAX_SEQ)]
UtcTime = Annotated[dt.datetime, msgspec.Meta(tz=True, description="RFC 3339, UTC")]
IfName = Annotated[str, msgspec.Meta(pattern=_IFNAME_PATTERN)]
Name = Annotated[str, msgspec.Meta(pattern=_NAME_PATTERN)]
Text = Annotated[str, msgspec.Meta(max_length=500)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Host = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
Mbps = Annotated[float, msgspec.Meta(ge=0.0, le=_MAX_MBPS)]
Ms = Annotated[float, msgspec.Meta(ge=0.0, le=_MAX_MS)]
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=100 * 365 * 86_400.0)]
ByteCount = Annotated[int, msgspec.Meta(ge=0, le=_MAX_BYTES)]
Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Pct = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
IpVersion = Literal[4, 6]
Access = Literal["fixed", "mobile"]
Status = Literal["ok", "failed", "skipped"]
# A measurement kind's name: its folder (kinds/<kind>/), config table, topic and InfluxDB
# measurement. Which names exist is the registry's business (probefleet.kinds), not the
# core's: a name is checked against it wherever one arrives (topic, command, config).
Kind = str
KindName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}\Z")]

_T = TypeVar("_T")


class Strict(
    msgspec.Struct,
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    gc=False,
):
    """Base of every wire struct: unknown fields are errors, instances are immutable.

    ``gc=False``: an immutable message of numbers, strings and lists of such cannot be part
    of a reference cycle, so the cyclic garbage collector need not track it — the collector
    holds thousands at a time and its collections were a third of its time."""


# --- the envelope ------------------------------------------------------------------------


class Clock(Strict, frozen=True, kw_only=True):
    """What the probe knows about its own clock (no battery: it may start in 1970)."""

    synced: bool
    uptime_s: Seconds  # monotonic, so the collector can re-base unsynchronised timestamps
    since_sync_s: Seconds | None = None  # None: not synchronised since boot


# --- radio context (results measured on a mobile interface) --------------------------------

# The radio technology in use, from ModemManager's AccessTechnologies: gsm (2G), umts (3G),
# lte (4G), nr5g_nsa (5G with an LTE anchor: LTE and 5GNR bits), nr5g_sa (5GNR alone).
Technology = Literal["gsm", "umts", "lte", "nr5g_nsa", "nr5g_sa"]
Registration = Literal[
    "home", "roaming", "searching", "denied", "idle", "emergency_only", "unknown"
]
# MCC (3 digits) + MNC (2 or 3): "45204" is Viettel.
OperatorCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{5,6}\Z")]
# A name a modem reports: printable, no control characters (it ends up in texts and logs).
OperatorName = Annotated[str, msgspec.Meta(pattern=r"^[^\x00-\x1f\x7f]{1,64}\Z")]
# Physical ranges, with a margin beyond what 3GPP reports (TS 36.133, 38.133, 25.133): a
# figure outside them is a broken modem or a forged message, never a radio.
Dbm = Annotated[float, msgspec.Meta(ge=-160.0, le=0.0)]
RsrqDb = Annotated[float, msgspec.Meta(ge=-50.0, le=20.0)]
SnrDb = Annotated[float, msgspec.Meta(ge=-50.0, le=60.0)]
EcioDb = Annotated[float, msgspec.Meta(ge=-50.0, le=5.0)]
BandName = Annotated[str, msgspec.Meta(pattern=r"^(geran|utran|eutran|ngran)-[0-9]{1,3}\Z")]


class RadioSnapshot(Strict, frozen=True, kw_only=True):
    """What the modem said at one moment. Every field is optional: a modem that does not
    report a figure leaves it absent (ModemManager's NaN, 0 or "" for unknown are never
    sent as numbers)."""

    technology: Technology | None = None  # None: no service / not registered
    registration: Registration | None = None
    operator_code: OperatorCode | None = None  # the serving network's MCC+MNC
    operator_name: OperatorName | None = None
    sim_operator_code: OperatorCode | None = None  # the SIM's home network
    sim_operator_name: OperatorName | None = None
    signal_quality_pct: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    rssi_dbm: Dbm | None = None  # LTE's, else UMTS's, else GSM's
    rsrp_dbm: Dbm | None = None  # LTE
    rsrq_db: RsrqDb | None = None
    snr_db: SnrDb | None = None  # ModemManager's `snr`, what modems call SINR
    nr_rsrp_dbm: Dbm | None = None  # the 5G NR leg (NSA or SA)
    nr_rsrq_db: RsrqDb | None = None
    nr_snr_db: SnrDb | None = None
    rscp_dbm: Dbm | None = None  # UMTS
    ecio_db: EcioDb | None = None
    # The serving cell. cell_id: 16 bits (GSM), 28 (UMTS, LTE ECI) or 36 (NR NCI); tac: 16
    # bits (LTE) or 24 (NR); lac: 16 bits; arfcn: (E/U/NR-)ARFCN, NR's reach 3,279,165.
    cell_id: Annotated[int, msgspec.Meta(ge=0, le=2**36 - 1)] | None = None
    tac: Annotated[int, msgspec.Meta(ge=0, le=2**24 - 1)] | None = None
    lac: Annotated[int, msgspec.Meta(ge=0, le=2**16 - 1)] | None = None
    arfcn: Annotated[int, msgspec.Meta(ge=0, le=3_279_165)] | None = None
    band: BandName | None = None  # "eutran-3", "ngran-78", "utran-1"


class RadioContext(Strict, frozen=True, kw_only=True):
    """The radio a result was measured on: at its start, and at its end for a bandwidth test
    (so that a handover or a fall back to 3G during the test shows). ``end`` is absent when
    the modem could not be read then (unplugged, ModemManager gone)."""

    start: RadioSnapshot
    end: RadioSnapshot | None = None


class Envelope(Strict, tag_field="kind", frozen=True, kw_only=True):
    """Fields every result carries; each subclass fixes ``kind`` and the type of ``data``."""

    schema: Literal[1]
    probe_id: ProbeId
    boot_id: BootId
    seq: Seq
    measured_at: UtcTime
    sent_at: UtcTime
    clock: Clock
    interface: IfName | None = None
    access: Access | None = None
    agent_version: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    status: Status = "ok"
    reason: Text | None = None  # why it failed or was skipped
    # The values that caused a skip or failure, e.g. {"cross_traffic_bps": 81234.0}.
    detail: Annotated[dict[Name, float], msgspec.Meta(max_length=16)] | None = None
    # The Command that asked for this run (its request_id); absent for scheduled runs.
    request_id: Name | None = None
    # Only on results measured on a mobile interface (and by agents that attach it): what the
    # modem said at the start (and end) of the run. A collector older than this field refuses
    # such a result (strict decoding): upgrade the centre first, or set [radio] attach = false.
    radio: RadioContext | None = None
    # The kind's payload; each kind's result class narrows its type (kinds/<kind>/payload.py).
    data: msgspec.Struct | None = None
    # Set when the probe publishes (not when it measures): the lowest seq it still holds
    # unconfirmed. Every seq below it was confirmed stored by a collector or counted as
    # dropped by the probe, so a collector's gaps below it are settled, never asked for.
    held_from_seq: Seq | None = None

    def __post_init__(self) -> None:
        data = getattr(self, "data", None)
        if self.status == "ok":
            if data is None:
                raise ValueError("`data` is required when `status` is 'ok'")
            if self.reason is not None:
                raise ValueError("`reason` must be absent when `status` is 'ok'")
        else:
            if data is not None:
                raise ValueError(f"`data` must be absent when `status` is {self.status!r}")
            if not self.reason:
                raise ValueError(f"`reason` is required when `status` is {self.status!r}")
        for name in ("measured_at", "sent_at"):
            if getattr(self, name).utcoffset() != dt.timedelta(0):
                raise ValueError(f"`{name}` must be in UTC (end with Z)")
        for key, value in (self.detail or {}).items():
            if not math.isfinite(value):
                raise ValueError(f"`detail.{key}` is not a finite number")


# Any kind's result. Statically the envelope; decoding uses the tagged union of every
# registered kind's result class (probefleet.kinds), so a new kind needs no line here.
Result = Envelope


def kind_of(result: Result) -> Kind:
    """The measurement kind of a decoded result (msgspec keeps the tag on the class)."""
    return type(result).__struct_config__.tag  # type: ignore[return-value]


_kinds: Any = None


def _registry() -> Any:
    """The kinds' registry, imported when first needed: the kinds' payload modules import
    this module, so it cannot import them at its own import time."""
    global _kinds  # noqa: PLW0603 - a lazily bound module, looked up per decoded message
    if _kinds is None:
        from probefleet import kinds

        _kinds = kinds
    return _kinds


# --- control messages ----------------------------------------------------------------------

SeqRange = tuple[Seq, Seq]  # inclusive [first, last]


def _check_ranges(field: str, ranges: list[tuple[int, int]]) -> None:
    for i, (first, last) in enumerate(ranges):
        if first > last:
            raise ValueError(f"`{field}[{i}]` starts after it ends ({first} > {last})")


class StoredAck(Strict, frozen=True, kw_only=True):
    """Centre -> probe: results up to ``stored_through_seq`` (and in ``also_stored``) are in
    the database; the probe may delete them from its spool. Sent after the durable write."""

    schema: Literal[1]
    probe_id: ProbeId
    stored_through_seq: Annotated[int, msgspec.Meta(ge=0, le=_MAX_SEQ)]
    at: UtcTime
    also_stored: Annotated[list[SeqRange], msgspec.Meta(max_length=64)] = []

    def __post_init__(self) -> None:
        _check_ranges("also_stored", self.also_stored)


class ResendRequest(Strict, frozen=True, kw_only=True):
    """Centre -> probe: these sequence numbers never arrived; publish them again if spooled."""

    schema: Literal[1]
    probe_id: ProbeId
    ranges: Annotated[list[SeqRange], msgspec.Meta(min_length=1, max_length=64)]
    at: UtcTime

    def __post_init__(self) -> None:
        _check_ranges("ranges", self.ranges)


class ProbeStatus(Strict, frozen=True, kw_only=True):
    """Retained presence of a probe; the "offline" form is registered as its Last Will."""

    schema: Literal[1]
    probe_id: ProbeId
    state: Literal["online", "offline"]
    boot_id: BootId | None = None
    at: UtcTime | None = None  # None in the Last Will: it is written at connect time
    agent_version: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    reason: Text | None = None
    # Fleet control: the remote config in force (a short digest; None: the file alone) and
    # why the last one sent was rejected (None: it was accepted).
    config_digest: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{12}\Z")] | None = None
    config_error: Text | None = None
    # The probe's storage now: "ok", "disk_full" (its state dir's disk refuses results:
    # they wait in memory), "failing" (I/O errors); and the results it lost, ever, all
    # reasons (per reason: its health results). None: not said (the Last Will, an older
    # agent, another device).
    storage: Literal["ok", "disk_full", "failing"] | None = None
    dropped: Annotated[int, msgspec.Meta(ge=0, le=10**15)] | None = None


class Command(Strict, frozen=True, kw_only=True):
    """Centre -> probe: run a measurement now; its result is published like any other."""

    schema: Literal[1]
    command: Literal["measure"]
    kind: KindName  # a registered kind: checked by the probe when it runs the command
    request_id: Name
    interface: IfName | None = None


# --- decoding and encoding -----------------------------------------------------------------


class WireError(ValueError):
    """A message that breaks the contract. ``field`` is a dotted path ("data.download_mbps")
    or "$" for the message as a whole."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_AT = re.compile(r"^(?P<reason>.*) - at (?:`key` in )?`\$(?P<path>[^`]*)`$", re.S)
_FIELD_IN_REASON = re.compile(r"^`(?P<field>[a-z_.\[\]0-9]+)`")
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_encoder = msgspec.json.Encoder()


def _wire_error(exc: msgspec.MsgspecError) -> WireError:
    text = str(exc)
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return WireError("$", f"not valid JSON ({text}); NaN and Infinity are not JSON")
    match = _AT.match(text)
    if match:
        path = match["path"].lstrip(".") or "$"
        reason = match["reason"]
        # A __post_init__ check names its own field: append it to the struct's path.
        inner = _FIELD_IN_REASON.match(reason)
        if inner:
            path = inner["field"] if path == "$" else f"{path}.{inner['field']}"
        return WireError(path, reason)
    inner = _FIELD_IN_REASON.match(text)
    return WireError(inner["field"] if inner else "$", text)


_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_INNERMOST: Final = re.compile(rb"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")


def check_nesting(raw: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse (WireError) a document nested deeper than ``limit`` before any parser sees
    it: parsers recurse per level (msgspec, json and tomllib raise RecursionError, which
    no handler of bad input expects). Brackets inside strings do not count; unclosed ones
    do. A few microseconds for a real message: innermost pairs are removed level by level
    by one regular expression, never byte by byte in Python."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return  # this few brackets cannot be deeper
    text = _STRING.sub(b"", raw) if b'"' in raw else raw
    levels = 0
    while levels <= limit:
        text, removed = _INNERMOST.subn(b"", text)
        if not removed:
            break
        levels += 1
    if levels + text.count(b"[") + text.count(b"{") > limit:
        raise WireError("$", f"nested deeper than {limit} levels")


def decode(payload: bytes | str, type_: type[_T] | Any) -> _T:
    """Decode one message of ``type_`` strictly; raise :class:`WireError` on any breach."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise WireError("$", f"payload is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    check_nesting(raw)
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(raw)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        if not _INT_GOT_FLOAT.search(str(exc)):
            raise _wire_error(exc) from None
        return _decode_integral_floats(raw, type_, exc)  # type: ignore[no-any-return]
    except msgspec.MsgspecError as exc:
        raise _wire_error(exc) from None
    except RecursionError:  # a backstop: check_nesting should have refused it
        raise WireError("$", "nested too deeply") from None


# "Expected `int`, got `float`", also "`int | null`": an int was due, a float came.
_INT_GOT_FLOAT: Final = re.compile(r"^Expected `int( \| [^`]*)?`, got `float`")
_MAX_INTEGRAL_FIXES: Final = 64


def _decode_integral_floats(raw: bytes, type_: Any, first: msgspec.ValidationError) -> Any:
    """Decode a message that writes an integer as ``20.0``: JSON Schema (and JSON itself)
    call 20.0 an integer, so the schema we publish accepts it, and so must we. msgspec
    refuses it, naming the place; the number at exactly that place (every value of a map,
    when the place is a map's values) becomes an int and the message is converted again,
    at most a bounded number of times. Only the rare message that needs it pays for the
    second pass, and a float elsewhere (a detail value 2.0) is left a float, so a field's
    InfluxDB type never changes."""
    doc = msgspec.json.decode(raw)
    exc: msgspec.ValidationError = first
    for _ in range(_MAX_INTEGRAL_FIXES):
        match = _AT.match(str(exc))
        if match is None or not _INT_GOT_FLOAT.match(match["reason"]):
            break
        if not _to_int_at(doc, _PATH_STEP.findall(match["path"])):
            break  # not an integral float (1.5, 1e300): the first error stands
        try:
            return msgspec.convert(doc, type_)
        except msgspec.ValidationError as again:
            exc = again
    raise _wire_error(exc) from None


# One step of msgspec's error path: ``.name``, ``[3]`` or ``[...]`` (a map's values).
_PATH_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _to_int_at(node: Any, steps: list[tuple[str, str]]) -> bool:
    """Make the integral float at ``steps`` an int; False if there is none to make."""
    if not steps:
        return False
    (name, index), rest = steps[0], steps[1:]
    if index == "...":
        if not isinstance(node, dict):
            return False
        if rest:
            return any([_to_int_at(value, rest) for value in node.values()])
        changed = False
        for name_, value in node.items():
            if _integral(value):
                node[name_] = int(value)
                changed = True
        return changed
    key: Any = int(index) if index else name
    try:
        child = node[key]
    except (KeyError, IndexError, TypeError):
        return False
    if rest:
        return _to_int_at(child, rest)
    if not _integral(child):
        return False
    node[key] = int(child)
    return True


def _integral(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def decode_result(payload: bytes | str) -> Result:
    """Decode a probe's result; ``schema`` and ``kind`` are checked before the rest."""
    return decode(payload, _registry().result_union())  # type: ignore[no-any-return]


def encode(message: msgspec.Struct) -> bytes:
    """Serialise any wire struct; refuse (WireError) what the receiver would refuse as too big."""
    raw = _encoder.encode(message)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise WireError("$", f"payload is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    return raw


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- topics --------------------------------------------------------------------------------

Channel = Literal["results", "status", "ack", "resend", "commands", "config"]
CHANNELS: Final = ("results", "status", "ack", "resend", "commands", "config")
_PROBE_ID_RE: Final = re.compile(PROBE_ID_PATTERN)


class Topics:
    """Builds and parses topic names under one root (no trailing slash)."""

    def __init__(self, root: str = DEFAULT_TOPIC_ROOT) -> None:
        if not root or root.endswith("/") or any(c in root for c in "+#\0"):
            raise ValueError(f"invalid topic root {root!r}: no wildcards, no trailing '/'")
        self.root = root

    def result(self, probe_id: str, kind: str) -> str:
        return f"{self.root}/{probe_id}/results/{kind}"

    def channel(self, probe_id: str, channel: Channel) -> str:
        return f"{self.root}/{probe_id}/{channel}"

    def all_results(self) -> str:
        return f"{self.root}/+/results/+"

    def all_status(self) -> str:
        return f"{self.root}/+/status"

    def parse(self, topic: str) -> tuple[str, str, str | None]:
        """``topic`` -> (probe_id, channel, kind or None); WireError if it is not ours."""
        prefix = self.root + "/"
        if not topic.startswith(prefix):
            raise WireError("topic", f"{topic!r} is not under {self.root!r}")
        parts = topic[len(prefix) :].split("/")
        probe_id = parts[0]
        if not _PROBE_ID_RE.match(probe_id):
            raise WireError("topic", f"probe id {probe_id!r} is not [a-z0-9-], 1-63 chars")
        if len(parts) == 3 and parts[1] == "results":
            if parts[2] not in _registry().SPECS:
                raise WireError("topic", f"unknown measurement kind {parts[2]!r}")
            return probe_id, "results", parts[2]
        if len(parts) == 2 and parts[1] in CHANNELS and parts[1] != "results":
            return probe_id, parts[1], None
        raise WireError("topic", f"{topic!r} is not a probefleet topic")


# --- JSON Schema ---------------------------------------------------------------------------


# message type -> its struct; schema/<type>.schema.json is generated from each.
def schema_types() -> dict[str, Any]:
    """Every message type by name; "result" is the union of the registered kinds' results."""
    return {
        "result": _registry().result_union(),
        "ack": StoredAck,
        "resend": ResendRequest,
        "status": ProbeStatus,
        "command": Command,
    }


# A calendar date that exists: 31-day months, 30-day months, February to the 28th, and
# the 29th of February in leap years only (divisible by 4, centuries only by 400); no
# year 0 (Python's calendar starts at year 1).
_DATE: Final = (
    r"(\d{4}-(0[13578]|1[02])-(0[1-9]|[12]\d|3[01])"
    r"|\d{4}-(0[469]|11)-(0[1-9]|[12]\d|30)"
    r"|\d{4}-02-(0[1-9]|1\d|2[0-8])"
    r"|(\d\d(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)"
)
UTC_TIME_PATTERN: Final = (
    r"^(?!0000)" + _DATE + r"[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]00:00)$"
)
_STATUS_RULE: Final = {
    "if": {"properties": {"status": {"const": "ok"}}},
    "then": {
        "required": ["data"],
        "properties": {"data": {"not": {"type": "null"}}, "reason": {"type": "null"}},
    },
    "else": {
        "required": ["reason"],
        "properties": {"data": {"type": "null"}, "reason": {"type": "string", "minLength": 1}},
    },
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (2020-12) for each message, generated from the structs above.

    Adds by hand what msgspec cannot express: the status/data/reason rule of results, that
    date-times are UTC and which kinds a command may name. Descriptions come from docstrings
    and are normalised to one line each, so the files do not change with the way a msgspec
    release indents docstrings. Range checks of __post_init__ (received <= sent,
    first <= last) stay in code only."""
    registry = _registry()
    result_names = {cls.__name__ for cls in registry.result_types().values()}
    out: dict[str, dict[str, Any]] = {}
    for name, type_ in schema_types().items():
        filename = f"{name}.schema.json"
        schema = _one_line_descriptions(msgspec.json.schema(type_))
        for def_name, definition in schema.get("$defs", {}).items():
            for prop in definition.get("properties", {}).values():
                for variant in prop.get("anyOf", [prop]):
                    if variant.get("format") == "date-time":
                        # Exactly what the decoder takes (RFC 3339 as msgspec reads it, a
                        # space or lower-case t/z included, no leap second, no 30th of
                        # February) and UTC only;
                        # "format" would refuse the space and allow ":60".
                        del variant["format"]
                        variant["pattern"] = UTC_TIME_PATTERN
            if def_name in result_names:
                definition["allOf"] = [_STATUS_RULE]
            if def_name == "Command":
                definition["properties"]["kind"]["enum"] = list(registry.SPECS)
        out[filename] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://probefleet.invalid/schema/v{SCHEMA_VERSION}/{filename}",
            "title": f"probefleet v{SCHEMA_VERSION} {name} message",
            **schema,
        }
    return out


def _one_line_descriptions(node: Any) -> Any:
    r"""``node`` with every "description" on one line and every pattern in ECMA-262 form
    (JSON Schema's dialect), recursively. Patterns end in ``\Z`` in the code, because
    Python's ``$`` also matches before a final newline ("eth0\n" passed); ECMA's ``$``
    (without the multiline flag) means the very end, so the schema says ``$``."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                out[key] = " ".join(value.split())
            elif key == "pattern" and isinstance(value, str) and value.endswith("\\Z"):
                out[key] = value[:-2] + "$"
            else:
                out[key] = _one_line_descriptions(value)
        return out
    if isinstance(node, list):
        return [_one_line_descriptions(v) for v in node]
    return node


def render_schema(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in json_schemas().items():
        path = directory / filename
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m probefleet.core.wire [DIR]: regenerate schema/ (cwd)
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("schema")
    for written_path in write_schemas(target):
        print(written_path)
