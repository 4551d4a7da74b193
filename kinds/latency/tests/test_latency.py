"""The `latency` measurement: statistics by hand, config rules, ICMP and TCP against loopback,
targets that never answer (on loopback and in namespaces), bounded time, link binding and
`probe-agent measure latency`."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # untyped; types-jsonschema is not locked
import pytest
from hypothesis import given
from hypothesis import strategies as st
from probefleet.core import configkit, wire
from probefleet.kinds.base import Link
from probefleet.kinds.errors import MeasurementError
from probefleet.kinds.latency import probe as _latency_probe
from probefleet.kinds.latency.measure import Latency, LatencyConfig
from probefleet.kinds.latency.payload import LatencyData, LatencyResult, LatencyTarget
from probefleet.kinds.latency.stats import jitter, percentile, summarise

from tests.harness.netns import NetnsPair, netns_unavailable

ROOT = Path(__file__).resolve().parents[3]
PROBE_AGENT = Path(sys.executable).with_name("probe-agent")


def _cfg(targets: list[dict[str, Any]], **options: Any) -> LatencyConfig:
    options.setdefault("count", 5)
    options.setdefault("probe_interval_s", 0.02)
    options.setdefault("timeout_s", 0.5)
    return configkit.build({"targets": targets, **options}, LatencyConfig)


def _icmp_or_skip() -> None:
    try:
        _latency_probe.icmp_mode()
    except MeasurementError as exc:
        pytest.skip(f"no ICMP here: {exc.reason}")


@pytest.fixture
def listener() -> Iterator[int]:
    """A real listening TCP socket on 127.0.0.1 (the kernel completes the handshakes)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connects are refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A listener whose accept queue is full: Linux drops further SYNs, so connects time out,
    like a host behind a firewall that drops instead of refusing."""
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)  # room for one pending connection
        port = server.getsockname()[1]
        filler.connect(("127.0.0.1", port))  # ... taken, and never accepted
        yield port


# --- statistics (hand-computed) ------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 11.0, 12.0, 15.0]
    # rank = (n - 1) * p / 100: p50 -> 1.5 -> 11.5; p95 -> 2.85 -> 12 + 0.85 * 3 = 14.55.
    assert percentile(values, 50) == 11.5
    assert percentile(values, 95) == pytest.approx(14.55)
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 15.0
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@given(st.lists(st.floats(0, 10_000, allow_nan=False), min_size=2, max_size=60))
def test_percentile_is_the_inclusive_quantile(values: list[float]) -> None:
    ordered = sorted(values)
    expected = statistics.quantiles(values, n=20, method="inclusive")[18]
    assert percentile(ordered, 95) == pytest.approx(expected, abs=1e-9)
    assert ordered[0] <= percentile(ordered, 95) <= ordered[-1]


def test_jitter_is_the_mean_absolute_difference_of_consecutive_rtts() -> None:
    # |12-10| + |11-12| + |15-11| = 2 + 1 + 4 = 7, over 3 differences.
    assert jitter([10.0, 12.0, 11.0, 15.0]) == pytest.approx(7 / 3)
    assert jitter([5.0, 5.0]) == 0.0
    assert jitter([5.0]) is None
    assert jitter([]) is None


def test_summary_of_a_series_with_losses() -> None:
    s = summarise([10.0, None, 12.0, 11.0, None, 15.0])
    assert (s.sent, s.received, s.loss_pct) == (6, 4, 33.333)
    assert (s.min_ms, s.avg_ms, s.median_ms, s.max_ms) == (10.0, 12.0, 11.5, 15.0)
    assert s.p95_ms == 14.55
    assert s.jitter_ms == 2.333  # lost probes are skipped, not counted as a zero


def test_summary_of_nothing_back() -> None:
    s = summarise([None, None, None])
    assert (s.sent, s.received, s.loss_pct) == (3, 0, 100.0)
    assert (s.min_ms, s.avg_ms, s.median_ms, s.p95_ms, s.max_ms, s.jitter_ms) == (None,) * 6
    one = summarise([None, 4.0])
    assert (one.loss_pct, one.min_ms, one.p95_ms, one.max_ms, one.jitter_ms) == (
        50.0,
        4.0,
        4.0,
        4.0,
        None,
    )


def test_series_paces_probes_and_stops_before_the_deadline() -> None:
    sent_at: list[float] = []

    def prober(seq: int, timeout_s: float) -> float | None:
        sent_at.append(time.monotonic())
        return 1.0

    started = time.monotonic()
    samples = _latency_probe.series(
        prober, count=100, interval_s=0.05, timeout_s=0.1, deadline=started + 0.525
    )
    # Probe k starts at 0.05 k and needs 0.1 s: k <= 8 fit in 0.525 s.
    assert samples == [1.0] * 9
    # Paced on an absolute schedule: never early, although after a late probe (a loaded
    # machine) the next gap is shorter while it catches up.
    early = [k for k, t in enumerate(sent_at) if t - started < 0.05 * k - 0.002]
    assert not early, [round(t - started, 4) for t in sent_at]
    assert time.monotonic() - started < 0.525


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "options", "problem"),
    [
        ([{"host": "a.test", "method": "tcp"}], {}, "targets[0].port = 0: a tcp target needs"),
        ([{"host": "a.test", "port": 80}], {}, "targets[0].port = 80: only tcp targets"),
        ([{"host": "a b"}], {}, "targets[0].host = 'a b': not a host name or IP"),
        ([{"host": "::1", "ip_version": 4}], {}, "targets[0].ip_version = 4: ::1 is an IPv6"),
        ([{"host": "a.test"}, {"host": "A.test"}], {}, "targets[1]: the same as targets[0]"),
        ([{"host": "a.test"}], {"ip_versions": [6, 6]}, "ip_versions = [6, 6]: list each"),
        ([{"host": "a.test"}], {"timeout_s": 5, "max_duration_s": 2}, "timeout_s = 5: longer"),
    ],
)
def test_constructor_names_the_key(
    targets: list[dict[str, Any]], options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=r"measurements\.latency\.") as caught:
        Latency(_cfg(targets, **options))
    assert problem in str(caught.value)


def test_types_are_checked_by_the_config_loader() -> None:
    data = {"targets": [{"host": "a.test", "method": "udp", "ip_version": 5}], "count": 0}
    problems = configkit.problems_in(data, LatencyConfig)
    assert [(k, why) for k, _, why in problems] == [
        ("targets[0].method", "expected one of 'icmp', 'tcp'"),
        ("targets[0].ip_version", "expected one of 0, 4, 6"),
        ("count", "must be >= 1"),
    ]


def test_defaults_are_valid_and_never_used_by_tests() -> None:
    cfg = LatencyConfig()
    assert cfg.ip_versions == [4, 6]
    assert all(t.host.endswith(".vn") for t in cfg.targets)
    Latency(cfg)  # valid; never run here: its targets are on the Internet


# --- loopback ------------------------------------------------------------------------------


def _ordered(t: LatencyTarget) -> None:
    """The statistics of a target with replies are consistent with each other."""
    assert t.rtt_min_ms is not None
    assert t.rtt_median_ms is not None
    assert t.rtt_p95_ms is not None
    assert t.rtt_max_ms is not None
    assert t.rtt_avg_ms is not None
    assert 0 < t.rtt_min_ms <= t.rtt_median_ms <= t.rtt_p95_ms <= t.rtt_max_ms < 500
    assert t.rtt_min_ms <= t.rtt_avg_ms <= t.rtt_max_ms
    assert t.jitter_ms is not None
    assert t.jitter_ms <= t.rtt_max_ms - t.rtt_min_ms


def test_icmp_to_loopback_v4_and_v6() -> None:
    _icmp_or_skip()
    data = Latency(_cfg([{"host": "127.0.0.1"}, {"host": "::1"}])).run(Link())
    v4, v6 = data.targets  # a literal resolves over its own version only
    assert (v4.target, v4.method, v4.address, v4.ip_version, v4.port) == (
        "127.0.0.1",
        "icmp",
        "127.0.0.1",
        4,
        None,
    )
    assert (v6.target, v6.address, v6.ip_version) == ("::1", "::1", 6)
    for t in data.targets:
        assert (t.sent, t.received, t.loss_pct) == (5, 5, 0.0)
        _ordered(t)


def test_tcp_connect_to_a_listener_and_to_a_closed_port(listener: int, closed_port: int) -> None:
    targets = [
        {"host": "127.0.0.1", "method": "tcp", "port": listener},
        {"host": "127.0.0.1", "method": "tcp", "port": closed_port},
    ]
    started = time.monotonic()
    data = Latency(_cfg(targets, timeout_s=2.0)).run(Link())
    up, closed = data.targets
    assert (up.port, up.sent, up.received, up.loss_pct) == (listener, 5, 5, 0.0)
    _ordered(up)
    assert (closed.port, closed.sent, closed.received, closed.loss_pct) == (
        closed_port,
        5,
        0,
        100.0,
    )
    assert closed.rtt_min_ms is None
    assert closed.jitter_ms is None
    assert time.monotonic() - started < 1.0  # refused at once: no timeout waited


def test_a_target_that_drops_syns_is_lost_within_its_timeouts(black_hole: int) -> None:
    cfg = _cfg([{"host": "127.0.0.1", "method": "tcp", "port": black_hole}], timeout_s=0.2)
    started = time.monotonic()
    (target,) = Latency(cfg).run(Link()).targets
    elapsed = time.monotonic() - started
    assert (target.sent, target.received, target.loss_pct) == (5, 0, 100.0)
    assert 5 * 0.2 <= elapsed < 5 * 0.2 + 0.5


def test_max_duration_bounds_the_run_and_counts_only_probes_sent(
    black_hole: int, listener: int
) -> None:
    targets = [
        {"host": "127.0.0.1", "method": "tcp", "port": black_hole},
        {"host": "127.0.0.1", "method": "tcp", "port": listener},
    ]
    cfg = _cfg(targets, count=100, probe_interval_s=0.01, timeout_s=0.3, max_duration_s=1.0)
    started = time.monotonic()
    dead, alive = Latency(cfg).run(Link()).targets
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.2
    assert (dead.sent, dead.received, dead.loss_pct) == (3, 0, 100.0)  # 3 x 0.3 s fit in 1 s
    # Series run side by side: the dead one did not eat the live one's time.
    assert 30 <= alive.sent < 100
    assert alive.received == alive.sent


def test_unresolved_name_is_one_entry_with_nothing_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the seam: name lookups (which would ask a real resolver) fail for one name."""
    from probefleet.kinds.common import net

    real = net.resolve

    def resolve(host: str, port: int, ip_version: net.IpPreference = 0) -> Any:
        if host == "gone.test":
            raise MeasurementError(f"cannot resolve {host!r}")
        return real(host, port, ip_version)

    monkeypatch.setattr(net, "resolve", resolve)
    targets: list[dict[str, Any]] = [
        {"host": "gone.test", "method": "tcp", "port": 80},
        {"host": "gone.test"},
    ]
    data = Latency(_cfg(targets, ip_versions=[6])).run(Link())
    tcp, icmp = data.targets
    assert (tcp.address, tcp.ip_version, tcp.port, tcp.sent, tcp.loss_pct) == (
        None,
        6,
        80,
        0,
        100.0,
    )
    assert (icmp.method, icmp.sent, icmp.received) == ("icmp", 0, 0)


def test_bound_links(listener: int) -> None:
    _icmp_or_skip()
    targets: list[dict[str, Any]] = [
        {"host": "127.0.0.1"},
        {"host": "::1"},
        {"host": "127.0.0.1", "method": "tcp", "port": listener},
    ]
    latency = Latency(_cfg(targets, count=2))
    for link in (Link(interface="lo"), Link(source_address="127.0.0.1"), Link("lo", "fixed")):
        data = latency.run(link)
        assert [t.received for t in data.targets] == [2, 2, 2], link
    # A link that cannot be bound is a failed run, not 100 % loss.
    with pytest.raises(MeasurementError, match="pf-nosuch0"):
        latency.run(Link(interface="pf-nosuch0"))
    with pytest.raises(MeasurementError, match=r"192\.0\.2\.7"):
        latency.run(Link(source_address="192.0.2.7"))


# --- probe-agent measure latency -----------------------------------------------------------


def _agent_toml(tmp_path: Path, latency_table: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[probe]\nid = "test-latency"\nstate_dir = "{tmp_path}"\n'
        f'[log]\nlevel = "DEBUG"\n[measurements.latency]\n{latency_table}\n',
        encoding="utf-8",
    )
    return path


def _check_result(stdout: str) -> LatencyData:
    payload = json.loads(stdout)
    schema = json.loads((ROOT / "schema" / "result.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(payload)
    result = wire.decode_result(stdout)
    assert isinstance(result, LatencyResult)
    assert result.status == "ok", result.reason
    assert result.data is not None
    return result.data


def test_probe_agent_measure_latency_prints_a_valid_result(
    tmp_path: Path, listener: int, closed_port: int
) -> None:
    _icmp_or_skip()
    config = _agent_toml(
        tmp_path,
        "count = 3\nprobe_interval_s = 0.05\ntimeout_s = 0.5\n"
        '[[measurements.latency.targets]]\nhost = "127.0.0.1"\n'
        '[[measurements.latency.targets]]\nhost = "::1"\n'
        '[[measurements.latency.targets]]\nhost = "127.0.0.1"\nmethod = "tcp"\n'
        f"port = {listener}\n"
        '[[measurements.latency.targets]]\nhost = "127.0.0.1"\nmethod = "tcp"\n'
        f"port = {closed_port}\n",
    )
    proc = subprocess.run(
        [str(PROBE_AGENT), "measure", "latency", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = _check_result(proc.stdout)
    rows = [(t.target, t.method, t.ip_version, t.port, t.received) for t in data.targets]
    assert rows == [
        ("127.0.0.1", "icmp", 4, None, 3),
        ("::1", "icmp", 6, None, 3),
        ("127.0.0.1", "tcp", 4, listener, 3),
        ("127.0.0.1", "tcp", 4, closed_port, 0),
    ]
    assert "ICMP echo through raw (CAP_NET_RAW) sockets" in proc.stderr or os.geteuid() != 0


@pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace needs root")
def test_a_dual_stack_name_is_measured_over_each_version(tmp_path: Path, listener: int) -> None:
    """Names from a hosts file bind-mounted in a private mount namespace: no DNS is asked
    (nsswitch says files only), and the host's /etc stays untouched."""
    _icmp_or_skip()
    (tmp_path / "hosts").write_text("127.0.0.1 dual.test v4.test\n::1 dual.test\n")
    (tmp_path / "nsswitch.conf").write_text("hosts: files\n")
    config = _agent_toml(
        tmp_path,
        "count = 2\nprobe_interval_s = 0.05\ntimeout_s = 0.5\n"
        '[[measurements.latency.targets]]\nhost = "dual.test"\n'
        '[[measurements.latency.targets]]\nhost = "v4.test"\n'
        f'[[measurements.latency.targets]]\nhost = "dual.test"\nmethod = "tcp"\nport = {listener}\n'
        "ip_version = 4\n"
        '[[measurements.latency.targets]]\nhost = "gone.test"\n',
    )
    script = (
        f"mount --bind {tmp_path / 'hosts'} /etc/hosts && "
        f"mount --bind {tmp_path / 'nsswitch.conf'} /etc/nsswitch.conf && "
        f'exec {PROBE_AGENT} measure latency --config "$1"'
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "mount" in proc.stderr and proc.returncode != 0 and not proc.stdout:
        pytest.skip(f"no private mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    data = _check_result(proc.stdout)
    rows = [(t.target, t.method, t.ip_version, t.address, t.sent, t.received) for t in data.targets]
    assert rows == [
        ("dual.test", "icmp", 4, "127.0.0.1", 2, 2),
        ("dual.test", "icmp", 6, "::1", 2, 2),
        ("v4.test", "icmp", 4, "127.0.0.1", 2, 2),  # no AAAA: no IPv6 entry
        ("dual.test", "tcp", 4, "127.0.0.1", 2, 2),  # ip_version = 4: IPv4 only
        ("gone.test", "icmp", None, None, 0, 0),  # resolves over neither version
    ]


# --- targets that do not answer, in network namespaces -------------------------------------


@pytest.mark.netns
def test_silent_and_missing_hosts_in_a_namespace(tmp_path: Path) -> None:
    """ICMP over unprivileged ping sockets (allowed in the client namespace by its own
    ping_group_range) to a server that answers, then ignores echo (icmp_echo_ignore_all),
    and TCP to an address with no host behind it: loss, within bounded time."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    with NetnsPair("lat") as pair:
        assert pair.server_v4
        assert pair.server_v6
        pair.run(pair.client_ns, ["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"])
        config = _agent_toml(
            tmp_path,
            "count = 4\nprobe_interval_s = 0.05\ntimeout_s = 0.4\nmax_duration_s = 5\n"
            f'[[measurements.latency.targets]]\nhost = "{pair.server_v4}"\n'
            f'[[measurements.latency.targets]]\nhost = "{pair.server_v6}"\n'
            '[[measurements.latency.targets]]\nhost = "198.18.0.77"\nmethod = "tcp"\n'
            "port = 443\n",
        )
        argv = [str(PROBE_AGENT), "measure", "latency", "--config", str(config)]

        def measure() -> tuple[LatencyData, str, float]:
            started = time.monotonic()
            proc = pair.run(pair.client_ns, argv, check=False, timeout=30)
            assert proc.returncode == 0, proc.stderr
            return _check_result(proc.stdout), proc.stderr, time.monotonic() - started

        answered, log, _ = measure()
        assert "ICMP echo through unprivileged datagram sockets" in log
        assert [(t.address, t.received) for t in answered.targets] == [
            (pair.server_v4, 4),
            (pair.server_v6, 4),
            ("198.18.0.77", 0),
        ]
        for ignore in ("net.ipv4.icmp_echo_ignore_all=1", "net.ipv6.icmp.echo_ignore_all=1"):
            pair.run(pair.server_ns, ["sysctl", "-qw", ignore])
        silent, _, elapsed = measure()
        for t in silent.targets:
            assert (t.sent, t.received, t.loss_pct, t.rtt_avg_ms) == (4, 0, 100.0, None), t
        # Side by side, each 4 x 0.4 s; plus the CLI's start-up.
        assert elapsed < 4 * 0.4 + 2.5


def test_a_remote_target_resolving_to_loopback_fails_the_run_and_is_never_probed() -> None:
    from probefleet.kinds.common.destinations import Guard, Policy, guarded

    from tests.hostile.listener import CountingListener

    with CountingListener() as router:
        latency = Latency(configkit.build(
            {"targets": [{"host": "localhost", "method": "tcp", "port": router.port}],
             "count": 2, "timeout_s": 0.5, "max_duration_s": 5},
            LatencyConfig,
        ))  # fmt: skip
        with guarded(Guard(Policy(["localhost"]))), pytest.raises(MeasurementError) as failed:
            latency.run(Link())
        assert failed.value.reason.startswith("targets[0]: localhost: refused") or (
            "targets[0]: refused: localhost resolves to" in failed.value.reason
        ), failed.value.reason
        # The same target from the probe's own file (no guard) is measured.
        assert latency.run(Link()).targets[0].received == 2
    assert router.connections == 2
