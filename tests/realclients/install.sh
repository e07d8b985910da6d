#!/usr/bin/env bash
# Installs the real clients that `pytest -m realclients tests/realclients` drives:
# Debian's Chromium (headless, driven over the DevTools protocol) and npm's wscat,
# the latter into tests/realclients/node_modules (gitignored).
# Run as root on Debian (or with sudo available). Safe to run again. wscat is pinned: the
# tests read its output (`error: Unexpected server response: 401`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
packages=()
[ -x /usr/lib/chromium/chromium ] || packages+=(chromium)
# Debian's npm brings nodejs; a machine whose nodejs already ships npm needs neither.
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ "${#packages[@]}" -gt 0 ]; then
    $sudo apt-get update
    $sudo apt-get install -y --no-install-recommends "${packages[@]}"
fi

if ! [ -x "$here/node_modules/.bin/wscat" ]; then
    npm install --prefix "$here" --no-save --no-audit --no-fund wscat@6.1.0
fi

/usr/lib/chromium/chromium --version
"$here/node_modules/.bin/wscat" --version
