#!/usr/bin/env bash
# The one test command: formatting, lints, unit/integration tests, the Anthropic SDK
# conformance suite against release builds, a short run of every fuzz target (3 s each from the
# committed seeds, so that a regression a fuzzer finds quickly fails CI), a 60-second soak
# (faults, reloads, a drain; flat memory and descriptors), then a smoke run of the benchmark
# harness (it installs nginx and HAProxy when missing; it checks that the harness works, not the
# numbers).
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

section "fuzz: every target for 3 s, libFuzzer on stable (scripts/fuzz.sh --seconds 3)"
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
bash scripts/fuzz.sh --seconds 3

section "soak: 60 s of healthy and faulted traffic, reloads and a drain (scripts/soak.sh --minutes 1)"
bash scripts/soak.sh --minutes 1

section "benchmark harness smoke: ringgate (pass-through and kind = openai), nginx, HAProxy (scripts/bench.sh --smoke)"
bash scripts/bench.sh --smoke
