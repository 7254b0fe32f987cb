#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that read untrusted bytes (docs/RELIABILITY.md).
#
#   scripts/fuzz.sh [--seconds N] [TARGET…]    (default: every target in fuzz/fuzz_targets, 60 s each)
#
# The engine is libFuzzer, linked through the libfuzzer-sys crate (which compiles libFuzzer's C++
# sources with the system C++ compiler) and driven without cargo-fuzz: cargo builds the targets
# with the same SanitizerCoverage flags cargo-fuzz passes for `--sanitizer none`, none of them a
# `-Z` flag, so the stable toolchain is enough. Builds go to target/fuzz/build, the corpus grown
# by a run to target/fuzz/corpus/<target> (the committed seeds in fuzz/corpus/<target> are read,
# never written), crashes to target/fuzz/artifacts/<target>/, logs to target/fuzz/logs/.
# Prints, per target, the executions, libFuzzer's coverage figures (cov: edges, ft: features) and
# the crashes; exits non-zero if any target crashed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_EACH=60
TARGETS=()
while [ $# -gt 0 ]; do
    case $1 in
    --seconds)
        SECONDS_EACH=${2:?--seconds needs a value}
        shift 2
        ;;
    --seconds=*)
        SECONDS_EACH=${1#--seconds=}
        shift
        ;;
    -h | --help)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*)
        echo "fuzz.sh: unknown option $1" >&2
        exit 2
        ;;
    *)
        TARGETS+=("$1")
        shift
        ;;
    esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
    for f in fuzz/fuzz_targets/*.rs; do
        TARGETS+=("$(basename "$f" .rs)")
    done
fi
for t in "${TARGETS[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
        echo "fuzz.sh: no target $t (see fuzz/fuzz_targets/)" >&2
        exit 2
    fi
done

# libfuzzer-sys compiles libFuzzer (C++) with the `cc` crate: a C++ compiler is needed.
if ! command -v "${CXX:-c++}" >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 &&
    ! command -v clang++ >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "fuzz.sh: installing a C++ compiler (g++) for libFuzzer"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
    else
        echo "fuzz.sh: a C++ compiler (c++, g++ or clang++) is needed to build libFuzzer" >&2
        exit 1
    fi
fi

HOST=$(rustc -vV | sed -n 's/^host: //p')
OUT=target/fuzz
BUILD=$OUT/build
# What `cargo fuzz build --sanitizer none` passes, all stable: SanitizerCoverage's 8-bit edge
# counters, the PC table and comparison tracing libFuzzer's coverage guidance reads, and the
# `fuzzing` cfg. `--target` keeps them off build scripts and proc macros (which are not linked
# with libFuzzer). Assertions stay on (fuzz/Cargo.toml's profile).
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing"
BINS=()
for t in "${TARGETS[@]}"; do BINS+=(--bin "$t"); done
echo "fuzz.sh: building ${#TARGETS[@]} target(s) for $HOST (stable, libFuzzer via libfuzzer-sys)"
cargo build --locked --release --manifest-path fuzz/Cargo.toml --target "$HOST" \
    --target-dir "$BUILD" "${BINS[@]}"

# Options per target: the scanners' memory bounds are only worth checking on bodies longer than
# the bound itself.
options_for() {
    case $1 in
    usage_scanner) echo "-max_len=65536" ;;
    batch_body | sse_scanner | eventstream) echo "-max_len=16384" ;;
    *) echo "-max_len=8192" ;;
    esac
}

mkdir -p "$OUT/logs"
declare -A EXECS COV FT CRASHES
failed=0
for t in "${TARGETS[@]}"; do
    corpus=$OUT/corpus/$t
    artifacts=$OUT/artifacts/$t
    log=$OUT/logs/$t.log
    mkdir -p "$corpus" "$artifacts"
    before=$(find "$artifacts" -type f | wc -l)
    seeds=()
    [ -d "fuzz/corpus/$t" ] && seeds=("fuzz/corpus/$t")
    echo "fuzz.sh: $t for ${SECONDS_EACH}s (log: $log)"
    rc=0
    # shellcheck disable=SC2046
    "$BUILD/$HOST/release/$t" "$corpus" "${seeds[@]}" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" $(options_for "$t") \
        >"$log" 2>&1 || rc=$?
    after=$(find "$artifacts" -type f | wc -l)
    EXECS[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    line=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    COV[$t]=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")
    FT[$t]=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
    CRASHES[$t]=$((after - before))
    if [ "$rc" -ne 0 ] || [ "${CRASHES[$t]}" -ne 0 ]; then
        failed=1
        [ "${CRASHES[$t]}" -eq 0 ] && CRASHES[$t]="? (exit $rc)"
        echo "fuzz.sh: $t FAILED; the end of its log:" >&2
        grep -v -E '^#[0-9]+' "$log" | tail -40 >&2
    fi
done

printf '\n%-16s %14s %8s %8s  %s\n' target executions cov ft crashes
for t in "${TARGETS[@]}"; do
    printf '%-16s %14s %8s %8s  %s\n' "$t" "${EXECS[$t]:-?}" "${COV[$t]:-?}" "${FT[$t]:-?}" \
        "${CRASHES[$t]}"
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: crashes are in $OUT/artifacts/<target>/; rerun one with" \
        "$BUILD/$HOST/release/<target> <file>" >&2
    exit 1
fi
