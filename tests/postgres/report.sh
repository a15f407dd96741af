#!/usr/bin/env bash
# After the tests: say loudly when the PostgreSQL half did not run, and
# fail under CI (CI=true), which must never skip it.
set -euo pipefail
[[ -n "${CROSSGATE_TEST_POSTGRES_URL:-}" ]] && exit 0
cat >&2 <<'MSG'

############################################################################
##  NOT RUN: every PostgreSQL test (store::postgres::*, nodes::*,
##  migrations::postgres_*).
##  No PostgreSQL server was found or could be installed here.
##  Run them with a server you may create databases on:
##    CROSSGATE_TEST_POSTGRES_URL=postgres://USER@127.0.0.1:5432/postgres make test
############################################################################
MSG
# shellcheck source=../debian.sh
source "$(dirname "$0")/../debian.sh"
in_ci || exit 0
echo "CI=$CI: the PostgreSQL tests must run in CI; failing." >&2
exit 1
