#!/usr/bin/env bash
# `make dist` (scripts/dist.sh PYTHON OUT): a release folder for probes, what a technician
# copies to a USB stick. From it `sudo deploy/agent/install.sh --probe-id ...` installs the
# agent: its dependencies from agent.txt (the hashed lock), then these two wheels.
#   probefleet-V-py3-none-any.whl, probefleet_agent-V-py3-none-any.whl, agent.txt,
#   deploy/agent/ (install.sh, the systemd unit, README.md), config/agent.sample.toml
set -euo pipefail
python=${1:?usage: scripts/dist.sh PYTHON OUT}
out=${2:?usage: scripts/dist.sh PYTHON OUT}
repo=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$out"
"$repo/scripts/build-wheels.sh" "$python" "$out" . agent
cp "$repo/requirements/agent.txt" "$out/agent.txt"
mkdir -p "$out/deploy/agent" "$out/config"
cp -p "$repo/deploy/agent/install.sh" "$repo/deploy/agent/probefleet-agent.service" \
    "$repo/deploy/agent/README.md" "$out/deploy/agent/"
cp "$repo/config/agent.sample.toml" "$out/config/"
