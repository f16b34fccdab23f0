#!/usr/bin/env bash
# shellcheck disable=SC2034  # STOP_STATUS and CHECK_OK are read by the scripts that source this file
# The check harness of the end-to-end and browser scripts (sourced, not run): counted checks, background
# processes with their logs in $WORK, and a cleanup on exit that stops them in reverse order, prints their logs
# and keeps $WORK when anything failed, and closes with `$HARNESS_NAME: N passed, M failed`.
#
#   HARNESS_NAME=e2e
#   source scripts/harness.sh      # sets the EXIT, INT and TERM traps
#
# The caller sets WORK (a temp folder) before starting processes.

HARNESS_NAME=${HARNESS_NAME:-checks}
PASSED=0
FAILED=0
PIDS=()
NAMES=()
WORK=""

pass() {
  PASSED=$((PASSED + 1))
  printf 'ok    %s\n' "$*"
}

fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL  %s\n' "$*"
}

# check DESCRIPTION COMMAND...: one counted check; the command prints why when it fails. Always returns 0 (the
# script goes on to the next check); CHECK_OK tells how it went.
CHECK_OK=0
check() {
  local desc=$1
  shift
  if "$@"; then
    CHECK_OK=1
    pass "$desc"
  else
    CHECK_OK=0
    fail "$desc"
  fi
}

# require DESCRIPTION COMMAND...: a check that the rest of the run depends on.
require() {
  check "$@"
  ((CHECK_OK)) || exit 1
}

# A failure that leaves nothing sensible to test after it.
die() {
  fail "$*"
  exit 1
}

log() {
  printf -- '--    %s\n' "$*"
}

# start NAME COMMAND...: runs COMMAND in the background with its output in $WORK/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
  log "started $name (pid $!)"
}

# stop PID SECONDS: SIGTERM, then SIGKILL after SECONDS; the exit status (or "killed") in STOP_STATUS.
# Not in a subshell: only this shell can wait for its children.
STOP_STATUS=""
stop() {
  local pid=$1 seconds=$2 deadline
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + seconds))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    STOP_STATUS=killed
    return 0
  fi
  STOP_STATUS=0
  wait "$pid" 2>/dev/null || STOP_STATUS=$?
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    if kill -0 "${PIDS[i]}" 2>/dev/null; then
      stop "${PIDS[i]}" 10
    fi
  done
  if ((rc != 0 && FAILED == 0)); then
    fail "the script stopped unexpectedly (exit status $rc)"
  fi
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    if ((FAILED > 0)); then
      for name in "${NAMES[@]}"; do
        [[ -f "$WORK/$name.log" ]] || continue
        printf '\n===== %s log (last 200 lines of %s) =====\n' "$name" "$WORK/$name.log"
        tail -n 200 "$WORK/$name.log" || true
      done
      printf '\nwork folder kept: %s\n' "$WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  printf '%s: %d passed, %d failed\n' "$HARNESS_NAME" "$PASSED" "$FAILED"
  if ((FAILED > 0)); then exit 1; fi
  exit 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# harness_build: builds the debug binaries unless SLUICE_E2E_SKIP_BUILD=1. The same package and target
# selection as `cargo test --workspace`, so that after a test run no dependency is rebuilt with another feature
# set: this only links the binaries.
harness_build() {
  if [[ "${SLUICE_E2E_SKIP_BUILD:-0}" != 1 ]]; then
    log "cargo build --workspace --bins --tests"
    cargo build --workspace --bins --tests
  fi
}

# harness_hermetic_env: no sluice or AWS configuration from the caller's environment.
harness_hermetic_env() {
  local var
  while IFS= read -r var; do
    unset "$var"
  done < <(compgen -e | grep -E '^(SLUICE__|AWS_)' || true)
  unset SLUICE_CONFIG
}

# harness_sluice_config DIR PORT [SERVER_LINES] [MORE_TOML]: writes DIR/sluice.toml for a `sluice serve` on
# 127.0.0.1:PORT with its storage folder and outbox in DIR and two conversion workers; SERVER_LINES go into the
# [server] table, MORE_TOML after everything else.
harness_sluice_config() {
  local dir=$1 port=$2 server=${3:-} more=${4:-}
  mkdir -p "$dir"
  cat >"$dir/sluice.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
$server

[storage]
url = "$dir/storage"

[mail]
url = "file://$dir/outbox"

[pipeline]
workers = 2
$more
TOML
}

# harness_start_sluice BINARY CONFIG BASE: runs `sluice serve --config CONFIG` (as process "sluice") and waits
# until BASE/readyz answers; its pid in SLUICE_PID.
SLUICE_PID=""
harness_start_sluice() {
  local binary=$1 config=$2 base=$3
  start sluice env RUST_LOG="${RUST_LOG:-info}" "$binary" serve --config "$config"
  SLUICE_PID=${PIDS[-1]}
  tools_wait_http "$base/readyz" 60 "$SLUICE_PID" || die "sluice did not become ready (GET /readyz)"
  pass "sluice serve starts and GET /readyz answers 200"
}
