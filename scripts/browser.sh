#!/usr/bin/env bash
# Browser test: the web page at / in a real headless Chromium, against `sluice serve` on 127.0.0.1.
#
#   scripts/browser.sh
#
# Builds the debug binaries (a no-op after `cargo test --workspace`), installs Debian's chromium and
# playwright-core when missing (scripts/tools.sh), starts `sluice serve` with a temp storage folder and outbox,
# and runs scripts/browser-test.mjs: upload two photos and see both convert with their thumbnails loaded, see a
# refused upload's reason and a rejected file's reason, open a recent job, no script or policy errors, and
# screenshots at desktop and phone widths. Every wait is bounded; everything started is stopped on exit.
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
mkdir -p "$OUTPUT" "$WORK/profile"
SLUICE_PORT=$(tools_free_port)
BASE="http://127.0.0.1:$SLUICE_PORT"

# The run is hermetic: no configuration from the caller's environment.
harness_hermetic_env

cat >"$WORK/sluice.toml" <<TOML
[server]
listen = "127.0.0.1:$SLUICE_PORT"
public_url = "$BASE"

[storage]
url = "$WORK/storage"

[mail]
url = "file://$WORK/outbox"

[pipeline]
workers = 2
TOML

harness_start_sluice "$SLUICE_BIN" "$WORK/sluice.toml" "$BASE"

# The page's checks, counted here from the test's `ok` and `FAIL` lines.
set +e
SLUICE_URL=$BASE CHROMIUM_BIN=$CHROMIUM_BIN PLAYWRIGHT_DIR=$PLAYWRIGHT_DIR BROWSER_PROFILE=$WORK/profile \
  OUTPUT=$OUTPUT SAMPLES=$ROOT/samples TIMEOUT_SECS=$TIMEOUT \
  timeout --kill-after=10 $((TIMEOUT * 3)) node "$ROOT/scripts/browser-test.mjs" | tee "$WORK/browser-test.out"
NODE_STATUS=${PIPESTATUS[0]}
set -e
PASSED=$((PASSED + $(grep -c '^ok ' "$WORK/browser-test.out" || true)))
FAILED=$((FAILED + $(grep -c '^FAIL ' "$WORK/browser-test.out" || true)))
if ((NODE_STATUS != 0)) && ! grep -q '^FAIL ' "$WORK/browser-test.out"; then
  fail "the browser test stopped unexpectedly (exit status $NODE_STATUS)"
fi
log "screenshots in $OUTPUT"
