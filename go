#!/usr/bin/env bash
# hastack's two entry points on a fresh Debian 12 machine, as root:
#   ./go up     install what is needed, bring the lab up on examples/seed.yml, deploy, print status
#   ./go test   install what is needed, run the whole test suite (unit, image checkers, lab tier)
#   ./go down   tear the lab down (leaves the image cache)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

HOST_PACKAGES=(debootstrap systemd-container iproute2 nftables iptables openssh-client openssh-server
               util-linux psmisc python3 python3-venv ca-certificates)
# openssh-server is for the transport tests, which start their own sshd on 127.0.0.1 by PID; the
# host's own ssh service is never started (see block_service_start).
TOPOLOGY="${HASTACK_TOPOLOGY:-examples/seed.yml}"

need_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: run as root (the lab creates network namespaces, bridges and containers)" >&2
        exit 1
    fi
}

install_host_packages() {
    local missing=()
    for p in "${HOST_PACKAGES[@]}"; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo ">> installing Debian packages: ${missing[*]}"
        apt-get update -qq
        block_service_start
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        unblock_service_start
    fi
}

# Packages must not start their services on this machine while they install (sshd, for one).
# A policy-rc.d that we create is removed right after; one that was already there is left alone.
OUR_POLICY=""
block_service_start() {
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        OUR_POLICY=1
        trap unblock_service_start EXIT
    fi
}
unblock_service_start() {
    if [[ -n "$OUR_POLICY" ]]; then rm -f /usr/sbin/policy-rc.d; OUR_POLICY=""; fi
}

install_python_deps() {
    if ! command -v uv >/dev/null 2>&1; then
        if [[ ! -x .tools/bin/uv ]]; then
            echo ">> installing uv into .tools/"
            python3 -m venv .tools
            .tools/bin/pip install -q uv
        fi
        export PATH="$PWD/.tools/bin:$PATH"
    fi
    # Bytecode ahead of time: with PYTHONDONTWRITEBYTECODE set (CI images often set it) every run
    # would compile ~360 modules again, 1.5 s of a 2 s `hastack status`.
    uv sync --frozen --quiet --compile-bytecode
    uv run --frozen python -m compileall -q src >/dev/null
}

setup() {
    need_root
    install_host_packages
    install_python_deps
}

case "${1:-}" in
    up)
        setup
        uv run hastack lab up "$TOPOLOGY"
        uv run hastack deploy "$TOPOLOGY" --yes
        uv run hastack status "$TOPOLOGY"
        ;;
    down)
        setup
        uv run hastack lab down "$TOPOLOGY"
        ;;
    test)
        setup
        shift
        uv run pytest "$@"
        ;;
    *)
        echo "usage: ./go up | ./go test [pytest args] | ./go down" >&2
        exit 2
        ;;
esac
