#!/usr/bin/env bash
# Soak test: a release ringgate in front of mock-upstream for N minutes (default 10) under a
# steady mix of healthy and faulted traffic, clients that abort or stop reading, a config reload
# every 30 s and a drain at the end; samples the gateway's RSS, descriptors and connections every
# second (docs/RELIABILITY.md, "Soak", says what passes).
#
#   scripts/soak.sh [--minutes N] [--rate R] [--seed S]
#
# Writes target/soak/soak.json (every sample, counts, verdicts), target/soak/soak.svg (the plot)
# and the processes' logs; exits non-zero when any verdict fails. Needs only python3 (standard
# library). Environment:
#   SOAK_SKIP_BUILD=1                 reuse already-built binaries
#   RINGGATE_BIN / MOCK_UPSTREAM_BIN  override the binaries under test
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}

if [ "${SOAK_SKIP_BUILD:-0}" != "1" ]; then
    echo "soak: cargo build --release --workspace --bins"
    cargo build --release --workspace --bins
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
RINGGATE_BIN=${RINGGATE_BIN:-$TARGET_DIR/release/ringgate}
MOCK_UPSTREAM_BIN=${MOCK_UPSTREAM_BIN:-$TARGET_DIR/release/mock-upstream}
for bin in "$RINGGATE_BIN" "$MOCK_UPSTREAM_BIN"; do
    if [ ! -x "$bin" ]; then
        echo "soak: missing binary $bin" >&2
        exit 1
    fi
done

export PYTHONDONTWRITEBYTECODE=1
exec "$PYTHON" "$ROOT/scripts/soak/soak.py" --ringgate "$RINGGATE_BIN" --mock "$MOCK_UPSTREAM_BIN" \
    --out "$TARGET_DIR/soak" "$@"
