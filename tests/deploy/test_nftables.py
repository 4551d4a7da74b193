"""deploy/central/nftables.conf: the rules load (twice: a reload replaces its own table only),
and in a network namespace in front of the real broker they cut a flood from one address
while another address still gets its CONNACK (issue 17: 1,100 idle sockets from one host
locked the probes out)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.central import CENTRAL, CentralBroker
from tests.harness.netns import NetnsPair, netns_unavailable

NFTABLES = CENTRAL / "nftables.conf"
NFT = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
PER_ADDRESS = 100  # nftables.conf: ct count over 100
SECOND_CLIENT = "198.18.0.3"


def nft_unavailable() -> str | None:
    if NFT is None:
        return "nft not installed (Debian package: nftables)"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "loading nftables rules in a private namespace needs root and unshare"
    return None


def test_the_rules_load_and_load_again_in_their_own_table() -> None:
    if reason := nft_unavailable():
        pytest.skip(reason)
    assert NFT is not None
    script = f"{NFT} -f {NFTABLES} && {NFT} -f {NFTABLES} && {NFT} list ruleset"
    done = subprocess.run(["unshare", "--net", "sh", "-c", script],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    ruleset = done.stdout
    assert ruleset.count("table ") == 1  # nothing else touched, nothing doubled
    assert f"ct count over {PER_ADDRESS}" in ruleset
    assert "tcp dport 8883 jump mqtt_probes" in ruleset
    assert "hook prerouting priority" in ruleset  # before Docker's DNAT
    assert "flush ruleset" not in NFTABLES.read_text()


# Run inside the client namespace: open COUNT sockets at once from one address, report how
# many completed their handshake; then a TLS CONNECT from the second address.
FLOOD = r"""
import json, select, socket, ssl, sys
server, port, count, other, ca = sys.argv[1:]
port, count = int(port), int(count)
socks = []
for _ in range(count):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((server, port))
    socks.append(s)
_, ready, _ = select.select([], socks, [], 3.0)
established = sum(1 for s in ready if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
context = ssl.create_default_context(cafile=ca)
raw = socket.create_connection((server, port), timeout=5, source_address=(other, 0))
tls = context.wrap_socket(raw, server_hostname="localhost")
tls.sendall(bytes.fromhex("101000044d5154540502003c000003616263"))
answer = tls.recv(16)
print(json.dumps({"established": established, "connack": answer.hex()}))
"""


@pytest.fixture
def netns_pair() -> Iterator[NetnsPair]:
    if reason := netns_unavailable() or nft_unavailable():
        pytest.skip(reason)
    with NetnsPair("nft", ipv6=False) as pair:
        address = ["addr", "add", f"{SECOND_CLIENT}/24", "dev", pair.client_if]
        subprocess.run(["ip", "-n", pair.client_ns, *address], check=True, capture_output=True,
                       timeout=20)  # fmt: skip
        yield pair


@pytest.mark.integration
def test_one_address_cannot_fill_the_probes_listener(
    netns_pair: NetnsPair, tmp_path: Path, certs: Path
) -> None:
    pair = netns_pair
    assert NFT is not None
    pair.run(pair.server_ns, [NFT, "-f", str(NFTABLES)])
    broker = CentralBroker(tmp_path / "broker", certs, netns=pair.server_ns, host="0.0.0.0")
    broker.start()
    try:
        done = pair.run(
            pair.client_ns,
            [sys.executable, "-c", FLOOD, str(pair.server_v4), "8883", str(PER_ADDRESS + 50),
             SECOND_CLIENT, str(certs / "ca.crt")],
            timeout=60,
        )  # fmt: skip
        outcome = json.loads(done.stdout)
        assert outcome["established"] == PER_ADDRESS, outcome
        assert outcome["connack"].startswith("20"), outcome  # the broker still answers others
        counters = pair.run(pair.server_ns, [NFT, "list", "chain", "inet", "probefleet",
                                             "mqtt_probes"]).stdout  # fmt: skip
        dropped = {rule.split(" counter ")[0].strip(): int(match.group(1))
                   for rule in counters.splitlines()
                   if (match := re.search(r"counter packets (\d+)", rule))}  # fmt: skip
        count_rule = next(k for k in dropped if "ip saddr ct count" in k)
        assert dropped.pop(count_rule) > 0, counters  # the open-connection rule cut it ...
        assert set(dropped.values()) == {0}, counters  # ... not the rate rules
    finally:
        broker.stop()
