"""points.parse and points_from: the data model for every golden, rejections, fuzzing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from probefleet import kinds
from probefleet.collector.clock import Timestamp
from probefleet.collector.errors import Rejected
from probefleet.collector.inventory import Enrichment, load_inventory, load_targets
from probefleet.collector.lineproto import Point
from probefleet.collector.points import parse, points_from
from probefleet.core import wire

from tests.collector.helpers import GOLDEN, ROOT, encode, golden, result
from tests.core.test_wire import _DELETE, HOSTILE, _set, json_values

TOPICS = wire.Topics()
PROBE = "dongnai-tanphu-01"
T = 1_762_174_804_250_000_000  # 2025-11-03T13:00:04.250Z, every golden's measured_at
ENRICHMENT = Enrichment(
    load_inventory(ROOT / "config/inventory.sample.toml"),
    load_targets(ROOT / "config/targets.sample.toml"),
)
PLACE = {"probe": PROBE, "commune": "Tân Phú", "province": "Đồng Nai"}
ETH0 = {**PLACE, "interface": "eth0", "access": "fixed", "operator": "VNPT"}
WWAN0 = {**PLACE, "interface": "wwan0", "access": "mobile", "operator": "Viettel"}


def points_of(name: str, enrichment: Enrichment = ENRICHMENT) -> list[Point]:
    raw = (GOLDEN / name).read_bytes()
    doc = json.loads(raw)
    parsed = parse(TOPICS.result(doc["probe_id"], doc["kind"]), raw, TOPICS)
    return points_from(parsed.result, parsed.probe, enrichment)


def envelope(seq: int, source: str = "probe", synced: bool = True) -> dict[str, Any]:
    return {"seq": seq, "clock_synced": synced, "time_source": source}


# The radio context's fields (collector/README.md, *Common to every point of a mobile
# result*), as the mobile goldens' snapshots give them.
VIETTEL = {
    "radio_operator_name": "Viettel",
    "radio_sim_operator_code": "45204",
    "radio_sim_operator_name": "Viettel",
}
NSA_START = {
    "radio_registration": "home",
    **VIETTEL,
    "radio_signal_quality_pct": 64,
    "radio_rssi_dbm": -67.0,
    "radio_rsrp_dbm": -97.0,
    "radio_rsrq_db": -12.0,
    "radio_snr_db": 9.5,
    "radio_nr_rsrp_dbm": -86.0,
    "radio_nr_rsrq_db": -11.0,
    "radio_nr_snr_db": 16.0,
    "radio_cell_id": 27440068,
    "radio_tac": 12058,
    "radio_arfcn": 1650,
    "radio_band": "eutran-3",
}
UMTS_END = {
    "radio_end_registration": "home",
    "radio_end_operator_name": "Viettel",
    "radio_end_sim_operator_code": "45204",
    "radio_end_sim_operator_name": "Viettel",
    "radio_end_signal_quality_pct": 41,
    "radio_end_rssi_dbm": -77.0,
    "radio_end_rscp_dbm": -91.0,
    "radio_end_ecio_db": -8.5,
    "radio_end_cell_id": 15901617,
    "radio_end_lac": 1441,
    "radio_end_arfcn": 10700,
    "radio_end_band": "utran-1",
    "radio_end_technology": "umts",
    "radio_end_operator_code": "45204",
    "radio_changed": True,
}
UMTS_ROAMING_START = {
    "radio_registration": "roaming",
    "radio_operator_name": "VinaPhone",
    "radio_sim_operator_code": "45204",
    "radio_sim_operator_name": "Viettel",
    "radio_signal_quality_pct": 38,
    "radio_rssi_dbm": -79.0,
    "radio_rscp_dbm": -93.0,
    "radio_ecio_db": -9.0,
    "radio_cell_id": 15901700,
    "radio_lac": 1442,
    "radio_arfcn": 10712,
    "radio_band": "utran-1",
}
NSA = {
    "registration": "home",
    "operator_name": "Viettel",
    "sim_operator_code": "45204",
    "sim_operator_name": "Viettel",
    "signal_quality_pct": 80,
    "rssi_dbm": -60.0,
    "rsrp_dbm": -90.0,
    "rsrq_db": -10.0,
    "snr_db": 15.0,
    "nr_rsrp_dbm": -88.0,
    "nr_rsrq_db": -10.5,
    "nr_snr_db": 18.0,
    "cell_id": 27440069,
    "tac": 12058,
    "arfcn": 1650,
    "band": "eutran-3",
}
NSA_END = {
    **{f"radio_end_{k}": v for k, v in NSA.items()},
    "radio_end_technology": "nr5g_nsa",
    "radio_end_operator_code": "45204",
    "radio_changed": True,
}


# golden -> [(measurement, tags, fields)], written out by hand from the README's tables.
# The survey goldens' radio context (an LTE snapshot), as fields.
SURVEY_LTE = {
    "radio_registration": "home", "radio_operator_name": "Viettel",
    "radio_signal_quality_pct": 64, "radio_rssi_dbm": -71.0, "radio_rsrp_dbm": -101.0,
    "radio_rsrq_db": -12.0, "radio_snr_db": 6.5, "radio_cell_id": 27440070, "radio_tac": 12058,
    "radio_arfcn": 1650, "radio_band": "eutran-3",
}  # fmt: skip


EXPECTED: dict[str, list[tuple[str, dict[str, str], dict[str, Any]]]] = {
    "result-throughput.json": [
        (
            "throughput",
            {**ETH0, "status": "ok", "method": "librespeed", "ip_version": "4",
             "server": "Đồng Nai DC (VNPT)"},
            {**envelope(1041), "download_mbps": 148.72, "upload_mbps": 97.31,
             "download_bytes": 185900000, "upload_bytes": 121637500,
             "download_duration_s": 10.0, "upload_duration_s": 10.0,
             "download_streams": 6, "upload_streams": 3, "latency_idle_ms": 3.41,
             "latency_download_ms": 27.9, "latency_upload_ms": 41.2, "jitter_ms": 0.62,
             "download_warmup_s": 2.4, "upload_warmup_s": 3.6, "tls_version": "TLSv1.3",
             "tls_cipher": "TLS_CHACHA20_POLY1305_SHA256",
             "server_url": "https://speed.dongnai.gov.vn/backend/", "server_id": "1",
             "failed_servers": 1, "target_download_mbps": 150.0,
             "meets_download_target": 0},
        )
    ],
    "result-ookla.json": [
        (
            "ookla",
            {**WWAN0, "status": "ok", "method": "ookla", "ip_version": "4",
             "server": "Viettel Biên Hòa"},
            {**envelope(1042), "request_id": "ops-20251103-1",
             "download_mbps": 58.4, "upload_mbps": 21.9,
             "download_bytes": 73000000, "upload_bytes": 27375000,
             "download_duration_s": 10.0, "upload_duration_s": 10.0, "latency_idle_ms": 24.0,
             "server_url": "https://speedtest.example.vn:8080/speedtest/upload.php",
             "server_id": "9903", "failed_servers": 0, "target_download_mbps": 60.0,
             "meets_download_target": 0},
        )
    ],
    "result-latency.json": [
        (
            "latency",
            {**ETH0, "status": "ok", "target": "ns1.dongnai.gov.vn", "method": "icmp",
             "ip_version": "4"},
            {**envelope(1043), "address": "203.0.113.10", "sent": 20, "received": 19,
             "loss_pct": 5.0, "rtt_min_ms": 2.9, "rtt_avg_ms": 3.6, "rtt_median_ms": 3.4,
             "rtt_p95_ms": 5.8, "rtt_max_ms": 7.1, "jitter_ms": 0.8},
        ),
        (
            "latency",
            {**ETH0, "status": "ok", "target": "portal.dongnai.gov.vn", "method": "tcp",
             "ip_version": "6", "port": "443"},
            {**envelope(1043), "address": "2001:db8::10", "sent": 20, "received": 0,
             "loss_pct": 100.0},
        ),
    ],
    "result-dns.json": [
        (
            "dns",
            {**ETH0, "status": "ok", "resolver": "system", "name": "dichvucong.dongnai.gov.vn",
             "rrtype": "A"},
            {**envelope(1044), "rcode": "NOERROR", "answers": 1, "time_ms": 12.4},
        ),
        (
            "dns",
            {**ETH0, "status": "ok", "resolver": "203.0.113.53",
             "name": "dichvucong.dongnai.gov.vn", "rrtype": "AAAA"},
            {**envelope(1044), "rcode": "NOERROR", "answers": 0, "time_ms": 9.9},
        ),
        (
            "dns",
            {**ETH0, "status": "ok", "resolver": "198.51.100.53",
             "name": "dichvucong.dongnai.gov.vn", "rrtype": "A"},
            {**envelope(1044), "rcode": "TIMEOUT", "answers": 0},
        ),
    ],
    "result-ipv6.json": [
        (
            "ipv6",
            {**ETH0, "status": "ok"},
            {**envelope(1045), "capable": True, "works": False, "capable_01": 1,
             "works_01": 0, "global_addresses": 1},
        ),
        (
            "ipv6",
            {**ETH0, "status": "ok", "check": "global_address"},
            {**envelope(1045), "verdict": "pass", "passed_01": 1, "detail": "2001:db8:1::5/64"},
        ),
        ("ipv6", {**ETH0, "status": "ok", "check": "default_route"},
         {**envelope(1045), "verdict": "pass", "passed_01": 1}),
        ("ipv6", {**ETH0, "status": "ok", "check": "aaaa", "target": "dichvucong.dongnai.gov.vn"},
         {**envelope(1045), "verdict": "pass", "passed_01": 1}),
        (
            "ipv6",
            {**ETH0, "status": "ok", "check": "tcp", "target": "dichvucong.dongnai.gov.vn"},
            {**envelope(1045), "verdict": "fail", "passed_01": 0, "rtt_v4_ms": 4.1,
             "detail": "connect timed out after 3 s"},
        ),
        (
            "ipv6",
            {**ETH0, "status": "ok", "check": "http", "target": "dichvucong.dongnai.gov.vn"},
            {**envelope(1045), "verdict": "skip", "passed_01": 0, "detail": "tcp failed"},
        ),
    ],
    "result-service.json": [
        (
            "service",
            {**ETH0, "status": "ok", "service": "dichvucong", "protocol": "https"},
            {**envelope(1046), "target": "https://dichvucong.dongnai.gov.vn/", "up": True,
             "up_01": 1, "status_code": 200, "connect_ms": 5.2, "ttfb_ms": 88.0,
             "total_ms": 131.5, "tls_days_left": 61.5},
        ),
        (
            "service",
            {**ETH0, "status": "ok", "service": "tsl-datacentre", "protocol": "tcp"},
            {**envelope(1046), "target": "10.1.1.1:443", "up": False, "up_01": 0,
             "error": "connection refused"},
        ),
    ],
    "result-health.json": [
        (
            "health",
            {**PLACE, "status": "ok"},
            {**envelope(1047), "cpu_pct": 7.5, "load_1m": 0.21, "memory_used_pct": 31.2,
             "memory_available_bytes": 2700000000, "disk_used_pct": 18.0,
             "disk_free_bytes": 24000000000, "uptime_s": 86412.5,
             "agent_rss_bytes": 31457280, "temperature_c": 52.1, "spool_depth": 3,
             "spool_bytes": 4096, "spool_dropped": 2, "dropped_disk_full": 0,
             "dropped_spool_budget": 2, "dropped_unspoolable": 0, "spool_held": 0,
             "disk_full_01": 0, "lat_deg": 11.2694, "lon_deg": 107.432},
        ),
        (
            "health",
            {**ETH0, "status": "ok"},
            {**envelope(1047), "up": True, "rx_bytes": 912345678, "tx_bytes": 345678901,
             "rx_errors": 0, "tx_errors": 0, "rx_drops": 0, "tx_drops": 0},
        ),
        (
            "health",
            {**WWAN0, "status": "ok"},
            {**envelope(1047), "up": True, "rx_bytes": 1234567, "tx_bytes": 234567,
             "rx_errors": 0, "tx_errors": 0, "rx_drops": 3, "tx_drops": 0,
             "budget_month": "2025-11", "budget_used_bytes": 4200000000,
             "budget_limit_bytes": 20000000000, "budget_used_pct": 21.0},
        ),
    ],
    "result-failed.json": [
        (
            "throughput",
            {**ETH0, "status": "failed"},
            {**envelope(1048), "reason": "every server refused: http://speed.dongnai.gov.vn/"
             "backend/ (connection refused), http://speed2.dongnai.gov.vn/backend/ (HTTP 503)"},
        )
    ],
    "result-skipped.json": [
        (
            "throughput",
            {**WWAN0, "status": "skipped"},
            {**envelope(1049),
             "reason": "line busy: cross-traffic stayed above 25000 B/s for 30 s",
             "detail_cpu_pct": 12.0, "detail_cross_traffic_bps": 81234.0},
        )
    ],
    "result-throughput-mobile.json": [
        (
            "throughput",
            {**WWAN0, "status": "ok", "method": "librespeed", "ip_version": "4",
             "server": "Viettel Biên Hòa", "radio_technology": "nr5g_nsa",
             "radio_operator": "45204"},
            {**envelope(1043), **NSA_START, **UMTS_END,
             "download_mbps": 38.4, "upload_mbps": 14.2,
             "download_bytes": 48000000, "upload_bytes": 17750000,
             "download_duration_s": 10.0, "upload_duration_s": 10.0,
             "download_streams": 4, "upload_streams": 2, "latency_idle_ms": 31.5,
             "latency_download_ms": 88.0, "latency_upload_ms": 120.4, "jitter_ms": 4.8,
             "download_warmup_s": 2.4, "upload_warmup_s": 3.6, "tls_version": "TLSv1.3",
             "tls_cipher": "TLS_CHACHA20_POLY1305_SHA256",
             "server_url": "https://speed.dongnai.gov.vn/backend/", "server_id": "1",
             "failed_servers": 0, "target_download_mbps": 60.0, "meets_download_target": 0},
        )
    ],
    "result-ookla-radio.json": [
        (
            "ookla",
            {**WWAN0, "status": "ok", "method": "ookla", "ip_version": "4",
             "server": "Viettel Biên Hòa", "radio_technology": "umts",
             "radio_operator": "45202"},
            {**envelope(1044), **UMTS_ROAMING_START, **NSA_END,
             "download_mbps": 58.4, "upload_mbps": 21.9,
             "download_bytes": 73000000, "upload_bytes": 27375000,
             "download_duration_s": 10.0, "upload_duration_s": 10.0, "latency_idle_ms": 24.0,
             "server_url": "https://speedtest.example.vn:8080/speedtest/upload.php",
             "server_id": "9903", "failed_servers": 0, "target_download_mbps": 60.0,
             "meets_download_target": 0},
        )
    ],
    "result-radio.json": [
        (
            "radio",
            {**WWAN0, "status": "ok", "radio_technology": "nr5g_nsa", "radio_operator": "45204"},
            {**envelope(2207), **{f"radio_{k}": v for k, v in NSA.items()},
             "registered": True, "modem_model": "RM500Q-GL",
             "modem_firmware": "RM500QGLABR11A06M4G",
             "modem_imei_sha256":
                 "76e077a0f1e5d4357467058bec26ce87fa6fa3c55d678a65a318adeab92b2cb5"},
        )
    ],
    "result-survey.json": [
        (
            "survey",
            {**WWAN0, "status": "ok", "radio_technology": "lte", "radio_operator": "45204",
             "run_id": "20251103-dongnai-tanphu-01-1", "fix_ok": "true"},
            {**envelope(412), **SURVEY_LTE, "point_n": 405, "last": False, "fix_mode": "3d",
             "lat_deg": 11.2851234, "lon_deg": 107.4701234, "horizontal_accuracy_m": 4.6,
             "speed_mps": 8.3},
        )
    ],
    "result-survey-nofix.json": [
        (
            "survey",
            {**WWAN0, "status": "ok", "radio_technology": "lte", "radio_operator": "45204",
             "run_id": "20251103-dongnai-tanphu-01-1", "fix_ok": "false"},
            {**envelope(413), **SURVEY_LTE, "point_n": 406, "last": True, "fix_mode": "none",
             "fix_reason": "the GPS has no fix (gpsd mode 1)"},
        )
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_points_exactly(name: str) -> None:
    points = points_of(name)
    got = [(p.measurement, dict(p.tags), dict(p.fields)) for p in points]
    assert got == EXPECTED[name]
    for point, (_m, _t, fields) in zip(points, EXPECTED[name], strict=True):
        assert point.time_ns == T
        # Types matter to InfluxDB (an int where a float was is a type conflict): compare them.
        assert {k: type(v) for k, v in point.fields} == {k: type(v) for k, v in fields.items()}


def test_every_golden_result_is_covered() -> None:
    names = {p.name for p in GOLDEN.glob("result-*.json")} - {"result-unsynced.json"}
    assert names == set(EXPECTED)


def test_measurement_is_the_kind_for_every_kind() -> None:
    for kind in kinds.names():
        assert {p.measurement for p in points_of(f"result-{kind}.json")} == {kind}


def test_line_protocol_of_a_point() -> None:
    [point] = points_of("result-skipped.json", Enrichment())
    assert point.line() == (
        "throughput,access=mobile,interface=wwan0,inventory=unknown,probe=dongnai-tanphu-01,"
        'status=skipped seq=1049i,clock_synced=true,time_source="probe",'
        'reason="line busy: cross-traffic stayed above 25000 B/s for 30 s",'
        f"detail_cpu_pct=12.0,detail_cross_traffic_bps=81234.0 {T}"
    )


def test_unknown_probe_is_accepted_and_flagged() -> None:
    doc = result("throughput", probe="not-in-inventory", seq=7)
    parsed = parse(TOPICS.result("not-in-inventory", "throughput"), encode(doc), TOPICS)
    [point] = points_from(parsed.result, parsed.probe, ENRICHMENT)
    tags = dict(point.tags)
    assert tags["inventory"] == "unknown"
    assert "commune" not in tags
    assert "operator" not in tags
    # The payload's own access type still selects the target.
    assert point.field("target_download_mbps") == 150.0


def _throughput(download: Any, *, access: Any = "fixed", **data: Any) -> Point:
    doc = result("throughput", probe=PROBE, seq=3)
    doc["data"]["download_mbps"] = download
    doc["data"].update(data)
    if access is _DELETE:
        del doc["access"]
    else:
        doc["access"] = access
    parsed = parse(TOPICS.result(PROBE, "throughput"), encode(doc), TOPICS)
    [point] = points_from(parsed.result, parsed.probe, ENRICHMENT)
    return point


def test_targets_by_access_type_and_share_field() -> None:
    exactly = _throughput(150)  # an integer in the JSON: still a float field
    assert exactly.field("download_mbps") == 150.0
    assert isinstance(exactly.field("download_mbps"), float)
    assert exactly.field("meets_download_target") == 1
    assert _throughput(149.99).field("meets_download_target") == 0
    mobile = _throughput(60.0, access="mobile")
    assert (mobile.field("target_download_mbps"), mobile.field("meets_download_target")) == (
        60.0,
        1,
    )
    # No access in the payload: the inventory's (eth0 is fixed) decides.
    assert _throughput(151.0, access=_DELETE).tag("access") == "fixed"
    assert _throughput(151.0, access=_DELETE).field("target_download_mbps") == 150.0
    # Download not measured: the target is there, no verdict.
    upload_only = _throughput(None)
    assert upload_only.field("meets_download_target") is None
    assert upload_only.field("target_download_mbps") == 150.0


def test_access_unknown_means_no_target_fields() -> None:
    doc = result("throughput", probe="stranger", seq=3)
    del doc["access"]
    parsed = parse(TOPICS.result("stranger", "throughput"), encode(doc), TOPICS)
    [point] = points_from(parsed.result, parsed.probe, ENRICHMENT)
    assert point.field("target_download_mbps") is None
    assert point.field("meets_download_target") is None


def test_upload_target_when_the_plan_sets_one(tmp_path: Path) -> None:
    text = (ROOT / "config/targets.sample.toml").read_text()
    path = tmp_path / "targets.toml"
    path.write_text(
        text.replace("download_mbps = 150.0", "download_mbps = 150.0\nupload_mbps = 90.0")
    )
    enrichment = Enrichment(ENRICHMENT.inventory, load_targets(path))
    [point] = points_of("result-throughput.json", enrichment)
    assert (point.field("target_upload_mbps"), point.field("meets_upload_target")) == (90.0, 1)


def test_timestamp_comes_from_when() -> None:
    parsed = parse(TOPICS.result(PROBE, "latency"), encode(result("latency", probe=PROBE)), TOPICS)
    points = points_from(
        parsed.result, PROBE, ENRICHMENT, Timestamp(1_800_000_000_000_000_123, "rebased")
    )
    assert {p.time_ns for p in points} == {1_800_000_000_000_000_123}
    assert {p.field("time_source") for p in points} == {"rebased"}


# -- rejections ------------------------------------------------------------------------------


def _parse_and_build(topic: str, payload: bytes) -> list[Point]:
    parsed = parse(topic, payload, TOPICS)
    return points_from(parsed.result, parsed.probe, ENRICHMENT)


def _reject(topic: str, payload: bytes) -> Rejected:
    with pytest.raises(Rejected) as caught:
        _parse_and_build(topic, payload)
    assert caught.value.field
    assert caught.value.reason
    return caught.value


def test_payload_claiming_another_probe_is_rejected() -> None:
    doc = result("latency", probe="victim-probe", seq=5)
    error = _reject(TOPICS.result("attacker", "latency"), encode(doc))
    assert error.field == "probe_id"
    assert "victim-probe" in error.reason
    assert "attacker" in error.reason


def test_topic_kind_must_match_payload_kind() -> None:
    doc = result("latency", probe="probe-a")
    error = _reject(TOPICS.result("probe-a", "dns"), encode(doc))
    assert error.field == "kind"


def test_duplicate_rows_are_rejected_rather_than_overwritten() -> None:
    doc = result("latency", probe="probe-a")
    doc["data"]["targets"].append(doc["data"]["targets"][0])
    error = _reject(TOPICS.result("probe-a", "latency"), encode(doc))
    assert "target=ns1.dongnai.gov.vn" in error.reason
    health = result("health", probe="probe-a")
    health["data"]["interfaces"].append(health["data"]["interfaces"][0])
    assert "interface=eth0" in _reject(TOPICS.result("probe-a", "health"), encode(health)).reason


def _hostile_corpus() -> list[tuple[str, str, bytes]]:
    """(name, topic, payload): the wire contract's hostile list plus the collector's own."""
    corpus = []
    for name, golden_name, path, value, _field, _reason in HOSTILE:
        doc = _set(golden(golden_name), path, value)
        probe_id = doc.get("probe_id")
        probe = probe_id if isinstance(probe_id, str) else "x"
        topic_probe = probe if re.fullmatch(wire.PROBE_ID_PATTERN, probe) else "dongnai-tanphu-01"
        kind = golden(golden_name)["kind"]
        corpus.append((name, TOPICS.result(topic_probe, kind), json.dumps(doc).encode()))
    ok = result("latency", probe="probe-a")
    good_topic = TOPICS.result("probe-a", "latency")
    big = dict(ok, reason="x" * wire.MAX_PAYLOAD_BYTES, status="failed")
    big.pop("data")
    dup = json.loads(json.dumps(ok))
    dup["data"]["targets"] *= 2
    corpus += [
        ("NaN", good_topic, encode(ok).replace(b'"loss_pct":5.0', b'"loss_pct":NaN')),
        ("Infinity", good_topic, encode(ok).replace(b'"loss_pct":5.0', b'"loss_pct":Infinity')),
        ("not json", good_topic, b"not json at all"),
        ("empty", good_topic, b""),
        ("binary", good_topic, b"\xff\xfe\x00\x01"),
        ("array", good_topic, b"[1, 2, 3]"),
        ("null", good_topic, b"null"),
        ("truncated", good_topic, encode(ok)[:-10]),
        ("oversized", good_topic, encode(big)),
        ("forged probe", TOPICS.result("probe-b", "latency"), encode(ok)),
        ("kind mismatch", TOPICS.result("probe-a", "service"), encode(ok)),
        ("duplicate rows", good_topic, encode(dup)),
        ("status topic", TOPICS.channel("probe-a", "status"), encode(ok)),
        ("unknown kind topic", "probefleet/v1/probe-a/results/speed", encode(ok)),
        ("other root", "elsewhere/v1/probe-a/results/latency", encode(ok)),
        ("uppercase probe topic", "probefleet/v1/Probe-A/results/latency", encode(ok)),
        # Parsers recurse per level: refused before any parser sees them (they crashed the
        # collector in a loop: the broker redelivered the message at every restart).
        ("nested 1000 deep", good_topic, b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}"),
        ("unclosed 60000 deep", good_topic, b"[" * 60_000),
        ("nested behind a valid claim", good_topic, _deep_behind_a_claim(ok)),
        # Python's `$` matches before a final newline: "eth0\n" became a tag.
        ("interface with a newline", good_topic, encode(dict(ok, interface="eth0\n"))),
        ("boot id with a newline", good_topic, encode(dict(ok, boot_id=ok["boot_id"] + "\n"))),
        ("two targets one once sanitised", good_topic, _sanitised_twins(ok)),
    ]
    return corpus


def _deep_behind_a_claim(ok: dict[str, Any]) -> bytes:
    head = {"schema": 1, "kind": "latency", "probe_id": ok["probe_id"], "seq": ok["seq"]}
    return encode(head)[:-1] + b', "x":' + b"[" * 5000 + b"]" * 5000 + b"}"


def _sanitised_twins(ok: dict[str, Any]) -> bytes:
    """Two targets that differ only in a control character: one point once sanitised."""
    doc = json.loads(json.dumps(ok))
    first = doc["data"]["targets"][0]
    doc["data"]["targets"] = [dict(first, target="a\u0000b"), dict(first, target="a\tb")]
    return encode(doc)


HOSTILE_CORPUS = _hostile_corpus()


def test_a_health_result_naming_an_interface_keeps_its_summary_apart() -> None:
    doc = result("health", probe="probe-a")
    doc["interface"] = doc["data"]["interfaces"][0]["interface"]
    parsed = parse(TOPICS.result("probe-a", "health"), encode(doc), TOPICS)
    points = points_from(parsed.result, parsed.probe, Enrichment())
    summary = [p for p in points if p.field("cpu_pct") is not None]
    assert len(summary) == 1
    assert summary[0].tag("interface") is None
    assert len(points) == 1 + len(doc["data"]["interfaces"])


def test_the_hostile_corpus_is_big_enough() -> None:
    assert len(HOSTILE_CORPUS) >= 50


@pytest.mark.parametrize(
    ("topic", "payload"), [c[1:] for c in HOSTILE_CORPUS], ids=[c[0] for c in HOSTILE_CORPUS]
)
def test_hostile_message_is_rejected_with_a_reason(topic: str, payload: bytes) -> None:
    _reject(topic, payload)


# -- fuzzing ---------------------------------------------------------------------------------


def _split(text: str, sep: str, *, quotes: bool = False) -> list[str]:
    """Split at ``sep`` outside backslash escapes (and double quotes: the field section)."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if ch == '"' and quotes:
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    return [*parts, current]


def _unescape(text: str) -> str:
    return re.sub(r"\\([ ,=\"\\])", r"\1", text)


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """A small line-protocol reader, to check that what we write reads back the same."""
    head, *rest = _split(line, " ")  # the head has no quoting: quotes in tags are literal
    body, stamp = " ".join(rest).rsplit(" ", 1)
    measurement, *tags = _split(head, ",")
    tag_map = {_unescape(k): _unescape(v) for k, v in (_split(t, "=") for t in tags)}
    fields = {}
    for item in _split(body, ",", quotes=True):
        key, value = _split(item, "=", quotes=True)
        fields[_unescape(key)] = value
    return _unescape(measurement), tag_map, fields, int(stamp)


def _check_points(points: list[Point], kind: str) -> None:
    assert points
    for point in points:
        assert point.measurement == kind
        assert dict(point.tags)["probe"] == "probe-a"
        line = point.line()
        assert "\n" not in line
        measurement, tags, fields, stamp = parse_line(line)
        assert (measurement, stamp) == (point.measurement, point.time_ns)
        clean = {k: re.sub(r"[\x00-\x1f\x7f\\\\]", "\ufffd", v) for k, v in point.tags}
        assert tags == clean
        assert list(fields) == [k for k, _ in point.fields]


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(kinds.names()),
    path=st.sampled_from(["seq", "data", "clock", "measured_at", "probe_id", "detail", "status",
                          "interface", "access", "reason", "clock.uptime_s"]),
    value=json_values,
)  # fmt: skip
@pytest.mark.slow  # > 1 s: the full suite runs it
def test_fuzzed_results_are_points_or_rejections(kind: str, path: str, value: Any) -> None:
    doc = _set(result(kind, probe="probe-a"), path, value)
    try:
        parsed = parse(TOPICS.result("probe-a", kind), json.dumps(doc).encode(), TOPICS)
        points = points_from(parsed.result, parsed.probe, ENRICHMENT)
    except Rejected as exc:
        error = exc
    else:
        _check_points(points, kind)
        return
    assert error.field
    assert error.reason


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(min_size=1, max_size=40),
    where=st.sampled_from(["interface_name", "server_name", "target", "detail"]),
)
def test_fuzzed_strings_never_break_a_line(text: str, where: str) -> None:
    kind = {"server_name": "throughput", "target": "latency", "detail": "ipv6"}.get(where, "dns")
    doc = result(kind, probe="probe-a")
    if where == "server_name":
        doc["data"]["server_name"] = text
    elif where == "target":
        doc["data"]["targets"][0]["target"] = text
    elif where == "detail":
        doc["data"]["checks"][0]["detail"] = text
    else:
        doc["data"]["queries"][0]["name"] = text
    try:
        parsed = parse(TOPICS.result("probe-a", kind), json.dumps(doc).encode(), TOPICS)
        points = points_from(parsed.result, parsed.probe, ENRICHMENT)
    except Rejected:
        return
    _check_points(points, kind)


@settings(max_examples=200, deadline=None)
@given(topic=st.text(max_size=60), payload=st.binary(max_size=200))
def test_fuzzed_topics_and_bytes_only_reject(topic: str, payload: bytes) -> None:
    with pytest.raises(Rejected) as caught:
        parse(topic, payload, TOPICS)
    assert caught.value.field
    assert caught.value.reason
