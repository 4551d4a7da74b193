#!/usr/bin/env bash
# `make lock`: re-resolve uv.lock (one universal lock: the Pi's aarch64 and the centre's
# x86_64, Python 3.11+, a hash for every file) and export what pip installs from:
#   requirements/agent.txt      a probe: probefleet-agent's dependencies, nothing else
#   requirements/collector.txt  the centre: probefleet-collector's dependencies
#   requirements/dev.txt        development and CI: both programs' and the dev group's
#   requirements/build.txt      setuptools, to build our own code without build isolation
# `make lock-check` (with --check): fail, naming the file, when any of them is out of date.
# Other arguments go to `uv lock` (e.g. --upgrade-package httpx).
set -euo pipefail
uv=${1:?usage: scripts/lock.sh UV [--check | UV-LOCK-ARGS...]}
shift
check=${1-}
cd "$(dirname "$0")/.."

export_to() {
    local out=$1
    local export=("$uv" export --quiet --frozen --no-emit-workspace --no-header
        --format requirements-txt)
    "${export[@]}" --package probefleet-agent --no-default-groups -o "$out/agent.txt"
    "${export[@]}" --package probefleet-collector --no-default-groups -o "$out/collector.txt"
    "${export[@]}" --all-packages --group dev -o "$out/dev.txt"
    "$uv" pip compile --quiet --generate-hashes --universal --python-version 3.11 --no-header \
        requirements/build.in -o "$out/build.txt"
}

fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
if [[ $check != --check ]]; then
    "$uv" lock "$@"
    export_to "$fresh"
    # Rewrite only what changed: make refreshes a venv when its lock file is newer.
    for name in agent collector dev build; do
        if ! cmp -s "$fresh/$name.txt" "requirements/$name.txt"; then
            cp "$fresh/$name.txt" "requirements/$name.txt"
            echo "lock: requirements/$name.txt updated"
        fi
    done
    exit 0
fi

if ! "$uv" lock --check --quiet; then
    echo "lock: uv.lock does not match the pyproject.toml files: run \`make lock\`" >&2
    exit 1
fi
export_to "$fresh"
stale=0
for name in agent collector dev build; do
    if ! diff -u "requirements/$name.txt" "$fresh/$name.txt" >&2; then
        echo "lock: requirements/$name.txt is not what uv.lock exports: run \`make lock\`" >&2
        stale=1
    fi
done
exit "$stale"
