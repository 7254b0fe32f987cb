#!/usr/bin/env bash
# Runs Claude Code (`claude -p`, non-interactive print mode) as a client of a ringgate gateway,
# fully offline, with a pinned version installed under target/claude-code.
#
#   scripts/claude-code.sh --install-only
#   scripts/claude-code.sh BASE_URL PROMPT [EXTRA CLAUDE ARGS...]
#
# --install-only installs the pinned `@anthropic-ai/claude-code` npm package into
# target/claude-code (only when that version is not already there) and prints its version.
# Otherwise it installs likewise, then runs `claude -p PROMPT [EXTRA...]` against BASE_URL
# (e.g. http://127.0.0.1:8080) in a fresh empty working directory, with a throwaway HOME and
# config directory, a timeout, and stdin closed. Claude Code's stdout and stderr pass through;
# the exit status is claude's (124 when the timeout killed it). Useful extra arguments:
# `--output-format json` (one object; success is `"is_error": false`, the text is `result`;
# `subtype` stays "success" even on an API error), `--output-format stream-json --verbose`,
# `--model M`, and `--bare` (a minimal request whose last user message ends with PROMPT, so
# the built-in mock's echo ends with it; without --bare the mock echoes only the first 256
# words of Claude Code's own system reminders and never reaches the prompt).
#
# Version: 2.1.153. Since 2.1.114 at the latest (2.1.88 still had one) the package ships no
# cli.js: its postinstall copies a native (Bun) binary from the platform package
# `@anthropic-ai/claude-code-linux-x64` (an npm optionalDependency, fetched from the npm registry
# like any package), so nothing is downloaded at first run and Node's version does not matter
# (only the postinstall runs on Node; 2.1.201 and later declare node >= 22, a mere npm warning).
# 2.1.154 and later (up to 2.1.332 at least) default to a model (claude-opus-4-8, then
# claude-opus-5-5) for which they send mid-conversation `{"role":"system"}` messages (beta
# mid-conversation-system-2026-04-07 / per-turn-control-2026-07-01); the built-in mock answers
# those with 400 "each message needs a role of \"user\" or \"assistant\"", a refusal Claude Code
# does not recognise, so it gives up: `API Error: 400 ...`. Those versions work with an older
# model (`--model claude-opus-4-7`, `--model sonnet`). 2.1.153 is the newest whose default
# model (claude-opus-4-7) works against the mock as it is.
#
# Environment (everything else of the caller's environment is dropped, so a surrounding
# Claude Code session or a real ANTHROPIC_API_KEY cannot leak in):
#   RINGGATE_CC_VERSION      npm version to install and run (default 2.1.153)
#   RINGGATE_CC_TIMEOUT      seconds before claude is killed (default 120)
#   RINGGATE_CC_API_KEY      key Claude Code sends as `x-api-key` (default a dummy; the gateway
#                            replaces it, or checks it against its [[api_keys]])
#   RINGGATE_CC_AUTH_TOKEN   if set, sent as `Authorization: Bearer` instead of any x-api-key
#   RINGGATE_CC_MAX_RETRIES  Claude Code's retries of a failed request (default 2; its own
#                            default, 10 with backoff, outlasts the timeout when the gateway
#                            is down)
#   RINGGATE_CC_KEEP_TMP     set to 1 to keep the temporary HOME/work directory (its path goes
#                            to stderr): session transcript under home/.claude/projects
#   Passed through when set: ANTHROPIC_MODEL, ANTHROPIC_SMALL_FAST_MODEL,
#   ANTHROPIC_DEFAULT_{OPUS,SONNET,HAIKU}_MODEL, ANTHROPIC_CUSTOM_HEADERS (newline-separated
#   `Name: value`; e.g. `x-mock-event-interval-ms: 0` makes the mock stream without its 20 ms
#   pause per word, a run then takes ~0.5 s instead of ~6 s), ANTHROPIC_BETAS, API_TIMEOUT_MS,
#   CLAUDE_CODE_MAX_OUTPUT_TOKENS, MAX_THINKING_TOKENS, CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VERSION=${RINGGATE_CC_VERSION:-2.1.153}
TIMEOUT=${RINGGATE_CC_TIMEOUT:-120}
PREFIX="$ROOT/target/claude-code"
PKG_DIR="$PREFIX/node_modules/@anthropic-ai/claude-code"
CLAUDE="$PREFIX/node_modules/.bin/claude"

usage() {
    echo "usage: $0 --install-only | BASE_URL PROMPT [EXTRA CLAUDE ARGS...]" >&2
    exit 2
}

installed_version() {
    [ -x "$CLAUDE" ] || return 0
    # `claude --version` prints e.g. "2.1.153 (Claude Code)"; the placeholder that stands in
    # for the native binary when the postinstall did not run fails instead.
    HOME="$PREFIX" timeout 60 "$CLAUDE" --version 2>/dev/null </dev/null | awk '{print $1}' || true
}

# --- install -----------------------------------------------------------------
install() {
    mkdir -p "$ROOT/target"
    exec 9>"$ROOT/target/claude-code.lock"
    flock 9 # one installer at a time (tests may run in parallel)
    if [ "$(installed_version)" = "$VERSION" ]; then
        exec 9>&-
        return
    fi
    echo "claude-code: installing @anthropic-ai/claude-code@$VERSION into $PREFIX" >&2
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    timeout 600 npm install --prefix "$PREFIX" "@anthropic-ai/claude-code@$VERSION" \
        --no-audit --no-fund --loglevel=error >&2
    if [ "$(installed_version)" != "$VERSION" ] && [ -f "$PKG_DIR/install.cjs" ]; then
        # npm skipped the postinstall (ignore-scripts in an npmrc): it only copies the binary
        # of the platform package, already installed, over the placeholder.
        echo "claude-code: running the package's postinstall by hand" >&2
        (cd "$PKG_DIR" && timeout 120 node install.cjs >&2)
    fi
    local got
    got=$(installed_version)
    if [ "$got" != "$VERSION" ]; then
        echo "claude-code: installed claude reports version '${got}', expected $VERSION" >&2
        exit 1
    fi
    exec 9>&-
}

if [ $# -eq 1 ] && [ "$1" = "--install-only" ]; then
    install
    installed_version
    exit 0
fi
[ $# -ge 2 ] || usage
BASE_URL=$1
PROMPT=$2
shift 2
case "$BASE_URL" in
    http://* | https://*) ;;
    *) usage ;;
esac
install

# --- throwaway home ------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ringgate-claude-code.XXXXXX")
if [ "${RINGGATE_CC_KEEP_TMP:-0}" = "1" ]; then
    echo "claude-code: keeping $TMP" >&2
else
    trap 'rm -rf "$TMP"' EXIT
fi
mkdir -p "$TMP/home/.claude" "$TMP/tmp" "$TMP/work"

ENV=(
    "PATH=$PATH"
    "LANG=C.UTF-8"
    "SHELL=$(command -v bash)"
    "HOME=$TMP/home"
    "CLAUDE_CONFIG_DIR=$TMP/home/.claude"
    "TMPDIR=$TMP/tmp"
    "ANTHROPIC_BASE_URL=$BASE_URL"
    # No traffic but to ANTHROPIC_BASE_URL: without it a run looks up api.anthropic.com 12
    # times (4 with DISABLE_TELEMETRY alone); with it alone, not once. The three after it are
    # belt-and-braces for parts it already covers.
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"
    "DISABLE_AUTOUPDATER=1"
    "DISABLE_TELEMETRY=1"
    "DISABLE_ERROR_REPORTING=1"
    "CLAUDE_CODE_MAX_RETRIES=${RINGGATE_CC_MAX_RETRIES:-2}"
)
if [ -n "${RINGGATE_CC_AUTH_TOKEN:-}" ]; then
    ENV+=("ANTHROPIC_AUTH_TOKEN=$RINGGATE_CC_AUTH_TOKEN")
else
    # Without a key or token, `claude -p` stops at "Not logged in · Please run /login".
    ENV+=("ANTHROPIC_API_KEY=${RINGGATE_CC_API_KEY:-sk-ant-ringgate-claude-code-test}")
fi
for name in ANTHROPIC_MODEL ANTHROPIC_SMALL_FAST_MODEL ANTHROPIC_DEFAULT_OPUS_MODEL \
    ANTHROPIC_DEFAULT_SONNET_MODEL ANTHROPIC_DEFAULT_HAIKU_MODEL ANTHROPIC_CUSTOM_HEADERS \
    ANTHROPIC_BETAS API_TIMEOUT_MS CLAUDE_CODE_MAX_OUTPUT_TOKENS MAX_THINKING_TOKENS \
    CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS; do
    if [ -n "${!name+x}" ]; then
        ENV+=("$name=${!name}")
    fi
done

# --- run -----------------------------------------------------------------------
status=0
(cd "$TMP/work" && env -i "${ENV[@]}" timeout --kill-after=5 "$TIMEOUT" \
    "$CLAUDE" -p "$PROMPT" "$@" </dev/null) || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "claude-code: claude did not finish within ${TIMEOUT}s" >&2
fi
exit "$status"
