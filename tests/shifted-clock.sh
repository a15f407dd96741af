#!/usr/bin/env bash
# The integration tests once more, with the wall clock 12 hours ahead
# (libfaketime), so that a test which holds only at some hours of the day
# (quiet hours, a date that changes) fails on every run, not on one evening
# in two. Monotonic time is left alone: timeouts and pacing stay real.
#
# libfaketime comes from Debian's packages when missing and we may install
# (root with apt); otherwise this says so and, under CI (CI=true), fails.
set -euo pipefail
say() { echo "shifted clock: $*" >&2; }

if ! command -v faketime >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing libfaketime from Debian's packages"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >&2
    else
        say "NOT RUN: libfaketime is not installed, and this user cannot install it"
        case "${CI:-}" in
        "" | false | 0) exit 0 ;;
        *) exit 1 ;;
        esac
    fi
fi

cargo=${CARGO:-cargo}
binary=$($cargo test -p crossgate --test it --no-run 2>&1 |
    sed -n 's/^ *Executable .*(\(.*\))$/\1/p')
[[ -x "$binary" ]] || { say "cannot find the integration test binary"; exit 1; }
say "the integration tests at $(FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f +12h date -u +%H:%M) UTC"
# As cargo runs them: from the gateway package's directory.
cd gateway
FAKETIME_DONT_FAKE_MONOTONIC=1 exec faketime -f +12h "../$binary"
