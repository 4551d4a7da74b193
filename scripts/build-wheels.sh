#!/usr/bin/env bash
# `scripts/build-wheels.sh PYTHON OUT PROJECT...`: build the wheels of our distributions
# (PROJECT: `.` for probefleet, `agent`, `collector`) into OUT with PYTHON's pip, without
# dependencies and without build isolation (PYTHON has setuptools from requirements/build.txt).
#
# From a clean copy of the sources: setuptools packs whatever an earlier build left in a
# project's build/lib, so building in the checkout could ship a module deleted since.
set -euo pipefail
python=${1:?usage: scripts/build-wheels.sh PYTHON OUT PROJECT...}
out=${2:?usage: scripts/build-wheels.sh PYTHON OUT PROJECT...}
shift 2
[[ $# -gt 0 ]] || { echo "build-wheels: name at least one project (. agent collector)" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -C "$repo" --exclude=build --exclude='*.egg-info' --exclude=__pycache__ --exclude='*.pyc' \
    -cf - pyproject.toml README.md core kinds agent collector | tar -C "$src" -xf -
projects=()
for project in "$@"; do
    [[ -f $src/$project/pyproject.toml ]] || { echo "build-wheels: no project '$project'" >&2; exit 2; }
    projects+=("$src/$project")
done
"$python" -m pip --disable-pip-version-check wheel --quiet --no-deps --no-build-isolation \
    --wheel-dir "$out" "${projects[@]}"
