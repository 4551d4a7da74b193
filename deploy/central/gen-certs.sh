#!/usr/bin/env bash
# Certificates for the central broker: a private CA, the server certificate (with every
# name and address probes use in its subjectAltName) and, optionally, client certificates.
#
#   ./gen-certs.sh --dir certs --name mqtt.dongnai.example.vn [--name mosquitto] [--ip 203.0.113.7]
#   ./gen-certs.sh --dir certs --client dongnai-tanphu-01      # needs the CA made above
#
# The CA key (ca.key) signs everything: keep it off the broker once the server certificate
# exists (the probes only ever need ca.crt). An existing CA is reused, never overwritten;
# an existing server certificate is replaced only with --force.
set -euo pipefail

DIR=""
NAMES=()
IPS=()
CLIENTS=()
DAYS_CA=3650
DAYS_CERT=825
FORCE=0

usage() {
    cat <<USAGE
usage: $(basename "$0") --dir DIR [--name DNS]... [--ip ADDR]... [--client ID]... [options]
  --dir DIR        where ca.crt/ca.key, server.crt/server.key and clients/ go
  --name DNS       a host name probes and services use for the broker (repeatable);
                   "localhost" and "mosquitto" (the compose service) are always added
  --ip ADDR        an IP address probes use for the broker (repeatable); 127.0.0.1 is added
  --client ID      also issue clients/ID.crt and clients/ID.key (CN = ID; repeatable)
  --days N         validity of server and client certificates (default $DAYS_CERT)
  --force          replace an existing server certificate
  -h, --help       this help
USAGE
}

die() { echo "gen-certs.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --dir) DIR=${2-}; shift ;;
        --name) NAMES+=("${2-}"); shift ;;
        --ip) IPS+=("${2-}"); shift ;;
        --client) CLIENTS+=("${2-}"); shift ;;
        --days) DAYS_CERT=${2-}; shift ;;
        --force) FORCE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done

[ -n "$DIR" ] || { usage >&2; die "--dir is required"; }
[[ $DAYS_CERT =~ ^[0-9]+$ ]] || die "--days: not a number of days: $DAYS_CERT"
for id in "${CLIENTS[@]}"; do
    [[ $id =~ ^[a-z0-9-]{1,63}$ ]] || die "--client $id: a probe id is 1-63 of a-z, 0-9 and '-'"
done
for name in "${NAMES[@]}"; do
    [[ $name =~ ^[A-Za-z0-9.-]+$ ]] || die "--name $name: not a DNS name"
done
for ip in "${IPS[@]}"; do
    [[ $ip =~ ^[0-9A-Fa-f:.]+$ ]] || die "--ip $ip: not an IP address"
done
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"

mkdir -p "$DIR/clients"
umask 077

# --- the CA ---------------------------------------------------------------------------
if [ ! -s "$DIR/ca.crt" ] || [ ! -s "$DIR/ca.key" ]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days "$DAYS_CA" -sha256 \
        -subj "/O=probefleet/CN=probefleet CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    echo "made CA: $DIR/ca.crt (keep $DIR/ca.key offline)"
fi
chmod 0644 "$DIR/ca.crt"

issue() { # issue NAME CN EXT_FILE: NAME.key + NAME.crt signed by the CA
    local base=$1 cn=$2 ext=$3
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$base.key" -out "$base.csr" -subj "/O=probefleet/CN=$cn" 2>/dev/null
    openssl x509 -req -in "$base.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
        -CAcreateserial -out "$base.crt" -days "$DAYS_CERT" -sha256 -extfile "$ext" 2>/dev/null
    rm -f "$base.csr"
    chmod 0644 "$base.crt"
}

# --- the server certificate -----------------------------------------------------------
if [ ${#NAMES[@]} -gt 0 ] || [ ${#IPS[@]} -gt 0 ] || [ ! -s "$DIR/server.crt" ]; then
    if [ -s "$DIR/server.crt" ] && [ "$FORCE" != 1 ]; then
        die "$DIR/server.crt exists: add --force to replace it"
    fi
    san="DNS:localhost,DNS:mosquitto,IP:127.0.0.1"
    for name in "${NAMES[@]}"; do san="$san,DNS:$name"; done
    for ip in "${IPS[@]}"; do san="$san,IP:$ip"; done
    cn=${NAMES[0]:-localhost}
    ext=$(mktemp)
    trap 'rm -f "$ext"' EXIT
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyAgreement" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$san" >"$ext"
    issue "$DIR/server" "$cn" "$ext"
    # The broker runs as its own user (uid 1883 in eclipse-mosquitto): it must read the key.
    chmod 0640 "$DIR/server.key"
    echo "made server certificate: $DIR/server.crt for $san"
fi

# --- client certificates --------------------------------------------------------------
for id in "${CLIENTS[@]}"; do
    ext=$(mktemp)
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" >"$ext"
    issue "$DIR/clients/$id" "$id" "$ext"
    rm -f "$ext"
    echo "made client certificate: $DIR/clients/$id.crt"
done
