#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the tests and the bench.
#
#   tests/postgres/cluster.sh start   prints `export CROSSGATE_TEST_POSTGRES_URL=...`
#                                     (nothing when PostgreSQL cannot be had)
#   tests/postgres/cluster.sh stop    stops it and removes its files
#
# PostgreSQL comes from Debian's packages when it is not installed and we
# may install (root with apt). It refuses to run as root, so as root the
# cluster runs as the `postgres` user (created by the package), or as a
# `crossgate-pg` system user made for it. A URL already in the environment
# is used as it is and nothing is started.
set -euo pipefail

state="${CROSSGATE_PG_STATE:-${TMPDIR:-/tmp}/crossgate-pg-$(id -u).env}"
say() { echo "postgres: $*" >&2; }
# shellcheck source=../debian.sh
source "$(dirname "$0")/../debian.sh"

bin_dir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && { echo "$dir"; return; }
    done
    command -v initdb >/dev/null && dirname "$(command -v initdb)"
}

# Runs a command as the cluster's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$owner" -- "$@"
    else
        "$@"
    fi
}

start() {
    if [[ -n "${CROSSGATE_TEST_POSTGRES_URL:-}" ]]; then
        say "using CROSSGATE_TEST_POSTGRES_URL from the environment"
        echo "export CROSSGATE_TEST_POSTGRES_URL='$CROSSGATE_TEST_POSTGRES_URL'"
        return
    fi
    [[ -f "$state" ]] && stop
    local bin
    bin="$(bin_dir || true)"
    if [[ -z "$bin" ]]; then
        debian_install postgresql || return 0
        bin="$(bin_dir)"
    fi
    owner="$(id -un)"
    if [[ $(id -u) -eq 0 ]]; then
        owner=postgres
        id "$owner" >/dev/null 2>&1 || {
            owner=crossgate-pg
            id "$owner" >/dev/null 2>&1 || useradd --system --no-create-home "$owner"
        }
    fi
    local dir port
    dir="$(mktemp -d "${TMPDIR:-/tmp}/crossgate-pg.XXXXXX")"
    chown "$owner" "$dir" 2>/dev/null || true
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$bin/initdb" -D "$dir/data" -U crossgate --auth=trust -E UTF8 --no-locale >/dev/null
    # fsync stays on: the bench compares stores that both reach the disk.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
        "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200" \
        start >/dev/null
    printf 'dir=%q\nbin=%q\nowner=%q\n' "$dir" "$bin" "$owner" >"$state"
    say "started $("$bin/postgres" --version) on 127.0.0.1:$port as $owner"
    echo "export CROSSGATE_TEST_POSTGRES_URL='postgres://crossgate@127.0.0.1:$port/postgres'"
}

stop() {
    [[ -f "$state" ]] || return 0
    local dir bin owner
    # shellcheck disable=SC1090
    source "$state"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir" "$state"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
