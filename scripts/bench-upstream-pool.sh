#!/usr/bin/env bash
# Gateway throughput in front of a TLS upstream, upstream pool on vs off, side by side.
#
#   scripts/bench-upstream-pool.sh [--duration S] [--connections N] [--no-pool-key] [--skip-build]
#
# Builds release, then runs two phases, each against a fresh `mock-upstream --tls-self-signed
# --stats` (pinned to CPU 1) and a fresh `ringgate serve` (one worker, pinned to CPU 0) trusting
# the mock's CA:
#   on:  [pool] max_idle_per_origin = 32
#   off: [pool] max_idle_per_origin = 0   (a new TLS connection per request)
# wrk (-t1, 16 connections by default, pinned to CPU 1 with the mock so the gateway's core is its
# own) POSTs a small non-streaming /v1/messages for S seconds (default 10). Prints a markdown
# table (requests/s, latency, the upstream's connection and request counts, reuse ratio =
# 1 - connections/requests) and the on/off ratio of requests/s; writes the same as JSON to
# <cargo target dir>/bench/upstream-pool.json. The upstream counts include one check request per
# phase, sent before the load.
#
# --no-pool-key leaves the [pool] section out of both configs, for a gateway that does not know
# the key yet (it rejects unknown keys): both phases then run the gateway's default, so the
# figures only check the harness. Environment: POOL_ON_SECTION / POOL_OFF_SECTION replace the
# two [pool] sections; WRK_CPUS (default 1) where wrk runs; UPSTREAM_HOST (default localhost).
#
# Everything listens on 127.0.0.1 only. Each phase is bounded in time, and the script stops only
# the processes it started (by PID; on any exit).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

DURATION=10
CONNECTIONS=16
POOL_KEY=1
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
        --connections) CONNECTIONS=${2:?--connections needs a number}; shift 2 ;;
        --no-pool-key) POOL_KEY=0; shift ;;
        --skip-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-upstream-pool: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$DURATION$CONNECTIONS" in
    *[!0-9]*) echo "bench-upstream-pool: --duration and --connections take whole numbers" >&2; exit 2 ;;
esac
POOL_ON_SECTION=${POOL_ON_SECTION:-$'[pool]\nmax_idle_per_origin = 32'}
POOL_OFF_SECTION=${POOL_OFF_SECTION:-$'[pool]\nmax_idle_per_origin = 0'}
WRK_CPUS=${WRK_CPUS:-1}
UPSTREAM_HOST=${UPSTREAM_HOST:-localhost}

BENCH_NAME=bench-upstream-pool
# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"

for tool in wrk taskset curl; do
    if ! command -v "$tool" >/dev/null; then
        case "$tool" in
            wrk) die "wrk is not installed; install it (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk) and rerun" ;;
            taskset) die "taskset is not installed; install util-linux and rerun" ;;
            *) die "$tool is not installed; install it and rerun" ;;
        esac
    fi
done
[ "$(nproc)" -ge 2 ] || say "warning: fewer than 2 CPUs; the pinned processes will share one"

release_binaries ringgate mock-upstream
GATEWAY=$TARGET_DIR/release/ringgate
MOCK=$TARGET_DIR/release/mock-upstream

bench_init

BODY='{"model":"claude-bench","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
cat >"$TMP/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "WRK_RESULT requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
EOF

# field NAME LINE: the value of NAME=VALUE in LINE.
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$2"; }

# One phase: MODE, the [pool] section (or nothing). Sets the R_* results.
phase() {
    local mode=$1 pool_section=$2
    local dir=$TMP/$mode
    mkdir -p "$dir"

    say "[$mode] starting mock-upstream (TLS) on CPU 1"
    start_server "[$mode] mock-upstream" 1 "$dir/mock" out \
        "$MOCK" --tls-self-signed "$dir" --stats --workers 1
    local mock_pid=$STARTED_PID
    local port=${STARTED_ADDR##*:}

    local config=$dir/ringgate.toml
    cat >"$config" <<EOF
[server]
listen = "127.0.0.1:0"
workers = 1
pin_cores = false

[[upstreams]]
name = "tls-mock"
kind = "anthropic"
base_url = "https://$UPSTREAM_HOST:$port"
ca_file = "$dir/ca.pem"

[[upstreams.credentials]]
name = "bench"
api_key = "sk-bench"

$pool_section
EOF
    local check
    if ! check=$("$GATEWAY" check --config "$config" 2>&1); then
        if [ -n "$pool_section" ] && grep -qi 'pool' <<<"$check"; then
            die "[$mode] this ringgate rejects the [pool] section (built without the upstream pool?):
$check
rerun with --no-pool-key to check the harness without it"
        fi
        die "[$mode] ringgate rejects the config $config: $check"
    fi

    say "[$mode] starting ringgate on CPU 0"
    RUST_LOG=${RUST_LOG:-info} start_server "[$mode] ringgate" 0 "$dir/gateway" err \
        "$GATEWAY" serve --config "$config"
    local gw_pid=$STARTED_PID gw_addr=$STARTED_ADDR

    # One request through to the upstream, so a broken setup fails here, not as wrk errors.
    local status
    status=$(curl -s -o "$dir/check.json" -w '%{http_code}' --max-time 10 \
        -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \
        --data "$BODY" "http://$gw_addr/v1/messages" || true)
    [ "$status" = 200 ] ||
        die "[$mode] a request through ringgate got '$status': $(cat "$dir/check.json" 2>/dev/null)
$(tail -n 20 "$dir/gateway.err")"

    say "[$mode] wrk -t1 -c$CONNECTIONS -d${DURATION}s (CPUs $WRK_CPUS) against $gw_addr"
    timeout --kill-after=5 $((DURATION + 30)) taskset -c "$WRK_CPUS" \
        wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$TMP/post.lua" \
        "http://$gw_addr/v1/messages" >"$dir/wrk.out" 2>&1 ||
        die "[$mode] wrk failed or timed out: $(cat "$dir/wrk.out")"
    local result
    result=$(grep '^WRK_RESULT' "$dir/wrk.out") || die "[$mode] no result from wrk: $(cat "$dir/wrk.out")"

    stop "$gw_pid"
    stop "$mock_pid"
    local stats
    stats=$(grep -o 'connections=[0-9]* requests=[0-9]*' "$dir/mock.err") ||
        die "[$mode] mock-upstream printed no stats: $(cat "$dir/mock.err")"

    R_REQUESTS=$(field requests "$result")
    R_DURATION_US=$(field duration_us "$result")
    R_STATUS_ERRORS=$(field status_errors "$result")
    R_SOCKET_ERRORS=$(field socket_errors "$result")
    R_P50_US=$(field p50_us "$result")
    R_P99_US=$(field p99_us "$result")
    R_UP_CONNECTIONS=$(field connections "$stats")
    R_UP_REQUESTS=$(field requests "$stats")
    R_RPS=$(awk -v r="$R_REQUESTS" -v us="$R_DURATION_US" 'BEGIN { printf "%.1f", (us > 0 ? r * 1e6 / us : 0) }')
    R_REUSE=$(awk -v c="$R_UP_CONNECTIONS" -v r="$R_UP_REQUESTS" 'BEGIN { printf "%.4f", (r > 0 ? 1 - c / r : 0) }')
    if [ "$R_STATUS_ERRORS" != 0 ] || [ "$R_SOCKET_ERRORS" != 0 ]; then
        say "[$mode] warning: $R_STATUS_ERRORS non-2xx answers and $R_SOCKET_ERRORS socket errors (see $dir/wrk.out)"
    fi
    say "[$mode] $R_RPS requests/s; upstream: $stats"
}

if [ "$POOL_KEY" = 1 ]; then
    ON_SECTION=$POOL_ON_SECTION
    OFF_SECTION=$POOL_OFF_SECTION
else
    say "--no-pool-key: both phases run without a [pool] section (the gateway's default); a harness check only"
    ON_SECTION=""
    OFF_SECTION=""
fi

declare -A RESULT
for mode in on off; do
    if [ "$mode" = on ]; then phase on "$ON_SECTION"; else phase off "$OFF_SECTION"; fi
    for key in RPS REQUESTS DURATION_US STATUS_ERRORS SOCKET_ERRORS P50_US P99_US UP_CONNECTIONS UP_REQUESTS REUSE; do
        var=R_$key
        RESULT[$mode.$key]=${!var}
    done
done
RATIO=$(awk -v on="${RESULT[on.RPS]}" -v off="${RESULT[off.RPS]}" 'BEGIN { printf "%.2f", (off > 0 ? on / off : 0) }')

label() {
    if [ "$POOL_KEY" = 0 ]; then
        echo "$1 (no [pool] key)"
    elif [ "$1" = on ]; then
        echo "pool on (max_idle_per_origin = 32)"
    else
        echo "pool off (max_idle_per_origin = 0)"
    fi
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

echo
echo "Gateway (1 worker, CPU 0) -> TLS mock-upstream (1 worker, CPU 1); wrk -t1 -c$CONNECTIONS, ${DURATION}s, non-streaming POST /v1/messages"
echo
echo "| mode | requests/s | p50 ms | p99 ms | upstream connections | upstream requests | reuse ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for mode in on off; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(label $mode)" "${RESULT[$mode.RPS]}" \
        "$(ms "${RESULT[$mode.P50_US]}")" "$(ms "${RESULT[$mode.P99_US]}")" \
        "${RESULT[$mode.UP_CONNECTIONS]}" "${RESULT[$mode.UP_REQUESTS]}" "${RESULT[$mode.REUSE]}"
done
echo
echo "requests/s on/off: $RATIO"

OUT_DIR=$TARGET_DIR/bench
mkdir -p "$OUT_DIR"
json_phase() {
    local mode=$1
    printf '{"mode":"%s","requests_per_s":%s,"requests":%s,"duration_us":%s,"p50_us":%s,"p99_us":%s,"status_errors":%s,"socket_errors":%s,"upstream_connections":%s,"upstream_requests":%s,"reuse_ratio":%s}' \
        "$mode" "${RESULT[$mode.RPS]}" "${RESULT[$mode.REQUESTS]}" "${RESULT[$mode.DURATION_US]}" \
        "${RESULT[$mode.P50_US]}" "${RESULT[$mode.P99_US]}" "${RESULT[$mode.STATUS_ERRORS]}" \
        "${RESULT[$mode.SOCKET_ERRORS]}" "${RESULT[$mode.UP_CONNECTIONS]}" \
        "${RESULT[$mode.UP_REQUESTS]}" "${RESULT[$mode.REUSE]}"
}
cat >"$OUT_DIR/upstream-pool.json" <<EOF
{
  "duration_s": $DURATION,
  "connections": $CONNECTIONS,
  "pool_key": $([ "$POOL_KEY" = 1 ] && echo true || echo false),
  "on": $(json_phase on),
  "off": $(json_phase off),
  "rps_on_over_off": $RATIO
}
EOF
say "wrote $OUT_DIR/upstream-pool.json"
