#!/usr/bin/env bash
# `make system-deps PACKAGE...`: install the Debian packages the tests start, only those
# missing. As root: apt-get update + install. Otherwise: print the exact command, exit 2.
# Also python3-venv when this python3 cannot make a venv (Debian's python3 without it).
set -euo pipefail

if ! command -v dpkg-query >/dev/null; then
    echo "system-deps: not a Debian/Ubuntu system: install the equivalents of $*" >&2
    echo "system-deps: (the tests name the program they cannot find)" >&2
    exit 0
fi

missing=()
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
fi
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    printf 'system-deps: missing Debian packages: %s. Install them with:\n\n' "${missing[*]}" >&2
    printf '    sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n\n' \
        "${missing[*]}" >&2
    printf 'then run make again (or run it as root: it installs them itself).\n' >&2
    exit 2
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts the services it installs (where an init system runs): the tests start their
# own, on free ports, and the demo too; stop these so that nothing answers unasked.
for pkg in "${missing[@]}"; do
    case $pkg in
    mosquitto | influxdb) service=$pkg ;;
    nginx-light) service=nginx ;;
    *) continue ;;
    esac
    service "$service" stop >/dev/null 2>&1 || true
done
