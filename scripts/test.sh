#!/usr/bin/env bash
# The one test command: formatting, lints, unit/integration tests, then the
# Anthropic SDK conformance suite against release builds.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CURRENT="setup"
section() {
    CURRENT=$1
    printf '\n==== %s ====\n' "$1"
}
trap 'rc=$?; if [ "$rc" -ne 0 ]; then printf "\n==== FAILED: %s (exit %s) ====\n" "$CURRENT" "$rc" >&2; fi' EXIT

section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

section "cargo test --workspace"
cargo test --workspace

section "conformance: Anthropic Python SDK against ringgate (scripts/conformance.sh)"
bash scripts/conformance.sh
