#!/usr/bin/env bash
# Installs LiteLLM's proxy (scripts/bench/litellm-requirements.txt) into a virtualenv for
# `scripts/bench.sh --with-litellm`, and prints the path of its `litellm` command.
#
#   scripts/bench-litellm.sh VENV_DIR
#
# Reinstalls only when the requirements file changed (a stamp in the venv records it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${1:?usage: scripts/bench-litellm.sh VENV_DIR}
REQUIREMENTS=scripts/bench/litellm-requirements.txt
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    echo "bench-litellm: creating virtualenv $VENV" >&2
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
WANT=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    echo "bench-litellm: installing $REQUIREMENTS (a few minutes the first time)" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
    echo "$WANT" >"$STAMP"
fi
[ -x "$VENV/bin/litellm" ] || { echo "bench-litellm: $VENV/bin/litellm is missing" >&2; exit 1; }
printf '%s\n' "$VENV/bin/litellm"
