#!/usr/bin/env bash
# Installs/checks the system tools the citybrain/internal/testenv harnesses
# need before `go test` (run by the Makefile's test-deps target).
#
#   - PostgreSQL server binaries (initdb, pg_ctl, postgres) and psql:
#     installed with apt-get (postgresql postgresql-client) when missing.
#   - the Mosquitto MQTT broker (/usr/sbin/mosquitto, mosquitto_passwd):
#     installed with apt-get (mosquitto) when missing.
#   - java (17+), mvn and python3 with the venv module: checked only; the
#     script fails with the apt packages to install when one is missing.
#
# Idempotent, and fast (well under 2 s) when everything is present. Jars,
# Python venvs and pip downloads are fetched lazily by the Go harnesses into
# $CITYBRAIN_CACHE (default ~/.cache/citybrain), not here.
set -euo pipefail

log() { printf 'testenv/setup.sh: %s\n' "$*" >&2; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	fi
fi

apt_updated=0
apt_install() {
	if ! command -v apt-get >/dev/null 2>&1; then
		log "apt-get not found; install these packages by hand: $*"
		exit 1
	fi
	if [[ $apt_updated -eq 0 ]]; then
		log "apt-get update"
		"${SUDO[@]}" apt-get update -qq
		apt_updated=1
	fi
	log "apt-get install -y $*"
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# has_pg_server: a directory with initdb, pg_ctl and postgres exists where
# testenv looks (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH).
has_pg_server() {
	local d dirs=()
	if command -v pg_config >/dev/null 2>&1; then
		dirs+=("$(pg_config --bindir 2>/dev/null || true)")
	fi
	for d in /usr/lib/postgresql/*/bin; do
		[[ -d $d ]] && dirs+=("$d")
	done
	if command -v pg_ctl >/dev/null 2>&1; then
		dirs+=("$(dirname "$(readlink -f "$(command -v pg_ctl)")")")
	fi
	for d in "${dirs[@]}"; do
		[[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] && return 0
	done
	return 1
}

if ! has_pg_server || ! command -v psql >/dev/null 2>&1; then
	apt_install postgresql postgresql-client
	if ! has_pg_server; then
		log "postgresql installed but initdb/pg_ctl/postgres still not found"
		exit 1
	fi
fi
if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
	log "running as root but there is no 'postgres' OS user (the harness runs the server as it); reinstall postgresql-common"
	exit 1
fi

if [[ ! -x /usr/sbin/mosquitto ]] && ! command -v mosquitto >/dev/null 2>&1; then
	apt_install mosquitto
	if [[ ! -x /usr/sbin/mosquitto ]] && ! command -v mosquitto >/dev/null 2>&1; then
		log "mosquitto installed but /usr/sbin/mosquitto still not found"
		exit 1
	fi
fi

missing=()
command -v java >/dev/null 2>&1 || missing+=("java (apt-get install default-jdk-headless; Java 17+)")
command -v mvn >/dev/null 2>&1 || missing+=("mvn (apt-get install maven)")
if ! command -v python3 >/dev/null 2>&1; then
	missing+=("python3 (apt-get install python3 python3-venv)")
elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
	missing+=("python3 venv/ensurepip module (apt-get install python3-venv)")
fi
if [[ ${#missing[@]} -gt 0 ]]; then
	log "missing tools needed by the integration tests:"
	for m in "${missing[@]}"; do
		log "  - $m"
	done
	exit 1
fi

# Headless Chromium for the dashboards' browser tests (chromedp) and a CJK
# font so that Chinese labels render in their screenshots.
if ! command -v chromium >/dev/null 2>&1; then
	apt_install chromium
fi
if ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then
	apt_install fonts-noto-cjk
fi
