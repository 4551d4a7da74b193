#!/usr/bin/env bash
# First-time set-up of the central site for compose.yaml, in this folder:
#   sudo ./setup.sh --name mqtt.dongnai.example.vn [--ip 203.0.113.7] \
#       [--probes 3300 --outage-hours 24 [--queue-ram-gb 16]]
# 1. certificates (gen-certs.sh): CA, server certificate for the names probes use;
# 2. secrets/ (mode 0700): random passwords, the InfluxDB admin token, the collectors' share
#    group name, mosquitto_sub/_pub options files holding a login (never a command line);
# 3. mosquitto/*.passwd, one per listener: services.passwd (collector, collector-status,
#    healthcheck), admin.passwd (fleet-admin), an empty probes.passwd (enrol.py adds them);
# 4. etc/: an empty inventory, the plan's targets and the alert rules (config/*.sample.toml);
# 5. with --probes: the broker's limits for that fleet and outage (broker_limits.py) written
#    into mosquitto/mosquitto.conf and mosquitto-limits.conf (README.md, Capacity).
# Safe to run again: nothing that exists is replaced (but the limits --probes asks for).
# Then: docker compose up -d --build
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$HERE/../.." && pwd)
CERT_ARGS=()
LIMIT_ARGS=()
PYTHON=${PYTHON:-python3}

usage() {
    echo "usage: $(basename "$0") --name DNS [--name DNS]... [--ip ADDR]...  (the broker's names)"
    echo "       [--probes N [--outage-hours H] [--queue-ram-gb G]]  (the broker's limits)"
}
while [ $# -gt 0 ]; do
    case $1 in
        --name|--ip) CERT_ARGS+=("$1" "${2-}"); shift ;;
        --probes|--outage-hours|--queue-ram-gb) LIMIT_ARGS+=("$1" "${2-}"); shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; echo "setup.sh: unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done
command -v "$PYTHON" >/dev/null || { echo "setup.sh: $PYTHON not found" >&2; exit 2; }
command -v openssl >/dev/null || { echo "setup.sh: openssl not found" >&2; exit 2; }
cd "$HERE"
if [ ${#LIMIT_ARGS[@]} -gt 0 ]; then
    case " ${LIMIT_ARGS[*]} " in
        *" --probes "*) ;;
        *) usage >&2; echo "setup.sh: --outage-hours and --queue-ram-gb need --probes" >&2; exit 2 ;;
    esac
    # Checked before anything is made: a bad value changes nothing.
    "$PYTHON" broker_limits.py "${LIMIT_ARGS[@]}" >/dev/null
fi

# 1. certificates
if [ -s certs/server.crt ]; then
    echo "certs: kept (certs/server.crt exists; gen-certs.sh --force to replace it)"
else
    [ ${#CERT_ARGS[@]} -gt 0 ] || { usage >&2; echo "setup.sh: --name is required" >&2; exit 2; }
    ./gen-certs.sh --dir certs "${CERT_ARGS[@]}"
fi

# 2. secrets: readable inside the containers (compose bind-mounts the files), protected on
# the host by the 0700 folder.
install -d -m 0700 secrets
random_secret() { openssl rand -base64 33 | tr -d '\n/+='; }
for name in mqtt-collector-password mqtt-healthcheck-password mqtt-fleet-admin-password \
        influxdb-admin-password influxdb-admin-token grafana-admin-password; do
    if [ ! -s "secrets/$name" ]; then
        random_secret >"secrets/$name"
        echo "secrets/$name: made"
    fi
    chmod 0644 "secrets/$name"
done
# The share group of a scaled-out collector (README.md, Scale-out): a name no probe can
# guess (Mosquitto 2.0's ACL file cannot refuse a probe's $share subscription).
if [ ! -s secrets/mqtt-share-group ]; then
    printf 'pf%s' "$(openssl rand -hex 16)" >secrets/mqtt-share-group
    echo "secrets/mqtt-share-group: made"
fi
# Grafana's SMTP password (GF_SMTP_PASSWORD__FILE): yours to write, empty until then.
[ -e secrets/smtp-password ] || : >secrets/smtp-password
chmod 0644 secrets/mqtt-share-group secrets/smtp-password
# mosquitto_sub/mosquitto_pub read -u/-P from $XDG_CONFIG_HOME/mosquitto_sub (_pub):
# compose mounts these there, so no password is ever on a command line (/proc/*/cmdline).
for user in healthcheck fleet-admin; do
    options="secrets/mqtt-$user-options"
    printf -- '-u %s\n-P %s\n' "$user" "$(cat "secrets/mqtt-$user-password")" >"$options.tmp"
    if cmp -s "$options.tmp" "$options"; then rm "$options.tmp"; else mv "$options.tmp" "$options"; fi
    chmod 0644 "$options"
done

# 3. the broker's logins, one password file per listener (mosquitto.conf)
if [ -s mosquitto/passwd ] && [ ! -e mosquitto/probes.passwd ]; then
    # A site made before the listeners had their own files: its probes keep their logins.
    awk -F: '$1 != "collector" && $1 != "healthcheck"' mosquitto/passwd >mosquitto/probes.passwd
    mv mosquitto/passwd mosquitto/passwd.old
    echo "mosquitto/probes.passwd: the probes of mosquitto/passwd (kept as passwd.old)"
fi
for file in probes services admin; do
    [ -e "mosquitto/$file.passwd" ] || install -m 0600 /dev/null "mosquitto/$file.passwd"
done
for user in collector healthcheck fleet-admin; do
    "$PYTHON" enrol.py --reload '' service "$user" --password-file "secrets/mqtt-$user-password"
done
# The collector's presence connection (collector.toml [mqtt] status_connection) logs in as
# collector-status with the collector's password (services.acl: statuses only).
"$PYTHON" enrol.py --reload '' service collector-status --password-file secrets/mqtt-collector-password
if [ "$(id -u)" = 0 ]; then
    # eclipse-mosquitto runs as uid 1883: it must read these after dropping root.
    chown 1883:1883 mosquitto/probes.passwd mosquitto/services.passwd mosquitto/admin.passwd \
        certs/server.key
    chmod 0600 mosquitto/probes.passwd mosquitto/services.passwd mosquitto/admin.passwd
fi

# 4. inventory and targets
install -d -m 0755 etc
if [ ! -e etc/inventory.toml ]; then
    grep '^#' "$REPO/config/inventory.sample.toml" >etc/inventory.toml
    echo "etc/inventory.toml: made (empty: enrol.py adds the probes)"
fi
if [ ! -e etc/targets.toml ]; then
    cp "$REPO/config/targets.sample.toml" etc/targets.toml
    echo "etc/targets.toml: the plan's 2025 targets"
fi
if [ ! -e etc/alerts.toml ]; then
    cp "$REPO/config/alerts.sample.toml" etc/alerts.toml
    echo "etc/alerts.toml: alert rules (set [notify.webhook] / [notify.email] to be paged)"
fi

# 5. the broker's limits for this fleet (only when asked: a re-run without --probes keeps
# what an earlier one wrote)
if [ ${#LIMIT_ARGS[@]} -gt 0 ]; then
    "$PYTHON" broker_limits.py "${LIMIT_ARGS[@]}" --agent-config "$REPO/config/agent.sample.toml" \
        --write mosquitto/mosquitto.conf --limits-file mosquitto-limits.conf
    nofile=$(sed -n 's/^LimitNOFILE=//p' mosquitto-limits.conf)
    compose_nofile=$(sed -n 's/^ *soft: *\([0-9]*\)$/\1/p' compose.yaml | head -n 1)
    if [ -n "$compose_nofile" ] && [ "$nofile" -gt "$compose_nofile" ]; then
        echo "setup.sh: raise compose.yaml's mosquitto ulimits nofile to $nofile" >&2
    fi
fi

cat <<NEXT

Done. Next:
  sudo nft -f nftables.conf              # per-address limits on 8883 (README.md, Capacity)
  docker compose up -d --build
  docker compose ps                      # all four healthy after a minute
  ./enrol.py enrol <probe id> --commune ... --province ... --interface eth0:fixed:VNPT \\
      --broker <the name given to --name>
Grafana: https://<this host>/ (admin / secrets/grafana-admin-password)
NEXT
