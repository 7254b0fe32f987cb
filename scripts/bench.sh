#!/usr/bin/env bash
# ringgate side by side with nginx and HAProxy, in front of the same mock upstream, in one run.
#
#   scripts/bench.sh [--quick | --smoke] [--scenarios "1 2 3 4 5"] [--with-litellm] [--with-ccr]
#                    [--skip-build] [--keep-tmp]
#
# Builds release, installs nginx and HAProxy from the distribution's packages when missing
# (apt-get; sudo when not root), then starts, each with one worker or thread:
#   mock-upstream (the upstream of every target), ringgate (coalescing, the default),
#   ringgate in immediate mode (scenario 3 only), ringgate-openai (ringgate with a
#   `kind = "openai"` upstream: the same mock spoken to in the OpenAI Chat Completions dialect,
#   so every request and every event is translated; scenarios 1, 3, 4 and 5), ringgate-bedrock
#   (ringgate with a `kind = "bedrock"` upstream: the same mock as Claude on Bedrock, requests
#   reshaped and SigV4-signed, streams unwrapped from AWS event-stream frames; scenarios 1, 3
#   and 5), ringgate-limits (ringgate with every per-key limit and budget on, none reached:
#   scenarios 1 and 2), nginx
#   (proxy_buffering off, HTTP/1.1 keep-alive upstream), HAProxy (HTTP mode, its defaults)
# and drives each with sseload, target after target, scenario after scenario:
#   1. non-stream throughput, closed loop: requests/s, and the proxy's CPU µs per request
#      (its CPU-time clock, all threads and processes, over the measured window);
#   2. non-stream latency at a fixed open-loop rate: p50/p99 added over direct;
#   3. the stream lane (64 deltas x 60 B every 20 ms): time to first event, added delay per
#      event, client reads per event, the proxy's CPU µs per event, lost events;
#   4. concurrent long-lived streams on one worker: held, lost, resident KiB per stream;
#   5. bulk: 2 KiB events back to back, bytes/s and CPU per MB.
# --with-litellm adds LiteLLM's proxy (installed into <target>/litellm-venv by
# scripts/bench-litellm.sh, one uvicorn worker) to scenarios 1-3. It serves about a hundred small
# requests a second on one core, so scenario 2 offers it LITELLM_RATE requests/s instead of the
# others' rate (the table shows each target's offered rate). It also starts litellm-openai, a
# second LiteLLM whose model is the mock's OpenAI endpoint (scenarios 1 and 3): LiteLLM
# translating, as ringgate-openai does.
# --with-ccr adds claude-code-router (installed into <target>/ccr by scripts/bench-ccr.sh; one
# Node process) routing every request to the mock's OpenAI endpoint: scenarios 1 and 3, and 4
# with CCR_HOLD streams (fewer than the others). The report's "Translated lane" section puts
# the translating targets side by side.
# The proxy gets a core of its own (CPU 0); the mock and sseload share the rest. "direct" is
# sseload against the mock itself: the baseline every added latency is measured from.
#
# Prints a markdown table per scenario, with ratios to direct and to nginx, and writes every
# run's JSON and the tables to <cargo target dir>/bench/. The full run takes about 8 minutes,
# --quick (shorter runs, 2,000 held streams) about 2 minutes after the build (3 with
# --with-ccr --with-litellm), and --smoke (seconds; CI's check that the harness works, not of
# the numbers) under a minute.
#
# Scenario 4 holds 20,000 streams, or fewer where the open-files hard limit (`ulimit -Hn`)
# cannot give a proxy two descriptors per stream; the table says how many.
#
# Everything listens on 127.0.0.1 only; every load is bounded in time; the script stops only the
# processes it started (by PID, on any exit).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BENCH_NAME=bench
# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"

PROFILE=full
SCENARIOS="1 2 3 4 5"
BUILD=1
WITH_LITELLM=0
WITH_CCR=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) PROFILE=quick; shift ;;
        --smoke) PROFILE=smoke; shift ;;
        --scenarios) SCENARIOS=${2:?--scenarios needs a list, e.g. "1 3"}; shift 2 ;;
        --with-litellm) WITH_LITELLM=1; shift ;;
        --with-ccr) WITH_CCR=1; shift ;;
        --skip-build) BUILD=0; shift ;;
        --keep-tmp) export KEEP_TMP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
for s in $SCENARIOS; do
    case "$s" in [1-5]) ;; *) die "--scenarios takes numbers from 1 to 5, not $s" ;; esac
done

# The parameters of each profile. HOLD_* is scenario 4: streams, and a stream length well past
# the time to open them all at RAMP per second. CCR_HOLD is claude-code-router's scenario 4:
# it opens a stream in 2-3 ms of its one thread, so 2,000 take it about 6 s.
case "$PROFILE" in
    full)
        DURATION=10 WARMUP=1 CONCURRENCY=16 RATE=5000 STREAMS=32
        LANE_DELTAS=64 HOLD=20000 HOLD_DELTAS=20 HOLD_INTERVAL_MS=1000 RAMP=2000 BULK_DELTAS=1000
        LITELLM_RATE=50 CCR_HOLD=2000 ;;
    quick)
        DURATION=3 WARMUP=0.5 CONCURRENCY=16 RATE=2000 STREAMS=16
        LANE_DELTAS=64 HOLD=2000 HOLD_DELTAS=5 HOLD_INTERVAL_MS=1000 RAMP=2000 BULK_DELTAS=500
        LITELLM_RATE=50 CCR_HOLD=1000 ;;
    smoke)
        DURATION=1 WARMUP=0.2 CONCURRENCY=4 RATE=200 STREAMS=4
        LANE_DELTAS=8 HOLD=50 HOLD_DELTAS=3 HOLD_INTERVAL_MS=200 RAMP=2000 BULK_DELTAS=50
        LITELLM_RATE=10 CCR_HOLD=50 ;;
esac
# sseload's own I/O driver: epoll keeps up with wrk on loopback where io_uring's receive path
# costs the client ~20% (docs/BENCHMARKS.md); the proxies' drivers are their own business.
SSELOAD_IO_DRIVER=${SSELOAD_IO_DRIVER:-epoll}

bash "$ROOT/scripts/bench-deps.sh"

release_binaries ringgate mock-upstream sseload
GATEWAY=$TARGET_DIR/release/ringgate
MOCK=$TARGET_DIR/release/mock-upstream
SSELOAD=$TARGET_DIR/release/sseload
if [ "$WITH_LITELLM" = 1 ]; then
    LITELLM=$(bash "$ROOT/scripts/bench-litellm.sh" "$TARGET_DIR/litellm-venv")
    LITELLM_VERSION=$(sed -n 's/^litellm\[proxy\]==//p' "$ROOT/scripts/bench/litellm-requirements.txt")
fi
if [ "$WITH_CCR" = 1 ]; then
    CCR_CLI=$(bash "$ROOT/scripts/bench-ccr.sh" "$TARGET_DIR/ccr")
    CCR_VERSION=$(node -p "require('$(dirname "$CCR_CLI")/../package.json').version")
fi
OUT=$TARGET_DIR/bench
mkdir -p "$OUT"
rm -f "$OUT"/s[1-5]-*.json "$OUT"/results.md "$OUT"/meta.json

# Cores: the proxy alone on CPU 0; the mock on CPU 1; sseload on the rest (with the mock on a
# two-core machine).
CPUS=$(nproc)
PROXY_CPU=0
MOCK_CPU=$((CPUS > 1 ? 1 : 0))
if [ "$CPUS" -ge 3 ]; then LOAD_CPUS=2-$((CPUS - 1)); else LOAD_CPUS=$MOCK_CPU; fi
[ "$CPUS" -ge 2 ] || say "warning: one CPU: the proxy, the mock and the load share it"

# Two descriptors per proxied stream, and some to spare.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
HOLD_CAP=$(((NOFILE - 200) / 2))
if [ "$HOLD" -gt "$HOLD_CAP" ]; then
    say "open files hard limit $NOFILE: scenario 4 holds $HOLD_CAP streams instead of $HOLD"
    HOLD=$HOLD_CAP
fi
[ "$CCR_HOLD" -le "$HOLD" ] || CCR_HOLD=$HOLD
PROXY_CONNECTIONS=$((NOFILE - 100))

bench_init

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most SECONDS, default 15) until 127.0.0.1:PORT accepts connections, or PID dies.
await_port() {
    local port=$1 pid=$2 seconds=${3:-15} i
    for ((i = 0; i < seconds * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# fill TEMPLATE OUT NAME=VALUE...: the template with each @NAME@ replaced.
fill() {
    local template=$1 out=$2 pair
    shift 2
    cp "$template" "$out"
    for pair in "$@"; do
        sed -i "s#@${pair%%=*}@#${pair#*=}#g" "$out"
    done
}

say "profile $PROFILE; proxy on CPU $PROXY_CPU, mock on CPU $MOCK_CPU, sseload on CPU $LOAD_CPUS"
start_server mock-upstream "$MOCK_CPU" "$TMP/mock" out "$MOCK" --workers 1
MOCK_PID=$STARTED_PID
UPSTREAM_PORT=${STARTED_ADDR##*:}

declare -A URL PIDS_OF
URL[direct]=http://127.0.0.1:$UPSTREAM_PORT
PIDS_OF[direct]=$MOCK_PID

for mode in coalesce immediate; do
    name=ringgate
    [ "$mode" = immediate ] && name=ringgate-immediate
    port=$(free_port)
    fill "$ROOT/scripts/bench/ringgate.toml" "$TMP/$name.toml" \
        PORT="$port" UPSTREAM_PORT="$UPSTREAM_PORT" MODE="$mode"
    RUST_LOG=${RUST_LOG:-info} start_server "$name" "$PROXY_CPU" "$TMP/$name" err \
        "$GATEWAY" serve --config "$TMP/$name.toml"
    URL[$name]=http://127.0.0.1:$port
    PIDS_OF[$name]=$STARTED_PID
done

# The translated lane: the same gateway and flush settings, its upstream the mock's /v1 as an
# OpenAI-compatible server.
port=$(free_port)
fill "$ROOT/scripts/bench/ringgate-openai.toml" "$TMP/ringgate-openai.toml" \
    PORT="$port" UPSTREAM_PORT="$UPSTREAM_PORT"
RUST_LOG=${RUST_LOG:-info} start_server ringgate-openai "$PROXY_CPU" "$TMP/ringgate-openai" err \
    "$GATEWAY" serve --config "$TMP/ringgate-openai.toml"
URL[ringgate-openai]=http://127.0.0.1:$port
PIDS_OF[ringgate-openai]=$STARTED_PID

# The Bedrock lane: the same again, its upstream the mock's Bedrock paths.
port=$(free_port)
fill "$ROOT/scripts/bench/ringgate-bedrock.toml" "$TMP/ringgate-bedrock.toml" \
    PORT="$port" UPSTREAM_PORT="$UPSTREAM_PORT"
RUST_LOG=${RUST_LOG:-info} start_server ringgate-bedrock "$PROXY_CPU" "$TMP/ringgate-bedrock" err \
    "$GATEWAY" serve --config "$TMP/ringgate-bedrock.toml"
URL[ringgate-bedrock]=http://127.0.0.1:$port
PIDS_OF[ringgate-bedrock]=$STARTED_PID

# The limits lane: ringgate.toml with every limit and budget set on the bench key, none ever
# reached (scenarios 1 and 2).
port=$(free_port)
fill "$ROOT/scripts/bench/ringgate-limits.toml" "$TMP/ringgate-limits.toml" \
    PORT="$port" UPSTREAM_PORT="$UPSTREAM_PORT" STATE_DIR="$TMP/ringgate-limits-state"
RUST_LOG=${RUST_LOG:-info} start_server ringgate-limits "$PROXY_CPU" "$TMP/ringgate-limits" err \
    "$GATEWAY" serve --config "$TMP/ringgate-limits.toml"
URL[ringgate-limits]=http://127.0.0.1:$port
PIDS_OF[ringgate-limits]=$STARTED_PID

mkdir -p "$TMP/nginx"
port=$(free_port)
fill "$ROOT/scripts/bench/nginx.conf" "$TMP/nginx/nginx.conf" DIR="$TMP/nginx" \
    PORT="$port" UPSTREAM_PORT="$UPSTREAM_PORT" NOFILE="$NOFILE" CONNECTIONS="$PROXY_CONNECTIONS"
taskset -c "$PROXY_CPU" nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" \
    >"$TMP/nginx.out" 2>&1 </dev/null &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
await_port "$port" "$NGINX_PID" || die "nginx did not start: $(cat "$TMP/nginx.out" "$TMP/nginx/nginx.err" 2>/dev/null)"
URL[nginx]=http://127.0.0.1:$port
# The master and its worker: their CPU and memory together are nginx's.
for _ in $(seq 50); do pgrep -P "$NGINX_PID" >/dev/null && break; sleep 0.1; done
NGINX_WORKERS=$(pgrep -P "$NGINX_PID" | tr '\n' ' ')
PIDS_OF[nginx]="$NGINX_PID $NGINX_WORKERS"
# Started by this script too (through the master), so stopped by it whatever happens.
# shellcheck disable=SC2206
PIDS+=($NGINX_WORKERS)

port=$(free_port)
fill "$ROOT/scripts/bench/haproxy.cfg" "$TMP/haproxy.cfg" \
    PORT="$port" UPSTREAM_PORT="$UPSTREAM_PORT" CONNECTIONS="$(((NOFILE - 100) / 2))"
taskset -c "$PROXY_CPU" haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.out" 2>&1 </dev/null &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")
await_port "$port" "$HAPROXY_PID" || die "haproxy did not start: $(cat "$TMP/haproxy.out")"
URL[haproxy]=http://127.0.0.1:$port
PIDS_OF[haproxy]=$HAPROXY_PID

PROXIES="ringgate nginx haproxy"
# Scenarios 1-3 only: LiteLLM cannot hold thousands of streams or move bulk bytes in a run
# of bounded length.
LANE_PROXIES=$PROXIES
# The translating targets besides ringgate-openai (scenarios 1 and 3; ccr in 4 too).
TRANSLATORS=""

# start_litellm NAME CONFIG: a LiteLLM proxy with the CONFIG template, pinned to the proxy core.
start_litellm() {
    local name=$1 config=$2 port pid
    port=$(free_port)
    fill "$config" "$TMP/$name.yaml" UPSTREAM_PORT="$UPSTREAM_PORT"
    # The local copy of its model price list: the remote one is not reachable from everywhere,
    # and fetching it is not what is measured.
    LITELLM_LOCAL_MODEL_COST_MAP=True taskset -c "$PROXY_CPU" "$LITELLM" --config "$TMP/$name.yaml" \
        --host 127.0.0.1 --port "$port" --num_workers 1 >"$TMP/$name.out" 2>&1 </dev/null &
    pid=$!
    PIDS+=("$pid")
    await_port "$port" "$pid" 120 || die "$name did not start: $(tail -n 20 "$TMP/$name.out")"
    URL[$name]=http://127.0.0.1:$port
    PIDS_OF[$name]="$pid $(pgrep -P "$pid" | tr '\n' ' ' || true)"
}
if [ "$WITH_LITELLM" = 1 ]; then
    start_litellm litellm "$ROOT/scripts/bench/litellm.yaml"
    LANE_PROXIES="$PROXIES litellm"
    start_litellm litellm-openai "$ROOT/scripts/bench/litellm-openai.yaml"
    TRANSLATORS="litellm-openai"
fi
if [ "$WITH_CCR" = 1 ]; then
    # A HOME of its own: ccr reads HOME/.claude-code-router/config.json and keeps its PID file
    # there. The config routes every request to the mock's OpenAI endpoint, checks the client
    # key as the others do, and turns its log files off; nothing in it reaches past loopback
    # (ccr's update check runs only when its web UI asks for it).
    mkdir -p "$TMP/ccr-home/.claude-code-router"
    port=$(free_port)
    cp "$ROOT/scripts/bench/ccr-forward-headers.js" "$TMP/ccr-home/forward-mock-headers.js"
    fill "$ROOT/scripts/bench/ccr-config.json" "$TMP/ccr-home/.claude-code-router/config.json" \
        PORT="$port" UPSTREAM_PORT="$UPSTREAM_PORT" DIR="$TMP/ccr-home"
    HOME="$TMP/ccr-home" taskset -c "$PROXY_CPU" node "$CCR_CLI" start \
        >"$TMP/ccr.out" 2>&1 </dev/null &
    CCR_PID=$!
    PIDS+=("$CCR_PID")
    await_port "$port" "$CCR_PID" 60 || die "ccr did not start: $(tail -n 20 "$TMP/ccr.out")"
    URL[ccr]=http://127.0.0.1:$port
    PIDS_OF[ccr]="$CCR_PID $(pgrep -P "$CCR_PID" | tr '\n' ' ' || true)"
    TRANSLATORS="$TRANSLATORS ccr"
fi
# One streamed and one plain answer through each target, so a broken setup fails here.
for target in direct $LANE_PROXIES ringgate-immediate ringgate-openai ringgate-bedrock \
    ringgate-limits $TRANSLATORS; do
    timeout 30 "$SSELOAD" --url "${URL[$target]}" --requests 3 --warmup 0 --concurrency 1 \
        --io-driver "$SSELOAD_IO_DRIVER" --json "$TMP/check.json" >"$TMP/check.out" 2>&1 ||
        die "$target: the check run failed: $(cat "$TMP/check.out")"
    timeout 30 "$SSELOAD" --url "${URL[$target]}" --requests 2 --warmup 0 --concurrency 1 \
        --stream --deltas 4 --interval-ms 1 --io-driver "$SSELOAD_IO_DRIVER" \
        --json "$TMP/check-stream.json" >>"$TMP/check.out" 2>&1 ||
        die "$target: the streaming check run failed: $(cat "$TMP/check.out")"
    python3 "$ROOT/scripts/bench/report.py" --check "$TMP/check.json" "$TMP/check-stream.json" ||
        die "$target: the check requests failed: $(cat "$TMP/check.out")"
done

# load SCENARIO TARGET SSELOAD-ARGS...: one sseload run, its JSON in $OUT/sSCENARIO-TARGET.json.
load() {
    local scenario=$1 target=$2 pid pid_args=()
    shift 2
    for pid in ${PIDS_OF[$target]}; do pid_args+=(--cpu-pid "$pid" --rss-pid "$pid"); done
    say "scenario $scenario: $target"
    timeout --kill-after=10 900 taskset -c "$LOAD_CPUS" "$SSELOAD" --url "${URL[$target]}" \
        --label "$target" --io-driver "$SSELOAD_IO_DRIVER" "${pid_args[@]}" \
        --json "$OUT/s$scenario-$target.json" "$@" >"$TMP/s$scenario-$target.out" 2>&1 ||
        die "scenario $scenario, $target: sseload failed: $(tail -n 20 "$TMP/s$scenario-$target.out")"
}

for scenario in $SCENARIOS; do
    case "$scenario" in
        1) for t in direct $LANE_PROXIES ringgate-limits ringgate-openai ringgate-bedrock \
               $TRANSLATORS; do
               load 1 "$t" --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP"
           done ;;
        2) for t in direct $LANE_PROXIES ringgate-limits; do
               rate=$RATE
               [ "$t" = litellm ] && rate=$LITELLM_RATE
               load 2 "$t" --rate "$rate" --duration "$DURATION" --warmup "$WARMUP"
           done ;;
        3) for t in direct ringgate ringgate-immediate ringgate-openai ringgate-bedrock nginx haproxy \
               ${LITELLM:+litellm} $TRANSLATORS; do
               load 3 "$t" --stream --concurrency "$STREAMS" --deltas "$LANE_DELTAS" \
                   --delta-bytes 60 --interval-ms 20 --duration "$DURATION" --warmup "$WARMUP"
           done ;;
        4) for t in direct $PROXIES ringgate-openai ${CCR_CLI:+ccr}; do
               hold=$HOLD
               [ "$t" = ccr ] && hold=$CCR_HOLD
               load 4 "$t" --hold "$hold" --ramp "$RAMP" --deltas "$HOLD_DELTAS" \
                   --interval-ms "$HOLD_INTERVAL_MS"
           done ;;
        5) for t in direct $PROXIES ringgate-openai ringgate-bedrock; do
               load 5 "$t" --stream --concurrency 4 --deltas "$BULK_DELTAS" --delta-bytes 2048 \
                   --interval-ms 0 --duration "$DURATION" --warmup "$WARMUP"
           done ;;
    esac
done

cat >"$OUT/meta.json" <<EOF
{"profile": "$PROFILE", "cpus": $CPUS, "cpu_model": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)",
 "kernel": "$(uname -r)", "ringgate": "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)",
 "nginx": "$(nginx -v 2>&1 | sed 's#.*/##')", "haproxy": "$(haproxy -v | sed -n '1s/HAProxy version \([^ ]*\).*/\1/p')",
 "open_files": $NOFILE, "duration_s": $DURATION, "concurrency": $CONCURRENCY, "rate": $RATE,
 "streams": $STREAMS, "hold": $HOLD, "hold_deltas": $HOLD_DELTAS, "hold_interval_ms": $HOLD_INTERVAL_MS,
 "bulk_deltas": $BULK_DELTAS, "lane_deltas": $LANE_DELTAS, "sseload_io_driver": "$SSELOAD_IO_DRIVER",
 "litellm": "${LITELLM_VERSION:-}", "ccr": "${CCR_VERSION:-}", "ccr_hold": $CCR_HOLD}
EOF
python3 "$ROOT/scripts/bench/report.py" --out "$OUT" | tee "$OUT/results.md"
say "wrote $OUT/results.md and the runs' JSON in $OUT"
# Every run must have completed requests; the smoke run (CI's) also fails on any error or lost
# event, the others only say so (a loaded proxy may drop some, and that is a result).
if ! python3 "$ROOT/scripts/bench/report.py" --check "$OUT"/s[1-5]-*.json; then
    [ "$PROFILE" = smoke ] && die "some runs failed (above)"
    say "warning: some runs had errors or lost events (above)"
fi
