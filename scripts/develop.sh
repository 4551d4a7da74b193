#!/usr/bin/env bash
# `make develop`: install our three distributions into the venv VENV, editable in strict
# mode (a link per module, which mypy can follow), without dependencies (the lock brought
# them) and without build isolation (setuptools comes from requirements/build.txt).
#
# Strict mode does not see a module added later, so make runs this before every test and
# check. It does the install only when it would change something: when the modules, a
# pyproject.toml or this checkout's place differ from the last time. (setuptools empties
# and rebuilds the link tree on every install, which would break imports in a test run
# going on in this checkout at the same moment.)
set -euo pipefail
venv=${1:?usage: scripts/develop.sh VENV}
cd "$(dirname "$0")/.."
stamp=$venv/.probefleet-develop

manifest() {
    pwd
    cksum pyproject.toml agent/pyproject.toml collector/pyproject.toml
    find core kinds agent collector \( -name build -o -name tests -o -name __pycache__ \) -prune \
        -o \( -name '*.py' -o -name py.typed \) -print | LC_ALL=C sort
}

now=$(manifest)
if [[ -f $stamp && $(<"$stamp") == "$now" ]] &&
    "$venv/bin/python" -c 'import probefleet.core, probefleet.kinds, probefleet.agent, probefleet.collector' 2>/dev/null; then
    exit 0
fi
echo "develop: linking probefleet, probefleet-agent, probefleet-collector into $venv (editable)"
rm -f "$stamp"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet --no-deps \
    --no-build-isolation --config-settings editable_mode=strict -e . -e ./agent -e ./collector
printf '%s\n' "$now" >"$stamp"
