#!/usr/bin/env bash
# Installs what scripts/bench.sh compares against and drives with, when missing: nginx, HAProxy,
# taskset (util-linux), curl and python3, from the distribution's packages (apt-get; sudo when
# not root). Does nothing when all are there.
set -euo pipefail

missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v taskset >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bench-deps: installing ${missing[*]}" >&2
if ! command -v apt-get >/dev/null; then
    echo "bench-deps: no apt-get here: install ${missing[*]} with your package manager and rerun" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || {
        echo "bench-deps: installing ${missing[*]} needs root (or sudo)" >&2
        exit 1
    }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# Only the binaries are wanted: the packages' own services (if an init system starts them on
# install) are not used; bench.sh runs its own instances on other ports.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
