#!/usr/bin/env bash
# Browser test: the web page at / in a real headless Chromium, against `sluice serve` on 127.0.0.1.
#
#   scripts/browser.sh
#
# Builds the debug binaries (a no-op after `cargo test --workspace`), installs Debian's chromium and
# playwright-core when missing (scripts/tools.sh), starts `sluice serve` with a temp storage folder and outbox,
# and runs scripts/browser-test.mjs: upload two photos and see both convert with their thumbnails loaded, see a
# refused upload's reason and a rejected file's reason, open a recent job, no script or policy errors, and
# screenshots at desktop and phone widths. Then, against a second server with an API token: the token prompt,
# an upload after it, and thumbnails loaded through signed links. Every wait is bounded; everything started is
# stopped on exit.
#
# Environment:
#   SLUICE_BROWSER_TIMEOUT      seconds to wait for the server or a job (default 120)
#   SLUICE_E2E_SKIP_BUILD=1     use the binaries as they are
#   SLUICE_BIN                  the sluice binary (default: the debug one under the cargo target folder)
#   SLUICE_TEST_OUTPUT          where the screenshots go (default: test-output/browser under the target folder)
#   CHROMIUM_BIN                the browser (default /usr/bin/chromium)
# The last line is `browser: N passed, M failed`; the exit status is non-zero when anything failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/tools.sh
source "$ROOT/scripts/tools.sh"

TIMEOUT=${SLUICE_BROWSER_TIMEOUT:-120}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SLUICE_BIN=${SLUICE_BIN:-$TARGET_DIR/debug/sluice}
OUTPUT=${SLUICE_TEST_OUTPUT:-$TARGET_DIR/test-output/browser}

HARNESS_NAME=browser
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"

harness_build
[[ -x "$SLUICE_BIN" ]] || die "no sluice binary at $SLUICE_BIN"
tools_ensure_commands curl
tools_ensure_browser || die "could not install chromium and playwright-core"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-browser.XXXXXX")
mkdir -p "$OUTPUT"

# The run is hermetic: no configuration from the caller's environment.
harness_hermetic_env

# run_page_test NAME TOKEN: a fresh `sluice serve` (its own storage, outbox and browser profile; with TOKEN,
# `server.api_tokens = [TOKEN]`), then scripts/browser-test.mjs against it, whose `ok` and `FAIL` lines are
# counted here; the server is stopped afterwards.
run_page_test() {
  local name=$1 token=$2 port base dir status
  port=$(tools_free_port)
  base="http://127.0.0.1:$port"
  dir="$WORK/$name"
  mkdir -p "$dir/profile"
  harness_sluice_config "$dir" "$port" "api_tokens = [${token:+\"$token\"}]"
  harness_start_sluice "$SLUICE_BIN" "$dir/sluice.toml" "$base"
  set +e
  SLUICE_URL=$base API_TOKEN=$token CHROMIUM_BIN=$CHROMIUM_BIN PLAYWRIGHT_DIR=$PLAYWRIGHT_DIR \
    BROWSER_PROFILE=$dir/profile OUTPUT=$OUTPUT SAMPLES=$ROOT/samples TIMEOUT_SECS=$TIMEOUT \
    timeout --kill-after=10 $((TIMEOUT * 3)) node "$ROOT/scripts/browser-test.mjs" | tee "$dir/browser-test.out"
  status=${PIPESTATUS[0]}
  set -e
  PASSED=$((PASSED + $(grep -c '^ok ' "$dir/browser-test.out" || true)))
  FAILED=$((FAILED + $(grep -c '^FAIL ' "$dir/browser-test.out" || true)))
  if ((status != 0)) && ! grep -q '^FAIL ' "$dir/browser-test.out"; then
    fail "the $name browser test stopped unexpectedly (exit status $status)"
  fi
  stop "$SLUICE_PID" 20
}

run_page_test open ""
# With a token: the page asks for it, then uploads and shows thumbnails through signed links.
run_page_test guarded "browser-test-token-$RANDOM$RANDOM"
log "screenshots in $OUTPUT"
