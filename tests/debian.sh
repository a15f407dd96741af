# Sourced by the test scripts: what they may take from Debian's packages, and
# whether CI runs them. The sourcing script defines `say`.

# Install PACKAGES (space-separated) when we may (root with apt-get);
# otherwise say why and fail. Two scripts installing at once (the database
# and the browser start together) wait for each other's lock.
debian_install() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        say "$1 is not installed, and this user cannot install it (needs root and apt-get)"
        return 1
    fi
    say "installing $1 from Debian's packages"
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    # shellcheck disable=SC2086 # several packages, space-separated
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends $1 >&2
}

# Whether CI (CI=true, as .ci/run sets) runs us: then nothing may be skipped.
in_ci() {
    case "${CI:-}" in
    "" | false | 0) return 1 ;;
    *) return 0 ;;
    esac
}
