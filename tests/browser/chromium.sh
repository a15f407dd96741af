#!/usr/bin/env bash
# Headless Chromium and its WebDriver (chromedriver), from Debian's packages,
# for the tests of what people see in a browser (the inbox web component,
# the preference page).
#
#   tests/browser/chromium.sh start   prints `export CROSSGATE_TEST_WEBDRIVER_URL=...`
#                                     (nothing when Chromium cannot be had)
#   tests/browser/chromium.sh stop    stops the driver
#
# The packages are installed when missing and we may (root with apt). A URL
# already in the environment is used as it is and nothing is started.
set -euo pipefail

state="${CROSSGATE_BROWSER_STATE:-${TMPDIR:-/tmp}/crossgate-webdriver-$(id -u).env}"
say() { echo "browser: $*" >&2; }
# shellcheck source=../debian.sh
source "$(dirname "$0")/../debian.sh"

driver_bin() {
    command -v chromedriver || { [[ -x /usr/bin/chromedriver ]] && echo /usr/bin/chromedriver; }
}

start() {
    if [[ -n "${CROSSGATE_TEST_WEBDRIVER_URL:-}" ]]; then
        say "using CROSSGATE_TEST_WEBDRIVER_URL from the environment"
        echo "export CROSSGATE_TEST_WEBDRIVER_URL='$CROSSGATE_TEST_WEBDRIVER_URL'"
        return
    fi
    [[ -f "$state" ]] && stop
    if [[ -z "$(driver_bin || true)" ]] || ! command -v chromium >/dev/null; then
        debian_install "chromium chromium-driver" || return 0
    fi
    local driver port pid
    driver="$(driver_bin)"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$driver" --port="$port" --allowed-ips=127.0.0.1 --log-level=WARNING >/dev/null 2>&1 &
    pid=$!
    # Ready when it answers /status (bounded: 10 s).
    for _ in $(seq 100); do
        if python3 - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/status", timeout=1).read()
PY
            break
        fi
        sleep 0.1
    done
    printf 'pid=%q\n' "$pid" >"$state"
    say "started $("$driver" --version | head -1) on 127.0.0.1:$port ($(chromium --version 2>/dev/null | head -1))"
    echo "export CROSSGATE_TEST_WEBDRIVER_URL='http://127.0.0.1:$port'"
}

stop() {
    [[ -f "$state" ]] || return 0
    local pid
    # shellcheck disable=SC1090
    source "$state"
    kill "$pid" 2>/dev/null || true
    rm -f "$state"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
