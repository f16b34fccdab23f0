#!/usr/bin/env bash
# Peak memory of `sluice serve` under hostile images and 8 concurrent 500 MB uploads.
#
#   scripts/memory.sh
#
# Starts the binary on a free port with storage in a temp folder and uploads raised to 600 MB, then fires at
# once: pixel floods (a 30000x30000 PNG, a GIF with a 65535x65535 screen), images at the pixel limit (three
# 7000x7000 PNGs, 49 megapixels each) and 8 concurrent uploads of 500 MB each (a sparse file, read as zeros:
# streamed and refused, 415) plus 2 of a JPEG followed by padding to 500 MB (stored, then rejected unread by
# pipeline.max_original_bytes). It waits for the jobs to settle, reads the server's peak resident set
# (VmHWM in /proc/PID/status) and prints it with a pass or fail against 1 GiB. Figures, not a timed test.
#
# Environment:
#   SLUICE_BIN   the binary (default: release under the cargo target folder if built, else debug)
#   MEMORY_LIMIT_KIB   the bound checked (default 1048576, 1 GiB)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/tools.sh
source "$ROOT/scripts/tools.sh"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z "${SLUICE_BIN:-}" ]]; then
  SLUICE_BIN=$TARGET_DIR/release/sluice
  [[ -x "$SLUICE_BIN" ]] || SLUICE_BIN=$TARGET_DIR/debug/sluice
fi
LIMIT_KIB=${MEMORY_LIMIT_KIB:-1048576}
tools_ensure_commands curl jq python3
command -v convert >/dev/null || tools_apt_install imagemagick

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(tools_free_port)
BASE=http://127.0.0.1:$PORT
echo "memory: $SLUICE_BIN on $BASE, work in $WORK"

# Inputs.
python3 - "$WORK" <<'PY'
import struct, sys, zlib
work = sys.argv[1]
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
idat = zlib.compress(b"\0" * (4 * 1024 * 1024), 9)
with open(f"{work}/flood.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
screen = b"GIF89a" + struct.pack("<HH", 65535, 65535) + bytes([0x80, 0, 0, 0, 0, 0, 255, 255, 255])
frame = bytes([0x2C, 0, 0, 0, 0]) + struct.pack("<HH", 65535, 65535) + bytes([0, 2, 2, 0x44, 1, 0])
with open(f"{work}/screen.gif", "wb") as f:
    f.write(screen + frame + b"\x3b")
PY
convert -size 7000x7000 plasma:fractal -depth 8 "$WORK/limit.png" 2>/dev/null ||
  convert -size 7000x7000 gradient:red-blue "$WORK/limit.png"
truncate -s 500M "$WORK/zeros.bin"
cp samples/forest-stream.jpg "$WORK/padded.jpg"
truncate -s 500M "$WORK/padded.jpg"
du -h --apparent-size "$WORK"/* | sed 's/^/  /'

SLUICE__SERVER__LISTEN=127.0.0.1:$PORT SLUICE__SERVER__PUBLIC_URL=$BASE \
  SLUICE__SERVER__MAX_UPLOAD_BYTES=629145600 SLUICE__STORAGE__URL="$WORK/storage" \
  SLUICE__MAIL__URL="file://$WORK/outbox" SLUICE__LOG__LEVEL=warn \
  "$SLUICE_BIN" serve >"$WORK/sluice.log" 2>&1 &
SERVER_PID=$!
tools_wait_http "$BASE/healthz" 30 "$SERVER_PID"
rss() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$SERVER_PID/status"; }
echo "  idle: VmRSS $(rss VmRSS) KiB"

started=$SECONDS
pids=()
curl -s -o "$WORK/hostile.json" -F file=@"$WORK/flood.png" -F file=@"$WORK/screen.gif" \
  -F file=@"$WORK/limit.png" -F file=@"$WORK/limit.png" -F file=@"$WORK/limit.png" "$BASE/v1/uploads" &
pids+=($!)
for n in 1 2 3 4 5 6 7 8; do
  curl -s -o "$WORK/zeros-$n.json" -F "file=@$WORK/zeros.bin;filename=zeros-$n.bin" "$BASE/v1/uploads" &
  pids+=($!)
done
for n in 1 2; do
  curl -s -o "$WORK/padded-$n.json" -F "file=@$WORK/padded.jpg;filename=padded-$n.jpg" "$BASE/v1/uploads" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
echo "  uploads answered after $((SECONDS - started)) s:"
for answer in "$WORK"/*.json; do
  printf '    %-14s %s\n' "$(basename "$answer" .json)" "$(jq -c '.error.code // .state' "$answer")"
done

# Wait (bounded) for every accepted job to settle.
for answer in "$WORK"/*.json; do
  id=$(jq -r '.id // empty' "$answer")
  [[ -z "$id" ]] && continue
  deadline=$((SECONDS + 300))
  until [[ "$(curl -s "$BASE/v1/jobs/$id" | jq -r .state)" =~ ^(completed|failed)$ ]]; do
    ((SECONDS < deadline)) || { echo "job $id did not settle"; exit 1; }
    sleep 0.5
  done
  printf '    job %s: %s\n' "$(basename "$answer" .json)" \
    "$(curl -s "$BASE/v1/jobs/$id" | jq -c '[.files[] | .error.code // .state]')"
done

peak=$(rss VmHWM)
echo "memory: peak RSS (VmHWM) ${peak} KiB = $((peak / 1024)) MiB; bound $((LIMIT_KIB / 1024)) MiB; $((SECONDS - started)) s"
if ((peak < LIMIT_KIB)); then
  echo "memory: PASS"
else
  echo "memory: FAIL"
  exit 1
fi
