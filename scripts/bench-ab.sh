#!/usr/bin/env bash
# Two ringgate binaries, A and B, compared on this machine in interleaved runs (A, B, A, B, …)
# of three loads, so that the machine's drift falls on both alike:
#
#   scripts/bench-ab.sh A_BINARY B_BINARY [--runs N] [--seconds S] [--limits]
#
# --limits: both serve a client key (the one sseload sends), and B's key has every per-key limit
# and budget set, none ever reached (issue 18): with A and B the same binary, what the limits
# cost each request and event.
#
# Each binary serves one worker pinned to CPU 0 in front of mock-upstream (CPU 1), driven by
# sseload (CPU 1, epoll) for S seconds (default 5) per run, N runs each (default 3):
#   small   non-stream requests, 16 connections: CPU µs per request;
#   lane    streams of 64 deltas of 60 B every 20 ms, 16 at once: CPU µs per event;
#   bulk    streams of 500 deltas of 2 KiB back to back, 4 at once: CPU µs per event.
# Prints each run and the mean per binary. Builds nothing: A and B are paths (e.g. a worktree's
# target/release/ringgate and this one's); mock-upstream and sseload come from this checkout's
# release build. Listens on 127.0.0.1 only; stops only what it started.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BENCH_NAME=bench-ab
# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"

[ $# -ge 2 ] || die "usage: $0 A_BINARY B_BINARY [--runs N] [--seconds S]"
A=$1 B=$2
shift 2
RUNS=3 SECONDS_PER_RUN=5 LIMITS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?}; shift 2 ;;
        --seconds) SECONDS_PER_RUN=${2:?}; shift 2 ;;
        --limits) LIMITS=1; shift ;;
        *) die "unknown argument $1" ;;
    esac
done
for bin in "$A" "$B"; do [ -x "$bin" ] || die "not an executable: $bin"; done

release_binaries mock-upstream sseload
bench_init
start_server mock-upstream 1 "$TMP/mock" out "$TARGET_DIR/release/mock-upstream" --workers 1
UPSTREAM=$STARTED_ADDR

declare -A LOADS=(
    [small]="--concurrency 16"
    [lane]="--stream --concurrency 16 --deltas 64 --delta-bytes 60 --interval-ms 20"
    [bulk]="--stream --concurrency 4 --deltas 500 --delta-bytes 2048 --interval-ms 0"
)

# one LABEL BINARY LOAD RUN: one run; sets FIGURE to its CPU figure.
one() {
    local label=$1 bin=$2 load=$3 run=$4 json
    json="$TMP/$label-$load-$run.json"
    sed "s#@UPSTREAM@#$UPSTREAM#" >"$TMP/$label.toml" <<'EOF'
[server]
listen = "127.0.0.1:0"
workers = 1
[[upstreams]]
name = "mock"
kind = "anthropic"
base_url = "http://@UPSTREAM@"
[[upstreams.credentials]]
name = "k"
api_key = "bench"
EOF
    if [ "$LIMITS" = 1 ]; then
        printf '[[api_keys]]\nname = "bench"\nkey = "sk-bench"\n' >>"$TMP/$label.toml"
        [ "$label" = B ] && cat >>"$TMP/$label.toml" <<EOF
requests_per_minute = 4000000000
input_tokens_per_minute = 1000000000000
output_tokens_per_minute = 1000000000000
max_concurrent = 1000000
daily_usd = 10000000
monthly_usd = 10000000
[state]
dir = "$TMP/state-$load-$run"
EOF
    fi
    start_server "$label" 0 "$TMP/$label-$load-$run" err "$bin" serve --config "$TMP/$label.toml"
    # shellcheck disable=SC2086
    taskset -c 1 "$TARGET_DIR/release/sseload" --url "http://$STARTED_ADDR" --io-driver epoll \
        ${LOADS[$load]} --duration "$SECONDS_PER_RUN" --warmup 1 --cpu-pid "$STARTED_PID" \
        --json "$json" >/dev/null
    stop "$STARTED_PID"
    FIGURE=$(python3 -c '
import json, sys
cpu = json.load(open(sys.argv[1]))["cpu"]
print(cpu["cpu_us_per_event"] if sys.argv[2] != "small" else cpu["cpu_us_per_request"])
' "$json" "$load")
}

printf '| load | figure | A runs | A mean | B runs | B mean | B / A |\n|---|---|---|---|---|---|---|\n'
for load in small lane bulk; do
    a=() b=()
    for ((i = 1; i <= RUNS; i++)); do
        one A "$A" "$load" "$i"
        a+=("$FIGURE")
        one B "$B" "$load" "$i"
        b+=("$FIGURE")
    done
    python3 - "$load" "${a[*]}" "${b[*]}" <<'EOF'
import sys
load, a, b = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
figure = "CPU µs/request" if load == "small" else "CPU µs/event"
ma, mb = sum(a) / len(a), sum(b) / len(b)
runs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
print(f"| {load} | {figure} | {runs(a)} | {ma:.2f} | {runs(b)} | {mb:.2f} | {mb / ma:.3f}× |")
EOF
done
