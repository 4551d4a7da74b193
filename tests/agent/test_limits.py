"""What the centre may set (agent.limits through ConfigSource, no broker): every attack of
issue 17 item 9 refused naming its key and why; what the file sets itself never capped;
the shipped sample remote configs still accepted; [remote] the file's alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from probefleet.agent.config import NO_OVERLAY, RemoteSection
from probefleet.agent.fleet import REMOTE_FILE, ConfigSource, RemoteConfigError, parse_remote
from probefleet.agent.limits import spacing_s
from probefleet.core import configkit
from probefleet.kinds.throughput.measure import ThroughputConfig

LOCAL = """\
[probe]
id = "p-1"
state_dir = "{state}"
[measurements.throughput]
mode = "http"
download_url = "http://speed.dongnai.example/big"
upload_url = "http://speed.dongnai.example/up"
streams_download = 16
[measurements.service]
[[measurements.service.checks]]
name = "router"
target = "http://192.168.1.1/"
[remote]
{remote}
"""
# Everything public allowed: what is refused below is refused for being the LAN.
BROAD = 'allow_destinations = ["0.0.0.0/0", "::/0", "localhost", "*.example.org"]'


def source(tmp_path: Path, remote: str = BROAD) -> ConfigSource:
    path = tmp_path / "agent.toml"
    path.write_text(LOCAL.format(state=tmp_path / "state", remote=remote))
    return ConfigSource(path, env={})


def problems(src: ConfigSource, doc: dict[str, Any]) -> list[str]:
    with pytest.raises(configkit.ConfigError) as refused:
        src.build(doc)
    return refused.value.problems


def service(target: str) -> dict[str, Any]:
    return {"measurements": {"service": {"checks": [{"name": "x", "target": target}]}}}


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("http://127.0.0.1:8080/", "127.0.0.1 is loopback ([remote] allow_private = false)"),
        ("10.0.0.1:22", "10.0.0.1 is private ([remote] allow_private = false)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http://[::1]:80/", "::1 is loopback"),
        ("https://[fd12::1]/", "fd12::1 is private (ULA)"),
        ("http://100.64.1.1/", "100.64.1.1 is shared (CGNAT)"),
        ("http://evil.example/", "evil.example is not in [remote] allow_destinations"),
    ],
)
def test_service_checks_at_the_office_lan_are_refused_naming_the_key(
    tmp_path: Path, target: str, why: str
) -> None:
    (problem,) = problems(source(tmp_path), service(target))
    assert problem.startswith(f"measurements.service.checks[0].target = {target!r}: {why}")


def test_every_destination_kind_is_judged(tmp_path: Path) -> None:
    src = source(tmp_path)
    found = problems(
        src,
        {
            "measurements": {
                "throughput": {"upload_url": "http://10.1.1.1/up", "server_list": "/etc/shadow"},
                "latency": {"targets": [{"host": "192.168.0.1"}, {"host": "router.lan"}]},
                "dns": {"resolvers": ["system", "192.168.1.1", "[::1]:53"]},
                "ookla": {"servers_url": "http://127.0.0.1/"},
                "ipv6": {"targets": [{"url": "https://www.example.org/", "v4": "10.0.0.1"}]},
            }
        },
    )
    keys = [p.split(" = ")[0] for p in found]
    assert keys == [
        "measurements.dns.resolvers[1]",
        "measurements.dns.resolvers[2]",
        "measurements.ipv6.targets[0].v4",
        "measurements.latency.targets[0].host",
        "measurements.latency.targets[1].host",
        "measurements.ookla.servers_url",
        "measurements.throughput.server_list",
        "measurements.throughput.upload_url",
    ]
    assert "a file on the probe; only its own file may name one" in found[6]


def test_a_listed_name_is_accepted_and_its_runs_guarded(tmp_path: Path) -> None:
    cfg = source(tmp_path).build(service("http://localhost:8080/"))
    overlay = cfg.remote.overlay()
    assert overlay.kinds == {"service"}
    # The file's own hosts stay trusted: its router check is the operator's.
    assert overlay.guarded == {"service": frozenset({"192.168.1.1"})}
    # A change that names no new destination guards nothing.
    cfg = source(tmp_path).build({"measurements": {"service": {"interval_s": 600}}})
    assert cfg.remote.overlay().guarded == {}
    # The file alone: no overlay at all.
    assert source(tmp_path).build({}).remote.overlay() is NO_OVERLAY


def test_a_broad_network_does_not_open_private_ranges_a_listed_one_does(tmp_path: Path) -> None:
    assert problems(source(tmp_path), service("10.20.1.1:443"))
    opened = source(tmp_path, 'allow_destinations = ["10.20.0.0/16"]')
    assert opened.build(service("10.20.1.1:443")).remote.overlay().guarded
    anything = source(tmp_path, 'allow_destinations = ["0.0.0.0/0"]\nallow_private = true')
    anything.build(service("10.0.0.1:22"))


def test_the_weapon_settings_are_refused_each_named(tmp_path: Path) -> None:
    src = source(tmp_path)
    big = {"streams_download": 64, "streams_upload": 64, "duration_s": 120, "interval_s": 10}
    assert problems(src, {"measurements": {"throughput": big}}) == [
        "measurements.throughput.streams_download = 64: above [remote] max_streams = 8",
        "measurements.throughput.streams_upload = 64: above [remote] max_streams = 8",
        "measurements.throughput.duration_s = 120.0: above [remote] max_duration_s = 30 "
        "(128 s a direction with its longest warm-up)",
        "measurements.throughput.interval_s = 10: closer than [remote] min_interval_s = 900 s "
        "for a bandwidth test",
    ]
    (warm_up,) = problems(src, {"measurements": {"throughput": {"grace_upload_s": 30}}})
    assert warm_up.startswith("measurements.throughput.grace_upload_s = 30.0: above [remote] ")
    assert warm_up.endswith("(40 s a direction with its longest warm-up)")
    # The warm-up ends when the streams are steady, at warmup_max_s at the latest: the cap
    # is on that (issue 20), and the probe's trust in its servers is its own file's.
    (steady,) = problems(src, {"measurements": {"throughput": {"warmup_max_s": 30}}})
    assert steady.startswith("measurements.throughput.warmup_max_s = 30.0: above [remote] ")
    tls = [{"host": "speed.example.vn", "pin_sha256": "00" * 32}]
    assert problems(src, {"measurements": {"throughput": {"tls": tls}}}) == [
        "measurements.throughput.tls: only the probe's own file may set which certificates "
        "its throughput servers are trusted by (ca_file, pin_sha256)"
    ]
    (huge,) = problems(src, {"measurements": {"throughput": {"max_bytes": 10**15}}})
    assert huge.startswith("measurements.throughput.max_bytes = 1000000000000000: one run may")
    assert "more than [remote] max_monthly_mb = 100000 in a month" in huge
    (cron,) = problems(src, {"measurements": {"throughput": {"cron": "*/5 * * * *"}}})
    assert cron.startswith("measurements.throughput.cron = '*/5 * * * *': runs 300 s apart")
    (ookla,) = problems(src, {"measurements": {"ookla": {"enabled": True, "interval_s": 60}}})
    assert ookla.startswith("measurements.ookla.interval_s = 60: closer than")


def test_within_what_the_file_itself_sets_nothing_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        LOCAL.format(state=tmp_path / "state", remote="").replace(
            "streams_download = 16", "streams_download = 16\ninterval_s = 300"
        )
    )
    src = ConfigSource(path, env={})
    # The operator runs 16 streams every 5 minutes: the centre may keep or ease that.
    cfg = src.build({"measurements": {"throughput": {"streams_download": 12, "interval_s": 600}}})
    assert cfg.measurements.throughput.streams_download == 12
    problems(src, {"measurements": {"throughput": {"streams_download": 17}}})


@pytest.mark.parametrize(
    "doc",
    [
        {"measurements": {"latency": {"interval_s": 600}}},  # agent.fleet's docstring
        {"measurements": {"throughput": {"cron": "0 19-22 * * 1-5"}}},  # deploy/agent/README
        {"measurements": {"latency": {"interval_s": 1234}}, "gate": {"max_cpu_pct": 50.0}},
        {"measurements": {"throughput": {"streams_download": 8, "duration_s": 15}}},
        {"measurements": {"ookla": {"enabled": True}}},
        {"budget": {"reserve_mb": 600}, "schedule": {"jitter_s": 60}},
    ],
)
def test_the_shipped_sample_remote_configs_pass_the_default_limits(
    tmp_path: Path, doc: dict[str, Any]
) -> None:
    source(tmp_path, "").build(doc)


def test_remote_is_the_files_alone(tmp_path: Path) -> None:
    with pytest.raises(RemoteConfigError, match="remote: not changeable from the centre"):
        parse_remote(b'{"remote": {"allow_private": true}}')
    src = source(tmp_path)
    # Not even through the kept file in the state dir.
    (found,) = problems(src, {"remote": {"allow_private": True}})
    assert "remote: not changeable from the centre" in found
    state = tmp_path / "state"
    state.mkdir()
    (state / REMOTE_FILE).write_text(json.dumps(service("http://10.0.0.1/")))
    cfg = src.load()
    assert cfg.remote.overlay() is NO_OVERLAY  # the file alone
    assert src.error is not None
    assert "10.0.0.1 is private" in src.error


def test_a_bad_allow_list_entry_is_a_problem_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(LOCAL.format(state=tmp_path, remote='allow_destinations = ["http://x/"]'))
    with pytest.raises(configkit.ConfigError) as bad:
        ConfigSource(path, env={}).build({})
    assert bad.value.problems == [
        "remote.allow_destinations[0] = 'http://x/': expected a host name, *.domain, an "
        "address or a network"
    ]


@pytest.mark.parametrize(
    ("cron", "gap"),
    [
        ("0 19-22 * * 1-5", 3600.0),
        ("*/15 * * * *", 900.0),
        ("0 3 * * *", 86_400.0),
        ("0 3 1 1 *", float("inf")),  # once a year: never twice in a week
        ("0,1 * * * *", 60.0),
    ],
)
def test_the_spacing_of_a_cron_line(cron: str, gap: float) -> None:
    assert spacing_s(ThroughputConfig(cron=cron)) == gap


def test_the_default_limits_are_documented_values() -> None:
    limits = RemoteSection()
    assert (limits.max_streams, limits.max_duration_s, limits.min_interval_s) == (8, 30.0, 900)
    assert (limits.allow_destinations, limits.allow_private) == ([], False)
