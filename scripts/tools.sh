#!/usr/bin/env bash
# Test tools for sluice's end-to-end run, kept in a cache folder outside the clone.
#
#   source scripts/tools.sh && tools_ensure     # from another script
#   scripts/tools.sh                            # or run it: installs what is missing (browser tools too), prints the paths
#
# What it provides:
#   - maildev 3 (an SMTP catcher with an HTTP inbox API), installed with npm into
#     "$SLUICE_TOOLS_DIR/maildev" when missing; SLUICE_TOOLS_DIR defaults to ~/.cache/sluice-tools.
#   - for the browser test (tools_ensure_browser): playwright-core (pinned, without its own browser download)
#     in "$SLUICE_TOOLS_DIR/playwright", and Debian's chromium, installed with apt-get when missing.
#   - jq, curl and poppler-utils (pdfinfo, pdftotext: the report tests read PDFs), installed with apt-get when
#     missing (as root, or through sudo).
#   - helpers for the scripts: tools_free_port, tools_wait_http.
# The S3 server of the end-to-end run is the workspace's own `sluice-testkit s3` binary: nothing to install.

# Sourced into the caller's shell: set the strict mode only when run as a script.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
fi

SLUICE_TOOLS_DIR="${SLUICE_TOOLS_DIR:-${HOME}/.cache/sluice-tools}"
MAILDEV_VERSION="3"
MAILDEV_DIR="${SLUICE_TOOLS_DIR}/maildev"
MAILDEV_BIN="${MAILDEV_DIR}/node_modules/.bin/maildev"
PLAYWRIGHT_VERSION="1.65.1"
PLAYWRIGHT_DIR="${SLUICE_TOOLS_DIR}/playwright"
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"

tools_log() {
  printf 'tools: %s\n' "$*" >&2
}

# Runs apt-get install for the given packages: as root directly, otherwise through sudo when it exists.
tools_apt_install() {
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      tools_log "missing $*: install them (apt-get install $*) or run as root"
      return 1
    fi
  fi
  tools_log "installing $* with apt-get"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The font the report tests add to a templates folder (Debian's fonts-droid-fallback).
TOOLS_CJK_FONT=/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf

# Installs each named command's Debian package when the command is missing. Each argument is COMMAND, or
# COMMAND:PACKAGE when the package is named otherwise.
tools_ensure_commands() {
  local spec cmd package missing=()
  for spec in "$@"; do
    cmd=${spec%%:*}
    package=${spec#*:}
    command -v "$cmd" >/dev/null 2>&1 || [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
  done
  if ((${#missing[@]} > 0)); then
    tools_apt_install "${missing[@]}"
  fi
}

# tools_npm_install DIR PACKAGE@VERSION: installs an npm package into its own cache folder DIR.
tools_npm_install() {
  local dir=$1 package=$2
  if ! command -v npm >/dev/null 2>&1; then
    tools_log "npm is missing: ${package} needs Node.js 20 or later with npm (apt-get install nodejs npm)"
    return 1
  fi
  tools_log "installing ${package} into ${dir}"
  mkdir -p "$dir"
  # A package.json of its own, so that npm installs here and not into a parent project.
  [[ -f "$dir/package.json" ]] || printf '{ "private": true }\n' >"$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$package") >&2
}

# Installs maildev into the cache folder unless a working copy is already there.
tools_ensure_maildev() {
  if [[ -x "$MAILDEV_BIN" ]] && "$MAILDEV_BIN" --version >/dev/null 2>&1; then
    return 0
  fi
  tools_npm_install "$MAILDEV_DIR" "maildev@${MAILDEV_VERSION}"
  "$MAILDEV_BIN" --version >/dev/null
}

# The browser test's tools: chromium from Debian and playwright-core (which drives it; its own browser
# download is disabled: it would fail here, and Debian's chromium is the one used).
tools_ensure_browser() {
  [[ -x "$CHROMIUM_BIN" ]] || tools_apt_install chromium
  local installed
  installed=$(node -p 'require(process.argv[1] + "/node_modules/playwright-core/package.json").version' \
    "$PLAYWRIGHT_DIR" 2>/dev/null) || installed=""
  if [[ "$installed" != "$PLAYWRIGHT_VERSION" ]]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 tools_npm_install "$PLAYWRIGHT_DIR" "playwright-core@${PLAYWRIGHT_VERSION}"
  fi
}

# Everything the end-to-end run needs.
tools_ensure() {
  tools_ensure_commands curl jq pdfinfo:poppler-utils pdftotext:poppler-utils pdffonts:poppler-utils
  # A font with Chinese, Japanese and Korean characters, for the test of fonts added to report templates.
  [[ -f "$TOOLS_CJK_FONT" ]] || tools_apt_install fonts-droid-fallback
  tools_ensure_maildev
}

# Prints a TCP port that is free on 127.0.0.1 right now (the kernel picks it).
tools_free_port() {
  node -e '
    const server = require("net").createServer();
    server.listen(0, "127.0.0.1", () => { console.log(server.address().port); server.close(); });'
}

# tools_wait_http URL SECONDS [PID]: waits until URL answers 2xx or 3xx, at most SECONDS; fails early if PID exits.
tools_wait_http() {
  tools_wait_until "$1" "$2" "${3:-}" success
}

# tools_wait_listening URL SECONDS [PID]: waits until URL gives any HTTP answer (an S3 server answers 403 to an
# unsigned request), at most SECONDS; fails early if PID exits.
tools_wait_listening() {
  tools_wait_until "$1" "$2" "${3:-}" any
}

# tools_wait_until URL SECONDS PID WANT: the loop behind both waits above. WANT is `success` (a 2xx or 3xx
# status) or `any` (any HTTP answer at all).
tools_wait_until() {
  local url=$1 seconds=$2 pid=$3 want=$4 deadline code
  deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$url" 2>/dev/null) || true
    if [[ "$want" == success && "$code" =~ ^[23] ]] || [[ "$want" == any && -n "$code" && "$code" != 000 ]]; then
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      tools_log "process $pid exited while waiting for $url"
      return 1
    fi
    sleep 0.2
  done
  tools_log "no $want answer from $url within ${seconds}s"
  return 1
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  tools_ensure
  tools_ensure_browser
  printf 'SLUICE_TOOLS_DIR=%s\nmaildev=%s (%s)\njq=%s\ncurl=%s\n' "$SLUICE_TOOLS_DIR" "$MAILDEV_BIN" \
    "$("$MAILDEV_BIN" --version)" "$(command -v jq)" "$(command -v curl)"
  printf 'playwright-core=%s (%s)\nchromium=%s (%s)\n' "$PLAYWRIGHT_DIR" "$PLAYWRIGHT_VERSION" "$CHROMIUM_BIN" \
    "$("$CHROMIUM_BIN" --version 2>/dev/null || echo '?')"
fi
