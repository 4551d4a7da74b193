#!/bin/bash
# InfluxDB 2.7 first-start set-up for probefleet (influxdb image: /docker-entrypoint-initdb.d).
# The image's setup mode has already made the org, the bucket (with its retention) and the
# admin; it exports DOCKER_INFLUXDB_INIT_* and configures the influx CLI for this script.
#  1. DBRP mapping: InfluxQL database "probefleet", retention policy "autogen" -> the bucket,
#     so Grafana's InfluxQL data source, the report and the alert rules can query it.
#  2. Two tokens, one job each: the collector may only write the bucket, Grafana only read it.
#     Each goes to its own volume (/var/lib/probefleet-tokens/collector, .../grafana): the
#     collector mounts only its own, read-only, and Grafana only its own.
# Runs once, on an empty data volume. To redo it: docker compose down -v (erases the data!).
set -euo pipefail

org=$DOCKER_INFLUXDB_INIT_ORG
bucket=$DOCKER_INFLUXDB_INIT_BUCKET
bucket_id=$DOCKER_INFLUXDB_INIT_BUCKET_ID
tokens=/var/lib/probefleet-tokens

influx v1 dbrp create --org "$org" --bucket-id "$bucket_id" --db "$bucket" --rp autogen --default

token() { # token DESCRIPTION --read-bucket|--write-bucket: print a new token
    influx auth create --org "$org" --description "$1" "$2" "$bucket_id" --hide-headers \
        | cut -f3
}
umask 077
mkdir -p "$tokens/collector" "$tokens/grafana"
token "probefleet collector: write $bucket" --write-bucket >"$tokens/collector/collector.token"
token "probefleet grafana: read $bucket" --read-bucket >"$tokens/grafana/grafana.token"
for name in collector grafana; do
    [ -s "$tokens/$name/$name.token" ] || { echo "init.sh: no $name token made" >&2; exit 1; }
done
# The collector (uid 990) and Grafana (uid 472) each read theirs; its volume holds nothing else.
chmod 0444 "$tokens"/collector/collector.token "$tokens"/grafana/grafana.token
chmod 0755 "$tokens"/collector "$tokens"/grafana
echo "probefleet: DBRP $bucket/autogen -> bucket $bucket_id; tokens in $tokens"
