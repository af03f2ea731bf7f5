# Sourced by the scripts that install what they need from the distribution's packages.
#
# install_packages NAME...: installs the packages with apt-get, as root or through a sudo that
# asks for no password; returns 1 where there is no apt-get (the caller says what to do).
install_packages() {
    command -v apt-get >/dev/null 2>&1 || return 1
    local me="${0##*/}"
    echo "${me%.sh}: installing $* with apt-get" >&2
    if [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
    else
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
            sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
    fi
}
