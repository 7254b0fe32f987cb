#!/usr/bin/env bash
# SDK conformance suite: drives release builds of `ringgate` and `mock-upstream`
# with the official Anthropic Python SDK, and the mock's OpenAI dialect with the
# official OpenAI Python SDK (tests/conformance); the Bedrock and Vertex dialects
# are checked against botocore's SigV4 and google-auth's JWT verification.
#
#   scripts/conformance.sh [PYTEST ARGS...]
#
# Creates target/conformance-venv on first use (and refreshes it whenever
# tests/conformance/requirements.txt changes), builds the release binaries,
# then runs pytest. Environment:
#   PYTHON                  interpreter used to create the venv (default python3)
#   CONFORMANCE_SKIP_BUILD  set to 1 to reuse already-built binaries
#   RINGGATE_BIN / MOCK_UPSTREAM_BIN  override the binaries under test
# Process logs of the last run are kept in target/conformance-logs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
REQUIREMENTS="$ROOT/tests/conformance/requirements.txt"
PYTHON=${PYTHON:-python3}

# --- Python environment ------------------------------------------------------
VENV="$ROOT/target/conformance-venv"
if [ ! -x "$VENV/bin/python" ]; then
    echo "conformance: creating virtualenv $VENV"
    rm -rf "$VENV"
    mkdir -p "$ROOT/target"
    "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
WANT=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    echo "conformance: installing tests/conformance/requirements.txt into the virtualenv"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$WANT" >"$STAMP"
fi
"$VENV/bin/python" - <<'PY'
import anthropic, openai, pytest
import botocore, cryptography, google.auth
print(f"conformance: anthropic {anthropic.__version__}, openai {openai.__version__}, pytest {pytest.__version__}")
print(f"conformance: oracles botocore {botocore.__version__}, google-auth {google.auth.__version__}, "
      f"cryptography {cryptography.__version__}")
PY

# --- binaries ----------------------------------------------------------------
if [ "${CONFORMANCE_SKIP_BUILD:-0}" != "1" ]; then
    echo "conformance: cargo build --release --workspace --bins"
    cargo build --release --workspace --bins
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export RINGGATE_BIN=${RINGGATE_BIN:-$TARGET_DIR/release/ringgate}
export MOCK_UPSTREAM_BIN=${MOCK_UPSTREAM_BIN:-$TARGET_DIR/release/mock-upstream}
for bin in "$RINGGATE_BIN" "$MOCK_UPSTREAM_BIN"; do
    if [ ! -x "$bin" ]; then
        echo "conformance: missing binary $bin" >&2
        exit 1
    fi
done

# --- run ---------------------------------------------------------------------
LOG_DIR="$ROOT/target/conformance-logs"
rm -rf "$LOG_DIR"
mkdir -p "$LOG_DIR"
export RINGGATE_CONFORMANCE_LOG_DIR=$LOG_DIR
export PYTHONDONTWRITEBYTECODE=1

status=0
"$VENV/bin/python" -m pytest "$ROOT/tests/conformance" "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo >&2
    echo "conformance: pytest exited with $status; last lines of each process log in $LOG_DIR:" >&2
    for log in "$LOG_DIR"/*.log; do
        [ -s "$log" ] || continue
        echo "--- $log" >&2
        tail -n 30 "$log" >&2
    done
    exit "$status"
fi
