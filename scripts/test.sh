#!/usr/bin/env bash
# Run Berth's whole test suite on this machine.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh NAME_FILTER     # extra arguments go to `cargo test --workspace`
#   bash scripts/test.sh -- --nocapture
#
# What it does, in order:
#   1. installs what the tests need when missing: Debian's postgresql, redis-server,
#      nginx-light, busybox-static, pdns-server with its sqlite3 backend, pebble, openssl,
#      chromium with chromium-driver, prometheus (with promtool), restic, and aiosmtpd,
#      openapi-spec-validator and moto[server] (an S3 server) from PyPI; checks that a Docker
#      engine runs;
#   2. starts a throwaway PostgreSQL and a throwaway Redis on 127.0.0.1, each on its own
#      port, with all their files in one temporary directory;
#   3. exports BERTH_TEST_DATABASE_URL and BERTH_TEST_REDIS_URL for the tests;
#   4. checks formatting (`cargo fmt --check`) and lints (`cargo clippy --workspace --all-targets
#      -D warnings`) unless BERTH_TEST_SKIP_LINT=1, then runs `cargo test --workspace`, which
#      builds the `berth` binary the end-to-end tests start (with the test-only `testing`
#      feature: demo jobs and fault injection) in the same build as the tests, so the
#      dependency graph is compiled once.
# Both services are stopped and the temporary directory removed when the script exits, however
# it exits. The exit status is cargo's.
#
# Environment knobs:
#   BERTH_TEST_PG_PORT      PostgreSQL port (default: first free port from 55432)
#   BERTH_TEST_REDIS_PORT   Redis port (default: first free port from 56379)
#   CARGO_TARGET_DIR        build cache (default: ~/.cache/berth/target, outside the clone)
#   BERTH_TEST_SKIP_LINT    1: skip the fmt and clippy checks (quick local runs of one test)

set -euo pipefail

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"

# --------------------------------------------------------------------------------------------
# Packages
# --------------------------------------------------------------------------------------------

# The highest installed PostgreSQL server version's bin directory, or nothing.
pg_bin_dir() {
    local initdb
    initdb="$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$initdb" ]]; then
        dirname "$initdb"
    fi
}

# Everything the suite needs from Debian, checked here and installed in one go.
missing=()
[[ -n "$(pg_bin_dir)" ]] || missing+=(postgresql)
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    missing+=(redis-server)
fi
# Some crates in the dependency graph compile a little C (ring, for instance).
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# PowerDNS with its sqlite3 backend: the DNS provider tests start their own pdns_server.
command -v pdns_server >/dev/null 2>&1 || missing+=(pdns-server)
[[ -f /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql ]] || missing+=(pdns-backend-sqlite3)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
# pebble (ACME test CA) and openssl (the TLS tests verify issued chains with it).
command -v pebble >/dev/null 2>&1 || missing+=(pebble)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The runtime tests (tests/runtime) drive the real Docker engine and a real nginx that each test
# starts unprivileged on a loopback port; the site image is built from Debian's static busybox
# (nothing is pulled).
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
# The UI tests (tests/ui) drive Debian's Chromium through chromedriver.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || missing+=(fonts-dejavu-core)
# The monitoring tests (tests/monitoring) let Debian's Prometheus scrape Berth and run promtool.
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The backup tests (tests/backups) read and check Berth's repositories with the stock restic CLI.
command -v restic >/dev/null 2>&1 || missing+=(restic)

if ((${#missing[@]} > 0)); then
    as_root=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 \
            || die "missing packages (${missing[*]}) and not root without sudo: install them as root, then rerun"
        as_root=(sudo)
    fi
    log "installing ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The SMTP sink the mail tests send to (aiosmtpd, from PyPI).
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    log "installing aiosmtpd (SMTP sink for the mail tests)"
    python3 -m pip install --quiet aiosmtpd 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages aiosmtpd
fi

# The OpenAPI validator the API document test runs on the served document (PyPI).
if ! python3 -c 'import openapi_spec_validator' >/dev/null 2>&1; then
    log "installing openapi-spec-validator (checks /api/v1/openapi.json)"
    python3 -m pip install --quiet openapi-spec-validator 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages openapi-spec-validator
fi

# The S3-compatible server the backup tests store repositories in (moto's server, from PyPI):
# its listings are what restic's client expects, so `restic check` works against it.
if ! command -v moto_server >/dev/null 2>&1; then
    log "installing moto[server] (S3 server for the backup tests)"
    python3 -m pip install --quiet 'moto[server]' 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages 'moto[server]'
fi

# The Docker engine itself must already run on this machine (it cannot be installed and
# started from here reliably); the runtime tests need it.
[[ -S /var/run/docker.sock ]] || die "no Docker engine at /var/run/docker.sock: the runtime tests need one"

PG_BIN="$(pg_bin_dir)"
[[ -n "$PG_BIN" ]] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin"

if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 \
    || die "cargo not found: install Rust (https://rustup.rs), then rerun"

# --------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------

port_in_use() {
    # A successful connect means something is listening there already.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_port NAME EXPLICIT DEFAULT: an explicitly requested port must be free; otherwise the
# first free port from DEFAULT on.
pick_port() {
    local name="$1" explicit="$2" port="$3" last
    if [[ -n "$explicit" ]]; then
        [[ "$explicit" =~ ^[0-9]+$ ]] || die "$name port '$explicit' is not a number"
        port_in_use "$explicit" && die "$name port $explicit on 127.0.0.1 is already in use"
        printf '%s\n' "$explicit"
        return
    fi
    last=$((port + 100))
    while ((port <= last)); do
        if ! port_in_use "$port"; then
            printf '%s\n' "$port"
            return
        fi
        port=$((port + 1))
    done
    die "no free $name port between $3 and $last on 127.0.0.1"
}

PG_PORT="$(pick_port PostgreSQL "${BERTH_TEST_PG_PORT:-}" 55432)"
REDIS_PORT="$(pick_port Redis "${BERTH_TEST_REDIS_PORT:-}" 56379)"

# --------------------------------------------------------------------------------------------
# Scratch directory and clean-up
# --------------------------------------------------------------------------------------------

# PostgreSQL refuses to run as root: as root, run it as the `postgres` system user instead.
PG_USER=""
if [[ "$(id -u)" -eq 0 ]]; then
    id -u postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run PostgreSQL as"
    PG_USER=postgres
fi

# Under /tmp (not $TMPDIR, which may sit inside root's private home) so the postgres user can
# reach it.
TMP="$(mktemp -d /tmp/berth-test.XXXXXXXX)"
PG_DATA="$TMP/pg/data"
PG_SOCKETS="$TMP/pg/sockets"
PG_LOG="$TMP/pg/postgresql.log"
REDIS_DIR="$TMP/redis"
REDIS_LOG="$TMP/redis/redis.log"
PG_STARTED=""
REDIS_PID=""

# Runs a command as the user PostgreSQL runs as, from a directory that user can enter.
as_pg() {
    if [[ -n "$PG_USER" ]]; then
        (cd "$TMP" && runuser -u "$PG_USER" -- "$@")
    else
        (cd "$TMP" && "$@")
    fi
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    if [[ -n "$PG_STARTED" ]]; then
        log "stopping PostgreSQL"
        as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -s >/dev/null 2>&1
    fi
    if [[ -n "$REDIS_PID" ]]; then
        log "stopping Redis"
        kill -TERM "$REDIS_PID" 2>/dev/null
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$REDIS_PID" 2>/dev/null
        wait "$REDIS_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

log "starting PostgreSQL $(basename "$(dirname "$PG_BIN")") on 127.0.0.1:$PG_PORT"
mkdir -p "$TMP/pg" "$PG_SOCKETS" "$REDIS_DIR"
if [[ -n "$PG_USER" ]]; then
    chown -R "$PG_USER:" "$TMP/pg"
    chmod 755 "$TMP"
fi

if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --no-locale \
    >"$TMP/initdb.log" 2>&1; then
    cat "$TMP/initdb.log" >&2
    die "initdb failed"
fi

# Throwaway cluster: durability is not wanted, speed and many connections are (every test
# opens its own pools).
cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- scripts/test.sh ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKETS'
max_connections = 500
fsync = off
synchronous_commit = off
full_page_writes = off
# The batching test counts the statements of a collection cycle (tests/monitoring/collect.rs).
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
EOF

PG_STARTED=1
as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -W -s >/dev/null \
    || { cat "$PG_LOG" >&2 2>/dev/null; die "pg_ctl start failed"; }

ready=""
for ((i = 0; i < 300; i++)); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; then
        ready=1
        break
    fi
    sleep 0.1
done
if [[ -z "$ready" ]]; then
    tail -n 50 "$PG_LOG" >&2 2>/dev/null
    die "PostgreSQL did not become ready within 30 s"
fi

# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------

log "starting Redis on 127.0.0.1:$REDIS_PORT"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save '' --appendonly no --daemonize no \
    --dir "$REDIS_DIR" --logfile "$REDIS_LOG" </dev/null >/dev/null 2>&1 &
REDIS_PID=$!

ready=""
for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$REDIS_PID" 2>/dev/null; then
        break
    fi
    if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" == PONG ]]; then
        ready=1
        break
    fi
    sleep 0.1
done
if [[ -z "$ready" ]]; then
    tail -n 50 "$REDIS_LOG" >&2 2>/dev/null
    die "Redis did not answer PING within 30 s"
fi

export BERTH_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export BERTH_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
log "BERTH_TEST_DATABASE_URL=$BERTH_TEST_DATABASE_URL"
log "BERTH_TEST_REDIS_URL=$BERTH_TEST_REDIS_URL"

# --------------------------------------------------------------------------------------------
# Build and test
# --------------------------------------------------------------------------------------------

if [[ "${BERTH_TEST_SKIP_LINT:-}" != 1 ]]; then
    log "checking formatting"
    cargo fmt --all -- --check
    log "linting (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    cargo clippy --workspace --all-targets -- -D warnings
fi

log "running cargo test --workspace $*"
set +e
cargo test --workspace --no-fail-fast "$@"
status=$?
set -e
if ((status == 0)); then
    log "tests passed"
else
    log "tests failed (cargo exit status $status)"
fi
exit "$status"
