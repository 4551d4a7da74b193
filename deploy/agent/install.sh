#!/usr/bin/env bash
# Install (or update) the probefleet agent on a Raspberry Pi OS (bookworm) probe.
#
#   sudo deploy/agent/install.sh --probe-id dongnai-tanphu-01 --broker mqtt.example.vn \
#       --ca /media/usb/ca.pem --password-file /media/usb/dongnai-tanphu-01.pw \
#       --interface eth0:fixed --interface wwan0:mobile:20000 \
#       --source /media/usb/probefleet-0.2.0
#
# --source is a release folder made by `make dist` (the probefleet and probefleet-agent
# wheels and agent.txt, the hashed lock of their dependencies) or a probefleet checkout
# (built on the probe); by default the folder two levels above this script, which is either.
# Either way pip installs only what the lock pins, each file checked against its hash.
#
# Safe to run again: it updates the package, keeps an edited agent.toml (a fresh one goes
# to agent.toml.new unless --overwrite-config) and restarts the service.
#   --dry-run    print every step, change nothing
#   --root DIR   write the files under DIR (an SD card's root partition, a test) and enable
#                the unit offline; apt, the user, the venv and starting are left for the Pi
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/../.." && pwd)
UNIT_NAME=probefleet-agent.service
SERVICE_USER=probefleet
APT_PACKAGES=(python3 python3-venv python3-pip iputils-ping ca-certificates)
# Where things go on the probe (the unit file names the same paths).
OPT_DIR=/opt/probefleet
VENV=$OPT_DIR/venv
ETC_DIR=/etc/probefleet
STATE_DIR=/var/lib/probefleet
CONFIG=$ETC_DIR/agent.toml
PASSWORD_FILE=$ETC_DIR/mqtt-password
CA_FILE=$ETC_DIR/ca.pem
UNIT_FILE=/etc/systemd/system/$UNIT_NAME

usage() {
    cat <<EOF
usage: $(basename "$0") --probe-id ID --broker HOST [options]

  --probe-id ID            this probe's id: 1-63 of a-z, 0-9 and '-' (its MQTT username)
  --broker HOST            the MQTT broker's host name or address
  --port N                 broker port (default 8883)
  --no-tls                 plain MQTT (only on a private network; default: TLS)
  --ca FILE                CA certificate of the broker (default: the system's CA store)
  --password-file FILE     file holding this probe's MQTT password; otherwise
                           \$PROBEFLEET_MQTT_PASSWORD, or asked for on the terminal
                           (an existing $PASSWORD_FILE is kept when none is given)
  --interface NAME:ACCESS[:BUDGET_MB]
                           a link to measure (repeat): ACCESS fixed or mobile, BUDGET_MB
                           the monthly data budget of a metered link (0 = unmetered)
  --source DIR             a release folder made by \`make dist\` (the two wheels and
                           agent.txt) or a probefleet checkout
                           (default: the one this script is in, $REPO_DIR)
  --sample FILE            the sample config to start from
                           (default: $REPO_DIR/config/agent.sample.toml)
  --overwrite-config       replace an existing agent.toml (a copy is kept as .bak-DATE)
  --no-start               enable the service but do not (re)start it
  --root DIR               install the files under DIR instead of /
  --dry-run                print what would be done, do nothing
  -h, --help               this help
EOF
}

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 2
}
say() { printf '==> %s\n' "$*"; }

PROBE_ID="" BROKER="" PORT=8883 TLS=true CA_SRC="" PASSWORD_SRC="" SOURCE="" SAMPLE=""
ROOT="" DRY_RUN=0 OVERWRITE=0 START=1
INTERFACES=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --probe-id) PROBE_ID=${2-} && shift ;;
    --broker) BROKER=${2-} && shift ;;
    --port) PORT=${2-} && shift ;;
    --no-tls) TLS=false ;;
    --ca) CA_SRC=${2-} && shift ;;
    --password-file) PASSWORD_SRC=${2-} && shift ;;
    --interface) INTERFACES+=("${2-}") && shift ;;
    --source) SOURCE=${2-} && shift ;;
    --sample) SAMPLE=${2-} && shift ;;
    --overwrite-config) OVERWRITE=1 ;;
    --no-start) START=0 ;;
    --root) ROOT=${2-} && shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage && exit 0 ;;
    *) usage >&2 && die "unknown option: $1" ;;
    esac
    shift
done

# --- checks, before anything changes ------------------------------------------------------

[[ $PROBE_ID =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] ||
    die "--probe-id '$PROBE_ID': give 1-63 of a-z, 0-9 and '-', not starting with '-'"
[[ $BROKER =~ ^[A-Za-z0-9.:-]+$ ]] || die "--broker '$BROKER': give a host name or an address"
if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || ((PORT < 1 || PORT > 65535)); then
    die "--port '$PORT': give 1-65535"
fi
[[ -z $CA_SRC || -r $CA_SRC ]] || die "--ca '$CA_SRC': cannot read it"
[[ -z $PASSWORD_SRC || -r $PASSWORD_SRC ]] || die "--password-file '$PASSWORD_SRC': cannot read it"
for spec in "${INTERFACES[@]}"; do
    [[ $spec =~ ^[A-Za-z0-9_.:@-]{1,15}:(fixed|mobile)(:[0-9]+)?$ ]] ||
        die "--interface '$spec': give NAME:fixed or NAME:mobile[:BUDGET_MB], e.g. wwan0:mobile:20000"
    # A mobile link's modem is read through ModemManager (the radio context of its results).
    if [[ $spec == *:mobile* && " ${APT_PACKAGES[*]} " != *" modemmanager "* ]]; then
        APT_PACKAGES+=(modemmanager)
    fi
done
SOURCE=${SOURCE:-$REPO_DIR}
[[ -e $SOURCE ]] || die "--source '$SOURCE': no such file or directory"
# What --source is: a release folder (wheels + lock) or a checkout (built with setuptools
# from requirements/build.txt). pip needs a path, not a bare name: make it absolute.
RELEASE="a release folder (one probefleet-*.whl, one probefleet_agent-*.whl and agent.txt, as \`make dist\` makes it)"
[[ -d $SOURCE ]] || die "--source '$SOURCE': give $RELEASE or a probefleet checkout, not a file"
SOURCE=$(cd -- "$SOURCE" && pwd)
shopt -s nullglob
CORE_WHEELS=("$SOURCE"/probefleet-[0-9]*.whl)
AGENT_WHEELS=("$SOURCE"/probefleet_agent-[0-9]*.whl)
shopt -u nullglob
if [[ -f $SOURCE/requirements/agent.txt && -f $SOURCE/agent/pyproject.toml ]]; then
    SOURCE_KIND=checkout
elif [[ -f $SOURCE/agent.txt && ${#CORE_WHEELS[@]} -eq 1 && ${#AGENT_WHEELS[@]} -eq 1 ]]; then
    SOURCE_KIND=release
else
    die "--source '$SOURCE': give $RELEASE or a probefleet checkout" \
        "(with requirements/agent.txt and agent/pyproject.toml)"
fi
SAMPLE=${SAMPLE:-$REPO_DIR/config/agent.sample.toml}
[[ -r $SAMPLE ]] || die "--sample '$SAMPLE': cannot read it (give the sample config's path)"
for shipped in "$SCRIPT_DIR/$UNIT_NAME" "$SCRIPT_DIR/README.md"; do
    [[ -r $shipped ]] || die "$shipped is missing: copy the whole deploy/agent folder"
done
if [[ -n $ROOT ]]; then
    [[ $DRY_RUN -eq 1 || -d $ROOT ]] || die "--root '$ROOT': not a directory"
    ROOT=$(cd -- "$ROOT" 2>/dev/null && pwd || printf '%s' "$ROOT")
elif [[ $DRY_RUN -eq 0 && $EUID -ne 0 ]]; then
    die "run as root (sudo), or use --dry-run or --root DIR"
fi

# The MQTT password: read now, so that a missing one stops us before any change.
PASSWORD=""
PASSWORD_FROM=""
if [[ -n $PASSWORD_SRC ]]; then
    PASSWORD=$(<"$PASSWORD_SRC")
    PASSWORD_FROM="--password-file $PASSWORD_SRC"
elif [[ -n ${PROBEFLEET_MQTT_PASSWORD-} ]]; then
    PASSWORD=$PROBEFLEET_MQTT_PASSWORD
    PASSWORD_FROM="\$PROBEFLEET_MQTT_PASSWORD"
elif [[ -e $ROOT$PASSWORD_FILE ]]; then
    PASSWORD_FROM=""  # keep the one installed earlier
elif [[ $DRY_RUN -eq 1 ]]; then
    PASSWORD_FROM="the terminal (asked for when run for real)"
elif [[ -t 0 ]]; then
    read -r -s -p "MQTT password of $PROBE_ID: " PASSWORD && echo
    PASSWORD_FROM="the terminal"
fi
if [[ -n $PASSWORD_FROM && $DRY_RUN -eq 0 && -z $PASSWORD ]]; then
    die "the MQTT password is empty"
fi
if [[ -z $PASSWORD_FROM && ! -e $ROOT$PASSWORD_FILE ]]; then
    die "no MQTT password: give --password-file FILE or set PROBEFLEET_MQTT_PASSWORD"
fi

# --- how each step runs -------------------------------------------------------------------

# A command on the system: printed, then run (not with --dry-run).
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [[ $DRY_RUN -eq 0 ]]; then "$@"; fi
}
# A command that only makes sense on the probe itself: left out with --root.
on_probe() {
    if [[ -n $ROOT ]]; then
        printf '  (left for the probe, not done under --root:'
        printf ' %q' "$@"
        printf ')\n'
    else
        run "$@"
    fi
}
# install FILE as DEST (under --root) with MODE, owned by OWNER (not under --root); says
# whether it changed. The temp file is written in DEST's directory and renamed: atomic.
put() {
    local src=$1 dest=$ROOT$2 mode=$3 owner=$4
    if [[ -e $dest ]] && cmp -s "$src" "$dest"; then
        echo "  $2 unchanged"
        run chmod "$mode" "$dest"
        return
    fi
    local whose=", owner $owner"
    if [[ -n $ROOT ]]; then whose=""; fi
    printf '+ write %s (mode %s%s)\n' "$dest" "$mode" "$whose"
    if [[ $DRY_RUN -eq 1 ]]; then return; fi
    local tmp
    tmp=$(mktemp "$dest.XXXXXX")
    if ! { cat "$src" >"$tmp" && chmod "$mode" "$tmp" &&
        { [[ -n $ROOT ]] || chown "$owner" "$tmp"; } && mv -f "$tmp" "$dest"; }; then
        rm -f "$tmp"
        die "cannot install $dest"
    fi
}

WORK=$(mktemp -d) # 0700: the password passes through it
trap 'rm -rf "$WORK"' EXIT
umask 022 # directories and files get explicit modes where it matters

# --- 1. packages, user, directories ------------------------------------------------------

say "system packages: ${APT_PACKAGES[*]}"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [[ -n $ROOT ]]; then
    on_probe apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
elif [[ ${#missing[@]} -gt 0 ]]; then
    run apt-get update
    run apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "  all installed"
fi

say "service user $SERVICE_USER"
if [[ -z $ROOT ]] && id -u "$SERVICE_USER" >/dev/null 2>&1; then
    echo "  exists"
else
    on_probe useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "probefleet agent" "$SERVICE_USER"
fi

say "directories"
run mkdir -p "$ROOT$ETC_DIR" "$ROOT$OPT_DIR" "$ROOT$STATE_DIR" "$ROOT/etc/systemd/system"
run chmod 0755 "$ROOT$ETC_DIR" "$ROOT$OPT_DIR"
run chmod 0750 "$ROOT$STATE_DIR"
on_probe chown "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"

# --- 2. the agent, in its own virtualenv --------------------------------------------------

say "probefleet from $SOURCE ($SOURCE_KIND) into $VENV"
if [[ -n $ROOT || ! -x $VENV/bin/python ]]; then
    on_probe python3 -m venv "$VENV"
fi
# The dependencies exactly as locked, each file checked against its hash; then our two
# distributions without dependencies (--force-reinstall: pip skips a version already
# installed, which would keep old code after a rebuild of the same version).
PIP=("$VENV/bin/pip" install --disable-pip-version-check)
if [[ $SOURCE_KIND == release ]]; then
    on_probe "${PIP[@]}" --require-hashes -r "$SOURCE/agent.txt"
    on_probe "${PIP[@]}" --no-deps --force-reinstall "${CORE_WHEELS[0]}" "${AGENT_WHEELS[0]}"
else
    # setuptools from the lock too: building without isolation fetches nothing unpinned.
    on_probe "${PIP[@]}" --require-hashes -r "$SOURCE/requirements/build.txt"
    on_probe "${PIP[@]}" --require-hashes -r "$SOURCE/requirements/agent.txt"
    on_probe "${PIP[@]}" --no-deps --no-build-isolation --force-reinstall "$SOURCE" "$SOURCE/agent"
fi
# `probe-agent` on the PATH, for a technician's one-shot checks.
run mkdir -p "$ROOT/usr/local/bin"
run ln -sfn "$VENV/bin/probe-agent" "$ROOT/usr/local/bin/probe-agent"

# --- 3. configuration ---------------------------------------------------------------------

say "configuration $CONFIG"
# The sample with this probe's values, key by key inside their own tables: other tables
# have keys of the same names (ca_file, for one).
awk -v id="$PROBE_ID" -v host="$BROKER" -v port="$PORT" -v tls="$TLS" \
    -v ca="${CA_SRC:+$CA_FILE}" -v pwfile="$PASSWORD_FILE" '
    /^\[/ { table = $1 }
    table == "[probe]" && /^id = / { print "id = \"" id "\""; done["id"]++; next }
    table == "[mqtt]" && /^host = / { print "host = \"" host "\""; done["host"]++; next }
    table == "[mqtt]" && /^port = / { print "port = " port; done["port"]++; next }
    table == "[mqtt]" && /^tls = / { print "tls = " tls; done["tls"]++; next }
    table == "[mqtt]" && /^ca_file = / && ca != "" { print "ca_file = \"" ca "\""; next }
    table == "[mqtt]" && /^password_file = / {
        print "password_file = \"" pwfile "\""; done["password_file"]++; next
    }
    { print }
    END {
        split("id host port tls password_file", keys, " ")
        for (k in keys) if (done[keys[k]] != 1) {
            print "install.sh: the sample has no single " keys[k] " key where expected" > "/dev/stderr"
            exit 1
        }
    }' "$SAMPLE" >"$WORK/agent.toml" || die "cannot fill in the sample $SAMPLE"
if [[ ${#INTERFACES[@]} -gt 0 ]]; then
    {
        printf '\n# The links of this probe (written by install.sh).\n'
        for spec in "${INTERFACES[@]}"; do
            IFS=: read -r name access budget <<<"$spec"
            printf '\n[[interfaces]]\nname = "%s"\naccess = "%s"\nmonthly_budget_mb = %s\n' \
                "$name" "$access" "${budget:-0}"
        done
    } >>"$WORK/agent.toml"
fi
if [[ ! -e $ROOT$CONFIG ]] || cmp -s "$WORK/agent.toml" "$ROOT$CONFIG"; then
    put "$WORK/agent.toml" "$CONFIG" 0644 root:root
elif [[ $OVERWRITE -eq 1 ]]; then
    run cp -p "$ROOT$CONFIG" "$ROOT$CONFIG.bak-$(date +%Y%m%d-%H%M%S)"
    put "$WORK/agent.toml" "$CONFIG" 0644 root:root
else
    echo "  $CONFIG exists and differs: kept; the new one is $CONFIG.new"
    echo "  (compare them, or run again with --overwrite-config)"
    put "$WORK/agent.toml" "$CONFIG.new" 0644 root:root
fi

if [[ -n $CA_SRC ]]; then
    say "broker CA $CA_FILE"
    put "$CA_SRC" "$CA_FILE" 0644 root:root
fi

say "MQTT password $PASSWORD_FILE (root only; the service gets it as a credential)"
if [[ -z $PASSWORD_FROM ]]; then
    echo "  kept (no new password given)"
else
    echo "  from $PASSWORD_FROM"
    printf '%s\n' "$PASSWORD" >"$WORK/mqtt-password"
    put "$WORK/mqtt-password" "$PASSWORD_FILE" 0600 root:root
fi

# --- 4. the service -------------------------------------------------------------------------

say "service $UNIT_NAME"
put "$SCRIPT_DIR/$UNIT_NAME" "$UNIT_FILE" 0644 root:root
put "$SCRIPT_DIR/README.md" "$OPT_DIR/README.md" 0644 root:root
# The config must pass before the service (re)starts with it; the password is read the way
# the service reads it.
on_probe env "PROBEFLEET_MQTT_PASSWORD_FILE=$PASSWORD_FILE" \
    "$VENV/bin/probe-agent" check --config "$CONFIG"
if [[ -n $ROOT ]]; then
    if command -v systemctl >/dev/null; then
        run systemctl --root="$ROOT" enable "$UNIT_NAME"
    else
        echo "  (no systemctl here: run 'systemctl enable $UNIT_NAME' on the probe)"
    fi
else
    run systemctl daemon-reload
    run systemctl enable "$UNIT_NAME"
    if [[ $START -eq 1 ]]; then
        run systemctl restart "$UNIT_NAME"
        echo "  follow it with: journalctl -u $UNIT_NAME -f"
        echo "  what it is doing: sudo probe-agent status"
    fi
fi
if [[ $DRY_RUN -eq 1 ]]; then say "dry run: nothing was changed"; else say "done"; fi
