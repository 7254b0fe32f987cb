# Shared by the benchmark scripts: messages, starting pinned servers and stopping exactly the
# processes a script started (by PID, on any exit). Source it after setting BENCH_NAME.
#
# A script calls `bench_init` once; it creates $TMP and installs the cleanup trap.

say() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() {
    say "$*"
    exit 1
}

bench_init() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local pid i alive
    # SIGTERM first, so that a server with children (nginx's master) takes them down with it;
    # SIGKILL for whatever is still there after 5 s.
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ "${KEEP_TMP:-0}" = 1 ] && say "kept $TMP" || rm -rf "$TMP"
}

# Stops a process this script started: SIGTERM, then SIGKILL after 10 s.
stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local kept=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    PIDS=("${kept[@]}")
}

# Waits (at most 15 s) until FILE has a line matching PATTERN (or PID dies); prints the match.
await_line() {
    local file=$1 pattern=$2 pid=$3 i line
    for ((i = 0; i < 150; i++)); do
        line=$(grep -o -m1 -E "$pattern" "$file" 2>/dev/null || true)
        if [ -n "$line" ]; then
            printf '%s\n' "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Starts a server (LABEL, pinned to CPU, output in BASE.out and BASE.err) and waits for the
# "listening on ADDR" line it prints on STREAM (out or err). Sets STARTED_PID and STARTED_ADDR.
start_server() {
    local label=$1 cpu=$2 base=$3 stream=$4
    shift 4
    taskset -c "$cpu" "$@" >"$base.out" 2>"$base.err" </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    local line
    line=$(await_line "$base.$stream" 'listening on [^ ]+' "$STARTED_PID") ||
        die "$label did not start: $(tail -n 20 "$base.err")"
    STARTED_ADDR=${line#listening on }
}

# Builds the workspace in release (unless BUILD=0), sets TARGET_DIR, and dies unless each
# named binary is there.
release_binaries() {
    if [ "${BUILD:-1}" = 1 ]; then
        say "cargo build --release --workspace"
        cargo build --release --workspace
    fi
    TARGET_DIR=$(cargo_target_dir)
    local bin
    for bin in "$@"; do
        [ -x "$TARGET_DIR/release/$bin" ] ||
            die "missing binary $TARGET_DIR/release/$bin (build it, or drop --skip-build)"
    done
}

# Cargo's target directory (CARGO_TARGET_DIR or the workspace's).
cargo_target_dir() {
    local dir
    dir=$(cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    [ -n "$dir" ] || die "cannot find cargo's target directory"
    printf '%s\n' "$dir"
}
