#!/usr/bin/env bash
# The integration tests once more, with the wall clock 12 hours ahead
# (libfaketime as cargo's runner for the test binary, not for cargo), so
# that a test which holds only at some hours of the day (quiet hours, a date
# that changes) fails on every run, not on one evening in two. Monotonic
# time is left alone: timeouts and pacing stay real.
#
# libfaketime comes from Debian's packages when missing and we may install
# it; otherwise this says so and, under CI, fails.
set -euo pipefail
say() { echo "shifted clock: $*" >&2; }
# shellcheck source=debian.sh
source "$(dirname "$0")/debian.sh"

if ! command -v faketime >/dev/null && ! debian_install faketime; then
    say "NOT RUN: the integration tests with the clock 12 hours ahead"
    in_ci && exit 1
    exit 0
fi
export FAKETIME_DONT_FAKE_MONOTONIC=1
say "the integration tests at $(faketime -f +12h date -u +%H:%M) UTC"
exec "${CARGO:-cargo}" --config "target.'cfg(all())'.runner = ['faketime', '-f', '+12h']" \
    test -p crossgate --test it
