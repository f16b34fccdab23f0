#!/usr/bin/env bash
# Every test: the workspace's unit and integration tests, then the end-to-end run, the browser test of the
# web page and the API fuzzing on the same debug build.
#
#   scripts/test.sh
#
# cargo test builds the debug profile once; scripts/e2e.sh reuses it (its cargo build only links the binaries),
# starts its own S3 server and SMTP catcher on 127.0.0.1, and stops them when done; scripts/browser.sh drives
# the web page in headless Chromium against its own `sluice serve`; scripts/fuzz.sh points Schemathesis at the
# OpenAPI document of its own `sluice serve`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tests' own tools first (maildev, curl, jq, poppler's pdftotext for the report tests).
scripts/tools.sh >/dev/null
cargo test --workspace
scripts/e2e.sh
scripts/browser.sh
scripts/fuzz.sh
