# Sourced by the test scripts: what they may take from Debian's packages, and
# whether CI runs them. The sourcing script defines `say`.

# Install PACKAGE when we may (root with apt-get); otherwise say why and fail.
debian_install() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        say "$1 is not installed, and this user cannot install it (needs root and apt-get)"
        return 1
    fi
    say "installing $1 from Debian's packages"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2
}

# Whether CI (CI=true, as .ci/run sets) runs us: then nothing may be skipped.
in_ci() {
    case "${CI:-}" in
    "" | false | 0) return 1 ;;
    *) return 0 ;;
    esac
}
