#!/usr/bin/env bash
# shellcheck disable=SC2016  # jq programs are in single quotes, with $variables of their own
# End-to-end test: what the README tells a user to do, against real services on 127.0.0.1.
#
#   scripts/e2e.sh
#
# Builds the debug binaries (a no-op after `cargo test --workspace`), starts the workspace's S3 server
# (`sluice-testkit s3`, which checks SigV4 like MinIO) and maildev (an SMTP catcher with an inbox API) on free
# ports, runs `sluice serve` against them, and drives it with curl: upload, poll, SSE, download every output,
# error cases, the mail and its links, the docs and the metrics. Every wait is bounded. Everything it started
# is stopped on exit; on failure the logs are printed and the work folder is kept.
#
# Environment:
#   SLUICE_E2E_TIMEOUT      seconds to wait for a job, a mail or a server (default 120)
#   SLUICE_E2E_SKIP_BUILD=1 use the binaries as they are
#   SLUICE_BIN, SLUICE_TESTKIT_BIN   binaries to run (default: the debug ones under the cargo target folder)
#   SLUICE_TOOLS_DIR        where maildev is cached (default ~/.cache/sluice-tools; see scripts/tools.sh)
# The last line is `e2e: N passed, M failed`; the exit status is non-zero when anything failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/tools.sh
source "$ROOT/scripts/tools.sh"

TIMEOUT=${SLUICE_E2E_TIMEOUT:-120}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SLUICE_BIN=${SLUICE_BIN:-$TARGET_DIR/debug/sluice}
TESTKIT_BIN=${SLUICE_TESTKIT_BIN:-$TARGET_DIR/debug/sluice-testkit}

NOTIFY=dev@example.com
BUCKET=sluice-e2e
S3_KEY=e2e-access-key
S3_SECRET=e2e-secret-key-$RANDOM$RANDOM
# A portrait stored on its side (EXIF Orientation 6) and an ordinary landscape photo.
IMG_PORTRAIT=samples/portrait-dogs-at-window-exif-orientation-6.jpg
IMG_LANDSCAPE=samples/mountain-trail-picos-de-europa.jpg

HARNESS_NAME=e2e
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"

# req NAME URL [CURL ARGS...]: body in $WORK/NAME.body, headers in $WORK/NAME.headers, status in STATUS.
STATUS=000
req() {
  local name=$1 url=$2
  shift 2
  rm -f "$WORK/$name.body" "$WORK/$name.headers"
  STATUS=$(curl -sS --max-time 30 -o "$WORK/$name.body" -D "$WORK/$name.headers" -w '%{http_code}' "$@" "$url" \
    </dev/null) || STATUS=000
  touch "$WORK/$name.body" "$WORK/$name.headers"
}

# header NAME FIELD: the value of the last FIELD header of response NAME (after redirects), without CR.
header() {
  { grep -i "^$2:" "$WORK/$1.headers" 2>/dev/null || true; } | tail -n 1 | cut -d: -f2- | tr -d '\r' |
    sed 's/^[[:space:]]*//'
}

# expect_status NAME WANT...: the last response NAME has one of the statuses WANT.
expect_status() {
  local name=$1 want
  shift
  for want in "$@"; do
    [[ "$STATUS" == "$want" ]] && return 0
  done
  echo "      expected HTTP $*, got $STATUS; body: $(head -c 600 "$WORK/$name.body" 2>/dev/null)"
  return 1
}

# jq_check NAME FILTER [JQ ARGS...]: FILTER is true on the JSON body of response NAME.
jq_check() {
  local name=$1 filter=$2
  shift 2
  if jq -e "$@" "$filter" "$WORK/$name.body" >/dev/null 2>&1; then
    return 0
  fi
  echo "      not true: $filter"
  echo "      on: $(head -c 1500 "$WORK/$name.body" 2>/dev/null)"
  return 1
}

# is_error_json NAME: the body is {"error":{"code":"snake_case","message":"..."}}.
is_error_json() {
  jq_check "$1" '(.error.code | type == "string" and test("^[a-z][a-z0-9_]*$")) and (.error.message | type == "string" and length > 0)'
}

# magic_type FILE: the media type that FILE's first bytes show.
magic_type() {
  local hex
  hex=$(head -c 12 "$1" | od -An -tx1 | tr -d ' \n')
  case "$hex" in
  ffd8ff*) echo image/jpeg ;;
  89504e470d0a1a0a*) echo image/png ;;
  52494646????????57454250) echo image/webp ;;
  4749463837* | 4749463839*) echo image/gif ;;
  *) echo "unknown ($hex)" ;;
  esac
}

# absolute URL: links in job documents are relative to the server (or absolute under public_url).
absolute() {
  case "$1" in
  http://* | https://*) echo "$1" ;;
  *) echo "$BASE$1" ;;
  esac
}

SAW_RUNNING=0
RETRY_AFTER_MISSING=0
# wait_job ID NAME: polls GET /v1/jobs/ID until it is completed; the last document is $WORK/NAME.body.
wait_job() {
  local id=$1 name=$2 deadline state=""
  deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    req "$name" "$BASE/v1/jobs/$id"
    if [[ "$STATUS" == 200 ]]; then
      state=$(jq -r '.state' "$WORK/$name.body" 2>/dev/null) || state="(not JSON)"
      case "$state" in
      completed) return 0 ;;
      failed)
        echo "      job $id failed: $(head -c 1500 "$WORK/$name.body")"
        return 1
        ;;
      queued | running)
        SAW_RUNNING=1
        [[ -n "$(header "$name" retry-after)" ]] || RETRY_AFTER_MISSING=1
        ;;
      esac
    fi
    sleep 0.25
  done
  echo "      job $id not completed within ${TIMEOUT}s; last answer (HTTP $STATUS, state $state):"
  echo "      $(head -c 2000 "$WORK/$name.body" 2>/dev/null)"
  return 1
}

# sse_has_completed FILE: an event named completed, or a data line that is "completed", JSON holding the value
# "completed" or a job document whose state is completed.
sse_has_completed() {
  tr -d '\r' <"$1" >"$1.lf"
  grep -qE '^event: ?completed *$' "$1.lf" && return 0
  grep -qE '^data: ?"?completed"? *$' "$1.lf" && return 0
  grep -qE '^data: ?\{.*"state": ?"completed"' "$1.lf" && return 0
  sed -n 's/^data: \{0,1\}//p' "$1.lf" |
    jq -R 'fromjson? | select(any(..; . == "completed"))' 2>/dev/null | grep -q . && return 0
  echo "      no completed event in $(wc -c <"$1") bytes; the first: $(head -c 600 "$1")"
  echo "      the last: $(tail -c 600 "$1")"
  [[ -s "$1.err" ]] && echo "      curl said: $(head -c 300 "$1.err")"
  return 1
}

# sse_first_is_completed FILE: the first event that carries data already says completed.
sse_first_is_completed() {
  tr -d '\r' <"$1" | awk 'BEGIN { RS = "" } /(^|\n)data:/ { print; exit }' >"$1.first"
  sse_has_completed "$1.first"
}

# ---------------------------------------------------------------------------------------------------------
# Build, tools, services

harness_build
[[ -x "$SLUICE_BIN" ]] || die "no sluice binary at $SLUICE_BIN"
[[ -x "$TESTKIT_BIN" ]] || die "no sluice-testkit binary at $TESTKIT_BIN"
tools_ensure
for f in "$IMG_PORTRAIT" "$IMG_LANDSCAPE"; do
  [[ -f "$f" ]] || die "missing sample $f"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-e2e.XXXXXX")
mkdir -p "$WORK/s3" "$WORK/mail"

# Four distinct free ports.
PORTS=()
while ((${#PORTS[@]} < 4)); do
  port=$(tools_free_port)
  [[ " ${PORTS[*]} " == *" $port "* ]] || PORTS+=("$port")
done
S3_PORT=${PORTS[0]}
SMTP_PORT=${PORTS[1]}
MAIL_WEB_PORT=${PORTS[2]}
SLUICE_PORT=${PORTS[3]}
BASE="http://127.0.0.1:$SLUICE_PORT"
MAIL_API="http://127.0.0.1:$MAIL_WEB_PORT/api"

# The run is hermetic: no configuration from the caller's environment.
harness_hermetic_env

start s3 "$TESTKIT_BIN" s3 --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_KEY" --secret-key "$S3_SECRET" \
  --bucket "$BUCKET" "$WORK/s3"
S3_PID=${PIDS[-1]}
start maildev "$MAILDEV_BIN" --ip 127.0.0.1 --web-ip 127.0.0.1 --smtp "$SMTP_PORT" --web "$MAIL_WEB_PORT" \
  --mail-directory "$WORK/mail"
MAILDEV_PID=${PIDS[-1]}
tools_wait_listening "http://127.0.0.1:$S3_PORT/" 30 "$S3_PID" || die "the S3 server did not start"
tools_wait_http "$MAIL_API/healthz" 30 "$MAILDEV_PID" || die "maildev did not start"

cat >"$WORK/sluice.toml" <<EOF
[server]
listen = "127.0.0.1:$SLUICE_PORT"
public_url = "$BASE"

[storage]
url = "s3://$BUCKET"

[storage.s3]
endpoint = "http://127.0.0.1:$S3_PORT"
region = "us-east-1"
access_key_id = "$S3_KEY"
secret_access_key = "$S3_SECRET"
allow_http = true

[mail]
url = "smtp://127.0.0.1:$SMTP_PORT"
from = "sluice e2e <sluice@localhost>"

[pipeline]
workers = 2
EOF

harness_start_sluice "$SLUICE_BIN" "$WORK/sluice.toml" "$BASE"

# ---------------------------------------------------------------------------------------------------------
# Upload two photos with a notice

req upload "$BASE/v1/uploads" -F "file=@$IMG_PORTRAIT" -F "file=@$IMG_LANDSCAPE" -F "notify=$NOTIFY"
expect_status upload 202 || die "POST /v1/uploads with two photos answers 202"
pass "POST /v1/uploads with two photos answers 202"
JOB_ID=$(jq -r '.id // empty' "$WORK/upload.body" 2>/dev/null) || true
[[ -n "$JOB_ID" ]] || die "the 202 body is a job document with an id: $(head -c 600 "$WORK/upload.body")"

location_ok() {
  local location
  location=$(header upload location)
  [[ "$location" == "/v1/jobs/$JOB_ID" || "$location" == "$BASE/v1/jobs/$JOB_ID" ]] && return 0
  echo "      Location is '$location', not /v1/jobs/$JOB_ID"
  return 1
}
check "the 202 carries Location: /v1/jobs/{id}" location_ok
check "the 202 body is the job document (state, two files with name, size, sha256; notification; links)" \
  jq_check upload '
    (.state | IN("queued", "running", "completed"))
    and (.files | length == 2)
    and ([.files[].name] == [$a, $b])
    and ([.files[].bytes] == [$abytes, $bbytes])
    and ([.files[].sha256] == [$asha, $bsha])
    and (.notification.to == $to)
    and (.links.self == "/v1/jobs/\(.id)" or .links.self == "\($base)/v1/jobs/\(.id)")
    and (.links.events | type == "string")' \
  --arg a "$(basename "$IMG_PORTRAIT")" --arg b "$(basename "$IMG_LANDSCAPE")" \
  --argjson abytes "$(stat -c %s "$IMG_PORTRAIT")" --argjson bbytes "$(stat -c %s "$IMG_LANDSCAPE")" \
  --arg asha "$(sha256sum "$IMG_PORTRAIT" | cut -d' ' -f1)" --arg bsha "$(sha256sum "$IMG_LANDSCAPE" | cut -d' ' -f1)" \
  --arg to "$NOTIFY" --arg base "$BASE"

# Follow the job over SSE while it runs.
curl -sS -N --max-time "$TIMEOUT" -D "$WORK/sse-live.headers" -o "$WORK/sse-live.txt" \
  "$BASE/v1/jobs/$JOB_ID/events" 2>"$WORK/sse-live.txt.err" &
SSE_PID=$!
PIDS+=("$SSE_PID")
NAMES+=("sse-live")

require "GET /v1/jobs/{id} reaches completed within ${TIMEOUT}s" wait_job "$JOB_ID" job
cp "$WORK/job.body" "$WORK/job.json"
if ((SAW_RUNNING)); then
  check "GET /v1/jobs/{id} sends Retry-After while the job runs" test "$RETRY_AFTER_MISSING" = 0
fi
check "every file is converted into at least one output, and finished_at is set" jq_check job '
  (.finished_at | type == "string")
  and all(.files[]; .state == "converted" and (.outputs | length > 0)
      and all(.outputs[]; (.url | type == "string") and (.content_type | startswith("image/"))
          and (.width > 0) and (.height > 0)))'
check "EXIF orientation is applied: the portrait's outputs are portrait, the landscape's landscape" jq_check job '
  (.files[0].outputs | all(.height >= .width) and any(.height > .width))
  and (.files[1].outputs | all(.width >= .height) and any(.width > .height))'

# The S3 server keeps objects as plain files under its data folder (bucket = sub-folder).
storage_layout() {
  local keys
  keys=$(cd "$WORK/s3" && find . -type f | sed 's|^\./||')
  printf '%s\n' "$keys" >"$WORK/s3-keys.txt"
  grep -qE "(^|/)jobs/$JOB_ID\.json$" <<<"$keys" || {
    echo "      no jobs/$JOB_ID.json in the bucket"
    return 1
  }
  if ! grep -qE "(^|/)originals/$JOB_ID/0\.[a-z]+$" <<<"$keys" ||
    ! grep -qE "(^|/)originals/$JOB_ID/1\.[a-z]+$" <<<"$keys"; then
    echo "      no originals/$JOB_ID/{0,1}.EXT in the bucket"
    return 1
  fi
  grep -qE "(^|/)outputs/$JOB_ID/0/[a-z0-9_-]+\.[a-z]+$" <<<"$keys" || {
    echo "      no outputs/$JOB_ID/0/VARIANT.EXT in the bucket"
    return 1
  }
  if grep -qiE 'portrait-dogs|mountain-trail' <<<"$keys"; then
    echo "      a client file name is part of a key: $(grep -iE 'portrait-dogs|mountain-trail' <<<"$keys" | head -n 3)"
    return 1
  fi
}
check "the bucket holds jobs/{id}.json, originals/{id}/{n}.ext, outputs/{id}/{n}/{variant}.ext, no client names" \
  storage_layout

# The live SSE stream should end by itself once the job has ended; give it a few seconds.
deadline=$((SECONDS + 10))
while kill -0 "$SSE_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
stop "$SSE_PID" 1
sse_live_type() {
  local ct
  ct=$(header sse-live content-type)
  [[ "$ct" == text/event-stream* ]] && return 0
  echo "      Content-Type is '$ct'"
  return 1
}
check "GET /v1/jobs/{id}/events is text/event-stream" sse_live_type
check "the SSE stream followed during the run yields a completed event" sse_has_completed "$WORK/sse-live.txt"

sse_after() {
  local rc=0
  curl -sS -N --max-time 15 -o "$WORK/sse-after.txt" "$BASE/v1/jobs/$JOB_ID/events" 2>"$WORK/sse-after.err" || rc=$?
  if ((rc == 28)); then
    echo "      the stream stayed open for 15 s after the job ended"
    return 1
  elif ((rc != 0)); then
    echo "      curl -N failed ($rc): $(cat "$WORK/sse-after.err")"
    return 1
  fi
  sse_first_is_completed "$WORK/sse-after.txt"
}
check "curl -N on /events of a finished job: first event says completed, then the stream ends" sse_after

# ---------------------------------------------------------------------------------------------------------
# Every output in the job document

jq -r '.files[].outputs[] | [.url, .content_type, (.bytes // "" | tostring)] | @tsv' "$WORK/job.json" \
  >"$WORK/outputs.tsv"
n=0
output_ok() {
  local url=$1 want_type=$2 want_bytes=$3 name=$4 got_type got_bytes magic
  req "$name" "$(absolute "$url")"
  expect_status "$name" 200 || return 1
  got_type=$(header "$name" content-type)
  got_type=${got_type%%;*}
  if [[ "$got_type" != "$want_type" ]]; then
    echo "      Content-Type '$got_type', the job document says '$want_type'"
    return 1
  fi
  magic=$(magic_type "$WORK/$name.body")
  if [[ "$magic" != "$want_type" ]]; then
    echo "      the bytes are $magic, not $want_type"
    return 1
  fi
  got_bytes=$(stat -c %s "$WORK/$name.body")
  if [[ -n "$want_bytes" && "$got_bytes" != "$want_bytes" ]]; then
    echo "      $got_bytes bytes, the job document says $want_bytes"
    return 1
  fi
  if [[ "$(header "$name" x-content-type-options)" != nosniff ]]; then
    echo "      no X-Content-Type-Options: nosniff"
    return 1
  fi
}
while IFS=$'\t' read -r url ctype bytes; do
  n=$((n + 1))
  check "GET $url: 200, $ctype (header and bytes agree), size as documented, nosniff" \
    output_ok "$url" "$ctype" "$bytes" "output-$n"
done <"$WORK/outputs.tsv"
((n > 0)) || fail "the job document lists outputs to fetch"

FIRST_OUTPUT=$(head -n 1 "$WORK/outputs.tsv" | cut -f1)
range_ok() {
  req range "$(absolute "$FIRST_OUTPUT")" -r 0-99
  expect_status range 206 || return 1
  [[ "$(stat -c %s "$WORK/range.body")" == 100 ]] || {
    echo "      $(stat -c %s "$WORK/range.body") bytes for bytes=0-99"
    return 1
  }
  [[ -n "$(header range content-range)" && -n "$(header range etag)" ]] || {
    echo "      no Content-Range or no ETag"
    return 1
  }
}
check "GET /v1/files/... honours Range (206, 100 bytes, Content-Range, ETag)" range_ok

# ---------------------------------------------------------------------------------------------------------
# Reports: a CSV upload becomes a PDF and an HTML page, read back from the bucket

csv_report() {
  local pdf html
  req csv "$BASE/v1/uploads" -H 'Prefer: wait=60' -F "file=@samples/vendas.csv"
  expect_status csv 200 || return 1
  jq_check csv '.files[0].content_type == "text/csv" and .files[0].state == "converted"
    and ([.files[0].outputs[].content_type] | sort) == ["application/pdf", "text/html; charset=utf-8"]' || return 1
  pdf=$(jq -r '.files[0].outputs[] | select(.content_type == "application/pdf") | .url' "$WORK/csv.body")
  html=$(jq -r '.files[0].outputs[] | select(.content_type != "application/pdf") | .url' "$WORK/csv.body")
  req csvpdf "$BASE$pdf"
  expect_status csvpdf 200 || return 1
  [[ "$(head -c 5 "$WORK/csvpdf.body")" == "%PDF-" ]] || {
    echo "      $pdf is not a PDF"
    return 1
  }
  req csvhtml "$BASE$html"
  expect_status csvhtml 200 || return 1
  grep -q '314.725,18' "$WORK/csvhtml.body" || {
    echo "      the HTML report lacks the exact total 314.725,18"
    return 1
  }
}
check "a CSV upload (samples/vendas.csv) gives a PDF and an HTML report with the exact total" csv_report

# ---------------------------------------------------------------------------------------------------------
# Errors

printf 'This is a text file, not a photograph.\n' >"$WORK/not-a-photo.jpg"
bad_upload() {
  local id
  req bad "$BASE/v1/uploads" -F "file=@$WORK/not-a-photo.jpg;type=image/jpeg"
  case "$STATUS" in
  200 | 202)
    id=$(jq -r '.id // empty' "$WORK/bad.body")
    [[ -n "$id" ]] || {
      echo "      no job id in $(head -c 600 "$WORK/bad.body")"
      return 1
    }
    wait_job "$id" bad-job || return 1
    jq_check bad-job '.files[0].state == "rejected"
      and (.files[0].error.code | IN("undecodable", "unsupported_type"))
      and (.files[0].error.message | type == "string" and length > 0)'
    ;;
  400 | 415 | 422) is_error_json bad ;;
  *)
    expect_status bad 202 415
    ;;
  esac
}
check "a text file named .jpg is rejected with a reason (rejected file, or a 4xx error JSON)" bad_upload

missing_job() {
  local uuid
  # A random UUID with the version nibble of a v7, so that only "unknown" is wrong with it.
  uuid=$(cat /proc/sys/kernel/random/uuid)
  uuid="${uuid:0:14}7${uuid:15}"
  req unknown "$BASE/v1/jobs/$uuid"
  expect_status unknown 404 && is_error_json unknown
}
check "GET /v1/jobs/{unknown id} answers 404 with an error JSON" missing_job

no_file() {
  req nofile "$BASE/v1/uploads" -F "notify=$NOTIFY"
  expect_status nofile 400 && is_error_json nofile
}
check "POST /v1/uploads without a file answers 400 with an error JSON" no_file

two_addresses() {
  req twoaddr "$BASE/v1/uploads" -F "notify=a@example.com, b@example.com" -F "file=@$IMG_LANDSCAPE"
  expect_status twoaddr 400 && is_error_json twoaddr
}
check "POST /v1/uploads with two addresses in notify answers 400" two_addresses

unknown_variant() {
  req badvariant "$BASE/v1/uploads" -F "variants=no-such-variant" -F "file=@$IMG_LANDSCAPE"
  expect_status badvariant 400 && is_error_json badvariant
}
check "POST /v1/uploads with an unknown variant answers 400" unknown_variant

list_jobs() {
  req jobs "$BASE/v1/jobs?limit=10"
  expect_status jobs 200 && jq_check jobs 'any(..; . == $id)' --arg id "$JOB_ID"
}
check "GET /v1/jobs lists the job" list_jobs

# ---------------------------------------------------------------------------------------------------------
# The notice in maildev

mail_arrives() {
  local deadline
  deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if curl -fsS --max-time 5 -o "$WORK/mails.json" "$MAIL_API/email" 2>/dev/null &&
      jq -e --arg id "$JOB_ID" '[.[] | select(.subject | contains($id))] | length > 0' "$WORK/mails.json" >/dev/null 2>&1
    then
      jq --arg id "$JOB_ID" '[.[] | select(.subject | contains($id))]' "$WORK/mails.json" >"$WORK/mail.body"
      return 0
    fi
    sleep 0.5
  done
  echo "      no mail whose subject names $JOB_ID within ${TIMEOUT}s; inbox: $(head -c 1500 "$WORK/mails.json" 2>/dev/null)"
  return 1
}
check "a mail whose subject names the job id arrives in maildev (GET /api/email)" mail_arrives
if ((CHECK_OK)); then
  check "exactly one mail, to $NOTIFY, with a Message-ID, its text naming the job id" jq_check mail '
    length == 1
    and (.[0].to | any(.address == $to))
    and (.[0].headers["message-id"] | type == "string" and length > 0)
    and (.[0].text | contains($id))' --arg to "$NOTIFY" --arg id "$JOB_ID"

  jq -r '.[0].html // ""' "$WORK/mail.body" | grep -oE 'href="[^"]*"' | sed -e 's/^href="//' -e 's/"$//' \
    -e 's/&amp;/\&/g' | sort -u >"$WORK/mail-links.txt" || true
  jq -r '.[0].text // ""' "$WORK/mail.body" >"$WORK/mail-text.txt"
  mail_links_every_output() {
    local url abs absent=0
    while IFS=$'\t' read -r url _ _; do
      # Links in the mail are absolute, under server.public_url.
      abs=$(absolute "$url")
      if ! grep -qxF "$abs" "$WORK/mail-links.txt"; then
        echo "      the HTML part has no link to $abs"
        absent=1
      fi
      if ! grep -qF "$abs" "$WORK/mail-text.txt"; then
        echo "      the text part does not mention $abs"
        absent=1
      fi
    done <"$WORK/outputs.tsv"
    ((absent == 0))
  }
  check "the mail's HTML links and text name every output under public_url" mail_links_every_output
  mail_link() {
    req "mail-link-$m" "$1" -L
    expect_status "mail-link-$m" 200
  }
  m=0
  while IFS= read -r link; do
    case "$link" in
    "$BASE"/*)
      m=$((m + 1))
      check "mail link $link answers 200" mail_link "$link"
      ;;
    *) log "not following $link (not under $BASE)" ;;
    esac
  done <"$WORK/mail-links.txt"
  ((m > 0)) || fail "the mail's HTML part has links under $BASE"
fi

notification_sent() {
  local deadline
  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    req job-notified "$BASE/v1/jobs/$JOB_ID"
    if [[ "$STATUS" == 200 ]] &&
      jq -e '.notification.state == "sent" and .notification.attempts >= 1' "$WORK/job-notified.body" >/dev/null 2>&1
    then
      return 0
    fi
    sleep 0.5
  done
  echo "      notification: $(jq -c '.notification' "$WORK/job-notified.body" 2>/dev/null)"
  return 1
}
check "the job document records the notification as sent" notification_sent

# ---------------------------------------------------------------------------------------------------------
# Docs, health, metrics

openapi_ok() {
  req openapi "$BASE/openapi.json"
  expect_status openapi 200 && jq_check openapi '(.openapi | startswith("3.")) and (.paths | has("/v1/uploads"))'
}
check "GET /openapi.json is an OpenAPI 3 document with /v1/uploads" openapi_ok

docs_ok() {
  local ct
  req docs "$BASE/docs" -L
  expect_status docs 200 || return 1
  ct=$(header docs content-type)
  [[ "$ct" == text/html* ]] || {
    echo "      Content-Type '$ct'"
    return 1
  }
}
check "GET /docs answers 200 with HTML" docs_ok

healthz_ok() {
  req healthz "$BASE/healthz"
  expect_status healthz 200
}
check "GET /healthz answers 200" healthz_ok

metrics_ok() {
  local ct
  req metrics "$BASE/metrics"
  expect_status metrics 200 || return 1
  ct=$(header metrics content-type)
  [[ "$ct" == text/plain* || "$ct" == application/openmetrics-text* ]] || {
    echo "      Content-Type '$ct'"
    return 1
  }
  grep -q '^# TYPE ' "$WORK/metrics.body" || {
    echo "      no '# TYPE' line in: $(head -c 600 "$WORK/metrics.body")"
    return 1
  }
}
check "GET /metrics answers Prometheus text" metrics_ok

# ---------------------------------------------------------------------------------------------------------
# Shutdown

graceful_stop() {
  stop "$SLUICE_PID" 20
  [[ "$STOP_STATUS" == 0 ]] && return 0
  echo "      sluice did not exit 0 within 20 s of SIGTERM (status: $STOP_STATUS)"
  return 1
}
check "sluice exits 0 within 20 s of SIGTERM" graceful_stop
