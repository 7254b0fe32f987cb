#!/usr/bin/env bash
# Installs claude-code-router (the npm package pinned below) for `scripts/bench.sh --with-ccr`
# into PREFIX with `npm --prefix`, when it is not there yet, and prints the path of its
# entry point, dist/cli.js.
#
#   scripts/bench-ccr.sh PREFIX
#
# bench.sh starts it as one Node process in the foreground:
#   HOME=DIR taskset -c CPU node PREFIX/node_modules/@musistudio/claude-code-router/dist/cli.js start
# `start` runs the server in that process (`ccr code` and `ccr restart` would spawn it detached),
# reading DIR/.claude-code-router/config.json (bench.sh fills scripts/bench/ccr-config.json) and
# writing its PID file there. Needs Node.js 20 or later and npm; the package bundles its
# dependencies (about 12 MB).
set -euo pipefail

PREFIX=${1:?usage: scripts/bench-ccr.sh PREFIX}
PACKAGE=@musistudio/claude-code-router
VERSION=2.0.0
CLI=$PREFIX/node_modules/$PACKAGE/dist/cli.js

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "bench-ccr: --with-ccr needs node (20 or later) and npm" >&2
    exit 1
fi
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || {
    echo "bench-ccr: $PACKAGE $VERSION needs Node.js 20 or later, not $(node --version)" >&2
    exit 1
}
installed=$(node -p "require('$PREFIX/node_modules/$PACKAGE/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$VERSION" ] || [ ! -f "$CLI" ]; then
    echo "bench-ccr: installing $PACKAGE@$VERSION into $PREFIX" >&2
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    timeout 600 npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
        "$PACKAGE@$VERSION" >&2
fi
[ -f "$CLI" ] || { echo "bench-ccr: $CLI is missing" >&2; exit 1; }
printf '%s\n' "$CLI"
