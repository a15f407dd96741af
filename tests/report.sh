#!/usr/bin/env bash
# After the tests: say loudly which real parts were missing, so their tests
# did not run (PostgreSQL: store::postgres::*, nodes::*, migrations::postgres_*
# and the several-node browser test; a browser: browser::*), and fail under
# CI (CI=true), which must never skip them.
set -euo pipefail
missing=()
[[ -n "${CROSSGATE_TEST_POSTGRES_URL:-}" ]] || missing+=("PostgreSQL (set CROSSGATE_TEST_POSTGRES_URL=postgres://USER@127.0.0.1:5432/postgres)")
[[ -n "${CROSSGATE_TEST_WEBDRIVER_URL:-}" ]] || missing+=("a browser (install chromium and chromium-driver, or set CROSSGATE_TEST_WEBDRIVER_URL to a running chromedriver)")
[[ ${#missing[@]} -eq 0 ]] && exit 0
{
    echo
    echo "############################################################################"
    echo "##  NOT RUN: the tests that need"
    for part in "${missing[@]}"; do
        echo "##    - $part"
    done
    echo "##  make test installs both from Debian's packages when it runs as root."
    echo "############################################################################"
} >&2
# shellcheck source=debian.sh
source "$(dirname "$0")/debian.sh"
in_ci || exit 0
echo "CI=$CI: every real part must be there in CI; failing." >&2
exit 1
