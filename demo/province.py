"""The simulated province: its communes, and the inventory and agent configs generated for them.

Each commune is one probe on one shaped link. The shaping rate is set a little above the
nominal line speed where the plan's verdict must be unambiguous: tbf counts Ethernet/IP/TCP
headers against the rate, so a 150 Mbit/s tbf yields ~143 Mbit/s of HTTP goodput and would
read "not met" on a line sold as 150.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROVINCE = "Đồng Nai"
TOPIC_ROOT = "probefleet/v1"
# Seconds between runs. Throughput every minute is far more than a real fleet does (hourly
# or at peak hours): the demo wants a first result per commune within about a minute.
THROUGHPUT_INTERVAL_S = 60
LIGHT_INTERVAL_S = 30  # latency, service, ipv6
HEALTH_INTERVAL_S = 15
RADIO_INTERVAL_S = 20  # the radio kind reads the modem (no data use): 5 min on a real probe


@dataclass(frozen=True)
class Commune:
    probe: str
    commune: str
    district: str
    operator: str
    access: str  # "fixed" | "mobile"
    nominal_mbit: float  # what the line is sold as / what the demo simulates
    shaped_mbit: float  # the tbf rate on its link
    ipv6: bool = True
    # Seconds after which the demo kills its agent with SIGKILL (a power cut): the broker
    # then publishes its Last Will and the collector marks it offline. None = stays up.
    offline_after_s: float | None = None
    # A simulated modem behind its mobile interface (demo.modem): its results carry the
    # radio context and it runs the `radio` measurement. Without one, radio is off.
    modem: bool = False
    lat: float = 0.0
    lon: float = 0.0

    @property
    def interface(self) -> str:
        # The name a real probe would see: the 4G modem is wwan0, the fixed line eth0.
        return "wwan0" if self.access == "mobile" else "eth0"

    @property
    def target_mbit(self) -> float:
        return 60.0 if self.access == "mobile" else 150.0

    @property
    def expected_met(self) -> bool:
        """The verdict the plan's download target should give this line."""
        return self.nominal_mbit >= self.target_mbit


# Communes with their district as it stood before the 2025 reorganisation (the inventory
# keeps it optional), one per district so the report's levels differ.
COMMUNES: tuple[Commune, ...] = (
    Commune(
        "dongnai-phulam-01", "Phú Lâm", "Tân Phú", "Viettel", "mobile",
        nominal_mbit=40, shaped_mbit=40, modem=True, lat=11.2690, lon=107.4370,
    ),
    Commune(
        "dongnai-tanhiep-01", "Tân Hiệp", "Biên Hòa", "VNPT", "fixed",
        nominal_mbit=150, shaped_mbit=165, lat=10.9610, lon=106.8660,
    ),
    Commune(
        "dongnai-anphuoc-01", "An Phước", "Long Thành", "FPT", "fixed",
        nominal_mbit=300, shaped_mbit=300, lat=10.8460, lon=106.9450,
    ),
    Commune(
        "dongnai-langa-01", "La Ngà", "Định Quán", "Viettel", "fixed",
        nominal_mbit=100, shaped_mbit=100, ipv6=False, lat=11.1560, lon=107.2480,
    ),
    Commune(
        "dongnai-xuanhung-01", "Xuân Hưng", "Xuân Lộc", "MobiFone", "mobile",
        nominal_mbit=80, shaped_mbit=88, offline_after_s=150.0, lat=10.8480, lon=107.5220,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Services:
    """Where the province's central services are, as the probes reach them."""

    mqtt_host: str
    mqtt_port: int
    http_host: str  # the test server (nginx): large file, upload sink, /empty
    http_host_v6: str | None
    http_port: int


def _toml_value(value: Any) -> str:
    # JSON strings, numbers, booleans and lists of them are valid TOML (json escapes are
    # TOML's basic-string escapes); ensure_ascii=False keeps Vietnamese names readable.
    return json.dumps(value, ensure_ascii=False)


def toml_tables(tables: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """TOML text from (header, key/values) pairs; a header in [[...]] is an array entry."""
    lines: list[str] = []
    for header, values in tables:
        lines.append(header if header.startswith("[") else f"[{header}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def inventory_toml(communes: Iterable[Commune], interface_of: Mapping[str, str]) -> str:
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for c in communes:
        tables.append(
            (
                f'probes."{c.probe}"',
                {
                    "commune": c.commune,
                    "district": c.district,
                    "province": PROVINCE,
                    "lat": c.lat,
                    "lon": c.lon,
                },
            )
        )
        tables.append(
            (
                f'probes."{c.probe}".interfaces."{interface_of[c.probe]}"',
                {"operator": c.operator, "access": c.access},
            )
        )
    head = "# generated by demo/province.py: the simulated communes of the demo\n\n"
    return head + toml_tables(tables)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def agent_toml(
    c: Commune,
    services: Services,
    *,
    state_dir: Path,
    interface: str,
    source_address: str = "",
    max_bytes: int = 0,
    radio_bus: str | None = None,
) -> str:
    """A `probe-agent run` config for commune ``c``: plain MQTT to the demo's broker, every
    test against the demo's own servers (nothing leaves the machine). ``radio_bus``: the
    D-Bus address of its simulated modem's ModemManager (demo.modem); None: radio off, so
    that no agent of the demo reads the machine's own system bus."""
    base = f"http://{_url_host(services.http_host)}:{services.http_port}"
    v6 = services.http_host_v6 if c.ipv6 else None
    ip_versions = [4, 6] if v6 else [4]
    tables: list[tuple[str, Mapping[str, Any]]] = [
        ("probe", {"id": c.probe, "state_dir": str(state_dir)}),
        (
            "mqtt",
            {
                "host": services.mqtt_host,
                "port": services.mqtt_port,
                "tls": False,
                "topic_root": TOPIC_ROOT,
                "keepalive_s": 5,  # a killed probe's Last Will goes out within ~8 s
            },
        ),
        (
            "[[interfaces]]",
            {
                "name": interface,
                "access": c.access,
                "monthly_budget_mb": 0,
                "source_address": source_address,
            },
        ),
        (
            "measurements.throughput",
            {
                "enabled": True,
                "interval_s": THROUGHPUT_INTERVAL_S,
                "mode": "http",
                "download_url": f"{base}/files/large.bin",
                "upload_url": f"{base}/upload",
                "ping_url": f"{base}/empty",
                "streams_download": 4,
                "streams_upload": 3,
                "duration_s": 4.0,
                "grace_download_s": 1.0,
                "grace_upload_s": 1.0,
                # Unshaped bridges may never look steady within 5 %: keep the demo's pace.
                "warmup_max_s": 2.0,
                "ip_version": 4,
                "max_bytes": max_bytes,
            },
        ),
        ("measurements.ookla", {"enabled": False}),
        (
            "measurements.latency",
            {
                "enabled": True,
                "interval_s": LIGHT_INTERVAL_S,
                "ip_versions": ip_versions,
                "count": 5,
                "probe_interval_s": 0.2,
                "max_duration_s": 10.0,
            },
        ),
        (
            "[[measurements.latency.targets]]",
            {"host": services.http_host, "method": "icmp", "port": 0, "ip_version": 4},
        ),
        (
            "[[measurements.latency.targets]]",
            {
                "host": services.http_host,
                "method": "tcp",
                "port": services.http_port,
                "ip_version": 4,
            },
        ),
    ]
    if v6:
        tables.append(
            (
                "[[measurements.latency.targets]]",
                {"host": v6, "method": "icmp", "port": 0, "ip_version": 6},
            )
        )
    # DNS needs a resolver: the demo runs none (nothing may be asked outside the machine).
    tables.append(("measurements.dns", {"enabled": False}))
    tables.append(
        (
            "measurements.ipv6",
            {
                "enabled": True,
                "interval_s": LIGHT_INTERVAL_S,
                "connects": 2,
                "timeout_s": 2.0,
                "max_duration_s": 10.0,
            },
        )
    )
    tables.append(
        (
            "[[measurements.ipv6.targets]]",
            {
                "url": f"http://portal.dongnai.demo:{services.http_port}/empty",
                "v4": services.http_host,
                "v6": services.http_host_v6 or "",
            },
        )
    )
    tables.append(("measurements.service", {"enabled": True, "interval_s": LIGHT_INTERVAL_S}))
    tables.append(
        (
            "[[measurements.service.checks]]",
            {"name": "portal", "target": f"{base}/empty", "protocol": "http", "timeout_s": 5.0},
        )
    )
    tables.append(
        (
            "[[measurements.service.checks]]",
            {
                "name": "mqtt",
                "target": f"{_url_host(services.mqtt_host)}:{services.mqtt_port}",
                "protocol": "tcp",
                "timeout_s": 5.0,
            },
        )
    )
    tables.append(
        (
            "measurements.health",
            {"enabled": True, "interval_s": HEALTH_INTERVAL_S, "disk_path": str(state_dir)},
        )
    )
    if radio_bus is not None:
        tables.append(("measurements.radio", {"enabled": True, "interval_s": RADIO_INTERVAL_S}))
    else:
        tables.append(("measurements.radio", {"enabled": False}))
    tables.append(
        (
            "schedule",
            {
                "jitter_s": 0,
                "misfire_grace_s": 60,
                "heavy_wait_s": 60,
                # The demo decides this from the host's kernel (see demo.clockhook).
                "require_synced_clock": False,
            },
        )
    )
    # The busy-line gate would see the other simulated communes' tests on the same CPUs.
    tables.append(("gate", {"enabled": False}))
    tables.append(("spool", {"retry_s": 2.0, "ack_timeout_s": 60.0}))
    if radio_bus is not None:
        # The modem refreshes its RSRP/RSRQ/SNR every 5 s: each read sees a new figure.
        tables.append(("radio", {"attach": True, "bus": radio_bus, "signal_rate_s": 5}))
    else:
        tables.append(("radio", {"attach": False}))
    tables.append(("log", {"level": "INFO"}))
    head = f"# generated by demo/province.py for {c.commune} ({c.probe})\n\n"
    return head + toml_tables(tables)


def alerts_toml(offline_for_s: float) -> str:
    """Alert rules for `probe-collector run` (files.alerts; config/alerts.sample.toml has
    the production defaults). Tuned to a demo that lasts minutes: a download below the
    target alerts at its first test, a silent probe after ``offline_for_s``."""
    rules: list[tuple[str, Mapping[str, Any]]] = [
        (
            "rules.download_below_target",
            {
                "measurement": "throughput",
                "field": "download_mbps",
                "op": "below",
                "target": "download_mbps",
                "count": 1,
                "clear_count": 1,
                "summary": "download below the plan's target",
            },
        ),
        (
            "rules.ipv6_lost",
            {
                "measurement": "ipv6",
                "field": "works_01",
                "op": "below",
                "threshold": 1.0,
                "count": 2,
                "summary": "IPv6 does not work end to end",
            },
        ),
        (
            "rules.probe_offline",
            {
                "measurement": "presence",
                "field": "online_01",
                "op": "below",
                "threshold": 1.0,
                "count": 1,
                "clear_count": 1,
                "for_s": offline_for_s,
                "severity": "critical",
                "group_by": ["probe"],
                "summary": "probe offline",
            },
        ),
        # The simulated modem's 3G minute (demo.modem: 7 min into every 10) is a fallback
        # alert after 30 s, not the production 30 min.
        (
            "rules.radio_fallback",
            {
                "measurement": "radio",
                "field": "below_4g_01",
                "op": "above",
                "threshold": 0.5,
                "count": 1,
                "clear_count": 1,
                "for_s": 30.0,
                "summary": "mobile fallback below 4G (2G/3G) at {commune} ({operator})",
            },
        ),
        # Notifications stay on this machine: retained MQTT messages on the demo's broker.
        ("notify.mqtt", {"enabled": True}),
    ]
    return "# generated by demo/province.py: alert rules for a demo of minutes\n\n" + toml_tables(
        rules
    )


def collector_toml(
    *,
    mqtt_host: str,
    mqtt_port: int,
    influx_url: str,
    bucket: str,
    inventory: Path,
    targets: Path,
    state_dir: Path,
    alerts: Path | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    files = {"inventory": str(inventory), "targets": str(targets), "state_dir": str(state_dir)}
    if alerts is not None:
        files["alerts"] = str(alerts)
    tables: list[tuple[str, Mapping[str, Any]]] = [
        (
            "mqtt",
            {
                "host": mqtt_host,
                "port": mqtt_port,
                "tls": False,
                "topic_root": TOPIC_ROOT,
                "client_id": "probefleet-demo-collector",
                "keepalive_s": 10,
            },
        ),
        (
            "influxdb",
            {
                "url": influx_url,
                "bucket": bucket,
                # InfluxDB 1.x behind the v2 write front takes "user:password" tokens.
                "token": "demo:demo",
                "batch_max_latency_ms": 200,
                "spool_after_s": 5.0,
            },
        ),
        ("files", files),
        ("sequences", {"resend_grace_s": 10.0, "resend_interval_s": 20.0}),
        ("log", {"level": "INFO"}),
    ]
    for name, values in (extra or {}).items():
        tables.append((name, values))
    return "# generated by demo/province.py\n\n" + toml_tables(tables)
