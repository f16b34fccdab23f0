#!/usr/bin/env bash
# shellcheck disable=SC2016  # bash -c programs and Lua are in single quotes, with $variables of their own
# Performance benchmark: sluice against what users would pick instead, side by side, on this machine, in one run.
#
#   scripts/bench.sh            # the full run: a folder of 36 large photos, 3 repeats, every section (~15 min)
#   scripts/bench.sh --quick    # the JPEGs of samples/, 1 repeat, short load tests (about a minute or two)
#
# Options: --repeats N, --only images|upload|gateway|mail (repeatable), --skip-build, --keep, --no-imagemagick
# (ImageMagick needs minutes per repeat on the full folder), --turbojpeg (also measure the build with the
# `turbojpeg` feature, libjpeg-turbo: its rows in the images table are "sluice-turbojpeg"; the other sections
# use SLUICE_BIN).
# Environment: SLUICE_BIN (default: the release binary under the cargo target folder, built first),
# SLUICE_TURBO_BIN (the `turbojpeg` build for --turbojpeg; default: built after the default one and copied
# into the cache folder), SLUICE_GATEWAY_BASELINE_BIN (another build of sluice, e.g. of an earlier commit: the
# gateway section runs it under the same load right after SLUICE_BIN, in the rows "sluice, baseline build"),
# SLUICE_BENCH_CACHE (default ~/.cache/sluice-bench: the generated photo folder, the 2 GiB upload, the work
# folder), SLUICE_TOOLS_DIR (default ~/.cache/sluice-tools: maildev, and the Python venv of the FastAPI peer).
#
# Every figure is measured next to a baseline run in the same invocation, interleaved (each repeat runs every
# tool once, in a rotating order; the table shows the median), because absolute times on a shared machine mean
# little. The sections:
#   images   task A: every JPEG of the folder to JPEG q80 fitting 2048, 1024 and 256 px (never enlarging);
#            task B: one lossy WebP q80 fitting 256 px per image; task C: the JPEG decode floor (djpeg).
#            Peers: vipsthumbnail (libvips; two processes, one per core, one run per size) and ImageMagick 6
#            (-thumbnail with the jpeg:size hint at twice the size; two files at a time, one run per size; with
#            resource caps raised over Debian's policy, which refuses a 24 MP photo).
#            sluice: `sluice convert` with the same variants. Time, input megapixels per second, peak RSS.
#   upload   a 2 GiB upload with curl to local storage: MB/s and the server's peak RSS (VmHWM), against `cp`
#            of the same file on the same disk followed by `sync` of it (the server flushes the upload too).
#   gateway  ~200 KB uploads at concurrency 32 with wrk while the convert stage is saturated: accepted
#            uploads/s, p50/p99 of the 202; the same load on FastAPI + Pillow (resizing before answering, and
#            with BackgroundTasks); and the disk alone (scripts/bench_disk.py: each upload's flushed writes by
#            32 threads, no server), the most any server could acknowledge durably on this disk.
#   mail     one 12 MP photo with three variants, from the upload to the notice accepted by an SMTP server
#            (maildev): p50, against `sluice convert` of the same photo.
# Missing tools are installed with apt-get (libvips-tools, imagemagick, libjpeg-turbo-progs, wrk, time, curl,
# jq) and pip (fastapi, uvicorn, pillow, python-multipart into a venv), and the script says so.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/tools.sh
source "$ROOT/scripts/tools.sh"

QUICK=0
REPEATS=""
SKIP_BUILD=0
KEEP=0
NO_IM=0
TURBO=0
ONLY=()
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --repeats) REPEATS=$2; shift ;;
    --only) ONLY+=("$2"); shift ;;
    --skip-build) SKIP_BUILD=1 ;;
    --keep) KEEP=1 ;;
    --no-imagemagick) NO_IM=1 ;;
    --turbojpeg) TURBO=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
  shift
done
((${#ONLY[@]})) || ONLY=(images upload gateway mail)
[[ -n "$REPEATS" ]] || REPEATS=$((QUICK ? 1 : 3))

CACHE=${SLUICE_BENCH_CACHE:-$HOME/.cache/sluice-bench}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SLUICE_BIN_GIVEN=${SLUICE_BIN:+1}
SLUICE_BIN=${SLUICE_BIN:-$TARGET_DIR/release/sluice}
SLUICE_TURBO_BIN_GIVEN=${SLUICE_TURBO_BIN:+1}
VENV="$SLUICE_TOOLS_DIR/bench-venv"
WORK="$CACHE/work"
PIDS=()

log() { printf 'bench: %s\n' "$*" >&2; }
want() { [[ " ${ONLY[*]} " == *" $1 "* ]]; }

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  ((KEEP)) || rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------------- tools

# need COMMAND PACKAGE: installs the Debian package when the command is missing.
need() {
  command -v "$1" >/dev/null 2>&1 || { log "$1 is missing: installing the package $2"; tools_apt_install "$2"; }
}

ensure_tools() {
  need curl curl
  need jq jq
  need /usr/bin/time time
  need python3 python3
  if want images; then
    need vipsthumbnail libvips-tools
    need convert imagemagick
    need djpeg libjpeg-turbo-progs
  fi
  want gateway && need wrk wrk
  if want gateway && ! "$VENV/bin/python" -c 'import fastapi, uvicorn, PIL, multipart' 2>/dev/null; then
    log "installing fastapi, uvicorn, pillow and python-multipart into $VENV (pip)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q fastapi uvicorn pillow python-multipart >&2
  fi
  want mail && tools_ensure_maildev
  if ((!SKIP_BUILD)) && [[ -z "${SLUICE_BIN_GIVEN:-}" ]]; then
    log "building the release binary (cargo build --release -p sluice)"
    cargo build --release -q -p sluice
    if ((TURBO)); then
      # Both builds share the target folder: keep a copy of the default one before the feature build.
      mkdir -p "$CACHE/bin"
      cp "$SLUICE_BIN" "$CACHE/bin/sluice" && SLUICE_BIN="$CACHE/bin/sluice"
    fi
  fi
  [[ -x "$SLUICE_BIN" ]] || { log "no sluice binary at $SLUICE_BIN"; exit 1; }
  if ((TURBO)); then
    if [[ -z "${SLUICE_TURBO_BIN_GIVEN:-}" ]]; then
      SLUICE_TURBO_BIN="$TARGET_DIR/release/sluice"
      if ((!SKIP_BUILD)); then
        need cmake cmake
        need nasm nasm
        log "building the release binary with libjpeg-turbo (cargo build --release -p sluice --features turbojpeg)"
        cargo build --release -q -p sluice --features turbojpeg
        mkdir -p "$CACHE/bin"
        cp "$SLUICE_TURBO_BIN" "$CACHE/bin/sluice-turbojpeg" && SLUICE_TURBO_BIN="$CACHE/bin/sluice-turbojpeg"
      fi
    fi
    [[ -x "$SLUICE_TURBO_BIN" ]] || { log "no turbojpeg sluice binary at $SLUICE_TURBO_BIN"; exit 1; }
  fi
}

# ---------------------------------------------------------------------------------------------------- data

# The photo folder. Quick: the JPEGs of samples/. Full: 36 photos of 12 to 24 MP made reproducibly from the
# samples (each photo upright, cropped to 3:2 or 4:3 and scaled with libvips' Lanczos3, saved as JPEG q90
# 4:2:0 like a camera), cached outside the repository.
photo_folder() {
  if ((QUICK)); then
    PHOTOS="$CACHE/quick-v1"
    if [[ ! -f "$PHOTOS/.done" ]]; then
      rm -rf "$PHOTOS" && mkdir -p "$PHOTOS"
      cp samples/*.jpg "$PHOTOS/"
      touch "$PHOTOS/.done"
    fi
    return
  fi
  PHOTOS="$CACHE/photos-v1"
  [[ -f "$PHOTOS/.done" ]] && return
  log "making the photo folder $PHOTOS (36 photos of 12-24 MP from samples/, once)"
  rm -rf "$PHOTOS" && mkdir -p "$PHOTOS"
  local src name size w h
  for src in samples/*.jpg samples/*.webp; do
    # Too small to stand for a camera photo.
    [[ "$src" == *paint-brushes* ]] && continue
    name=$(basename "${src%.*}")
    for size in 4240x2832 4608x3456 5472x3648 6000x4000; do
      w=${size%x*} h=${size#*x}
      if [[ "$name" == portrait-* ]]; then read -r w h <<<"$h $w"; fi
      vips thumbnail "$src" "$PHOTOS/$name-${w}x$h.jpg[Q=90,strip]" "$w" --height "$h" --size both --crop centre
    done
  done
  touch "$PHOTOS/.done"
}

# Sum of the input megapixels of the folder.
folder_megapixels() {
  local file total=0
  for file in "$PHOTOS"/*.jpg; do
    total=$((total + $(vipsheader -f width "$file") * $(vipsheader -f height "$file")))
  done
  awk -v p="$total" 'BEGIN { printf "%.1f", p / 1e6 }'
}

# ---------------------------------------------------------------------------------------------------- images

# The runners below are called through /usr/bin/time (bash -c), hence exported. Each takes the output folder.
vips_task_a() {
  local size per
  per=$(((PHOTO_COUNT + 1) / 2))
  for size in 2048 1024 256; do
    printf '%s\0' "$PHOTOS"/*.jpg |
      xargs -0 -n "$per" -P 2 env VIPS_CONCURRENCY=1 vipsthumbnail -s "${size}x$size>" -o "$1/%s_$size.jpg[Q=80,strip]"
  done
}
vips_task_b() {
  printf '%s\0' "$PHOTOS"/*.jpg |
    xargs -0 -n $(((PHOTO_COUNT + 1) / 2)) -P 2 env VIPS_CONCURRENCY=1 vipsthumbnail -s '256x256>' -o "$1/%s_256.webp[Q=80,strip]"
}
im_task_a_one() {
  local base hint=$(($3 * 2))
  base=$(basename "${1%.*}")
  MAGICK_THREAD_LIMIT=1 convert -define "jpeg:size=${hint}x$hint" "$1" -auto-orient -strip -thumbnail "$3x$3>" \
    -quality 80 "$2/${base}_$3.jpg"
}
im_task_b_one() {
  local base
  base=$(basename "${1%.*}")
  MAGICK_THREAD_LIMIT=1 convert -define jpeg:size=512x512 "$1" -auto-orient -strip -thumbnail '256x256>' -quality 80 "$2/${base}_256.webp"
}
im_task_a() {
  local size
  for size in 2048 1024 256; do
    printf '%s\0' "$PHOTOS"/*.jpg | xargs -0 -P 2 -I{} bash -c 'im_task_a_one "$1" "$2" "$3"' _ {} "$1" "$size"
  done
}
im_task_b() {
  printf '%s\0' "$PHOTOS"/*.jpg | xargs -0 -P 2 -I{} bash -c 'im_task_b_one "$1" "$2"' _ {} "$1"
}
djpeg_task_c() {
  printf '%s\0' "$PHOTOS"/*.jpg | xargs -0 -n 1 -P 2 djpeg -outfile /dev/null
}
sluice_task_a() {
  "$SLUICE_BIN" convert "$PHOTOS" --out "$1" --config "$WORK/task-a.toml" >/dev/null 2>&1
}
sluice_task_b() {
  "$SLUICE_BIN" convert "$PHOTOS" --out "$1" --config "$WORK/task-b.toml" >/dev/null 2>&1
}
turbo_task_a() {
  "$SLUICE_TURBO_BIN" convert "$PHOTOS" --out "$1" --config "$WORK/task-a.toml" >/dev/null 2>&1
}
turbo_task_b() {
  "$SLUICE_TURBO_BIN" convert "$PHOTOS" --out "$1" --config "$WORK/task-b.toml" >/dev/null 2>&1
}
export -f vips_task_a vips_task_b im_task_a_one im_task_b_one im_task_a im_task_b djpeg_task_c sluice_task_a \
  sluice_task_b turbo_task_a turbo_task_b

write_variant_configs() {
  local name size
  : >"$WORK/task-a.toml"
  for name in large:2048 medium:1024 small:256; do
    size=${name#*:}
    printf '[convert.variants.%s]\nwidth = %s\nheight = %s\nfit = "contain"\nformat = "jpeg"\nquality = 80\n\n' \
      "${name%:*}" "$size" "$size" >>"$WORK/task-a.toml"
  done
  printf '[convert.variants.thumb]\nwidth = 256\nheight = 256\nfit = "contain"\nformat = "webp"\nquality = 80\n' \
    >"$WORK/task-b.toml"
}

# timed TASK TOOL RUNNER EXPECTED_OUTPUTS: one run into a fresh folder; appends "task tool seconds max_rss_kib"
# to $RESULTS. Checks that the tool wrote the expected number of files.
timed() {
  local task=$1 tool=$2 runner=$3 expected=$4 out="$WORK/out/$1-$2" stats got
  rm -rf "$out" && mkdir -p "$out"
  stats="$WORK/time.txt"
  /usr/bin/time -f '%e %M' -o "$stats" bash -c "$runner \"\$1\"" _ "$out"
  got=$(find "$out" -type f \( -name '*.jpg' -o -name '*.webp' \) | wc -l)
  if [[ "$expected" != 0 && "$got" != "$expected" ]]; then
    log "$tool wrote $got files for task $task, expected $expected"
    exit 1
  fi
  printf '%s %s %s\n' "$task" "$tool" "$(cat "$stats")" >>"$RESULTS"
  rm -rf "$out"
}

# median TASK TOOL FIELD (2 = seconds, 3 = peak RSS in KiB)
median() {
  awk -v t="$1" -v o="$2" -v f="$3" '$1 == t && $2 == o { print $(f + 2) }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_images() {
  photo_folder
  PHOTO_COUNT=$(find "$PHOTOS" -maxdepth 1 -name '*.jpg' | wc -l)
  export PHOTOS PHOTO_COUNT SLUICE_BIN SLUICE_TURBO_BIN WORK
  write_variant_configs
  # Debian's ImageMagick policy caps the pixel cache at 256 MiB memory and 1 GiB disk, too little for a 24 MP
  # photo: a policy with larger caps, read first.
  mkdir -p "$WORK/imagemagick"
  printf '<policymap>\n  <policy domain="resource" name="memory" value="2GiB"/>\n  <policy domain="resource" name="map" value="4GiB"/>\n  <policy domain="resource" name="disk" value="8GiB"/>\n</policymap>\n' \
    >"$WORK/imagemagick/policy.xml"
  export MAGICK_CONFIGURE_PATH="$WORK/imagemagick"
  local mp
  mp=$(folder_megapixels)
  log "images: $PHOTO_COUNT JPEGs, $mp MP in $PHOTOS; $REPEATS repeat(s), interleaved"
  RESULTS="$WORK/images.txt"
  : >"$RESULTS"
  local runs=(
    "A sluice sluice_task_a $((PHOTO_COUNT * 3))"
    "A sluice-turbojpeg turbo_task_a $((PHOTO_COUNT * 3))"
    "A vipsthumbnail vips_task_a $((PHOTO_COUNT * 3))"
    "A imagemagick im_task_a $((PHOTO_COUNT * 3))"
    "B sluice sluice_task_b $PHOTO_COUNT"
    "B sluice-turbojpeg turbo_task_b $PHOTO_COUNT"
    "B vipsthumbnail vips_task_b $PHOTO_COUNT"
    "B imagemagick im_task_b $PHOTO_COUNT"
    "C djpeg djpeg_task_c 0"
  )
  local kept=() run
  for run in "${runs[@]}"; do
    ((NO_IM)) && [[ "$run" == *imagemagick* ]] && continue
    ((TURBO)) || [[ "$run" != *turbojpeg* ]] || continue
    kept+=("$run")
  done
  runs=("${kept[@]}")
  local repeat i n=${#runs[@]}
  for ((repeat = 0; repeat < REPEATS; repeat++)); do
    for ((i = 0; i < n; i++)); do
      # shellcheck disable=SC2086  # the run's fields are words
      timed ${runs[(i + repeat) % n]}
    done
    log "images: repeat $((repeat + 1)) done"
  done

  local vips_a vips_b floor
  vips_a=$(median A vipsthumbnail 1)
  vips_b=$(median B vipsthumbnail 1)
  floor=$(median C djpeg 1)
  {
    printf '\n### Images: %s JPEGs, %s MP, median of %s\n\n' "$PHOTO_COUNT" "$mp" "$REPEATS"
    printf '| task | tool | time (s) | vs vipsthumbnail | vs decode floor | MP/s | peak RSS (MiB) |\n'
    printf '| --- | --- | ---: | ---: | ---: | ---: | ---: |\n'
    local run task tool secs rss base
    for run in "${runs[@]}"; do
      read -r task tool _ <<<"$run"
      secs=$(median "$task" "$tool" 1)
      rss=$(median "$task" "$tool" 2)
      base=$vips_a
      [[ $task == B ]] && base=$vips_b
      awk -v task="$task" -v tool="$tool" -v s="$secs" -v r="$rss" -v b="$base" -v f="$floor" -v mp="$mp" \
        'BEGIN { vs = (task == "C") ? "" : sprintf("%.2fx", s / b)
                 printf "| %s | %s | %.2f | %s | %.2fx | %.0f | %.0f |\n", task, tool, s, vs, s / f, mp / s, r / 1024 }'
    done
    local build
    for build in sluice sluice-turbojpeg; do
      [[ $build == sluice-turbojpeg ]] && ((!TURBO)) && continue
      printf '\nTargets (%s): task A at most 0.35x vipsthumbnail: %s; task B at most 0.8x: %s; task A within 2x of the decode floor: %s.\n' \
        "$build" "$(verdict "$(median A "$build" 1)" "$vips_a" 0.35)" "$(verdict "$(median B "$build" 1)" "$vips_b" 0.8)" \
        "$(verdict "$(median A "$build" 1)" "$floor" 2)"
    done
    printf 'Peak RSS is that of the largest process: sluice is one process with a thread per core, the peers run two processes.\n'
  } | tee -a "$REPORT"
}

# verdict VALUE BASE MAX_RATIO: "met (0.27x)" or "not met (0.41x)".
verdict() {
  awk -v v="$1" -v b="$2" -v m="$3" 'BEGIN { r = v / b; printf "%s (%.2fx)", (r <= m ? "met" : "not met"), r }'
}

# ---------------------------------------------------------------------------------------------------- servers

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_sluice NAME [ENV=VALUE...]: starts `sluice serve` on a free port with storage and outbox under the work
# folder; sets SERVER_PID and SERVER_URL.
start_sluice() {
  local name=$1 port
  shift
  port=$(free_port)
  mkdir -p "$WORK/$name"
  env SLUICE__SERVER__LISTEN="127.0.0.1:$port" SLUICE__SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
    SLUICE__STORAGE__URL="$WORK/$name/storage" SLUICE__MAIL__URL="file://$WORK/$name/outbox" \
    SLUICE__PIPELINE__SHUTDOWN_GRACE_SECS=1 SLUICE__LOG__LEVEL=warn "$@" \
    "$SLUICE_BIN" serve >"$WORK/$name/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_URL="http://127.0.0.1:$port"
  tools_wait_http "$SERVER_URL/readyz" 30 "$SERVER_PID" || { cat "$WORK/$name/server.log" >&2; exit 1; }
}

stop_server() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Peak resident memory of a process so far, in MiB.
peak_rss_mib() {
  awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

# ---------------------------------------------------------------------------------------------------- upload

bench_upload() {
  local size_mib=2048
  ((QUICK)) && size_mib=512
  local big="$CACHE/upload-${size_mib}MiB.jpg"
  if [[ ! -f "$big" ]]; then
    log "making a ${size_mib} MiB upload (a JPEG header, then random bytes) at $big, once"
    {
      head -c 4096 samples/forest-stream.jpg
      head -c "$((size_mib * 1048576 - 4096))" /dev/urandom
    } >"$big.tmp"
    mv "$big.tmp" "$big"
  fi
  local bytes
  bytes=$(stat -c %s "$big")
  # Local storage on the same disk as the work folder; the upload limit raised to fit.
  start_sluice upload SLUICE__SERVER__MAX_UPLOAD_BYTES=$((bytes + 1048576)) SLUICE__SERVER__UPLOAD_IDLE_TIMEOUT_SECS=120
  local idle_rss
  idle_rss=$(peak_rss_mib "$SERVER_PID")
  # Read the file once so both runs start with it in the page cache.
  cat "$big" >/dev/null
  local repeat cp_secs=() up_secs=() code secs
  for ((repeat = 0; repeat < REPEATS; repeat++)); do
    local started
    started=$(date +%s.%N)
    cp "$big" "$WORK/upload/copy.bin"
    sync "$WORK/upload/copy.bin"
    cp_secs+=("$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")
    rm -f "$WORK/upload/copy.bin"
    read -r code secs < <(curl -s -o "$WORK/upload/answer.json" -w '%{http_code} %{time_total}\n' \
      -F "file=@$big;type=image/jpeg" "$SERVER_URL/v1/uploads")
    [[ "$code" == 202 ]] || { log "upload answered $code: $(cat "$WORK/upload/answer.json")"; exit 1; }
    up_secs+=("$secs")
    # Disk space: the stored original is not needed any more (the convert stage rejects it unread).
    rm -rf "$WORK/upload/storage/originals"
  done
  # The convert stage gets the file too; give it a moment to settle so its memory counts.
  local job
  job=$(jq -r .id "$WORK/upload/answer.json")
  curl -s --max-time 60 -N "$SERVER_URL/v1/jobs/$job/events" >/dev/null || true
  local peak
  peak=$(peak_rss_mib "$SERVER_PID")
  stop_server "$SERVER_PID"
  local up cp_median
  up=$(printf '%s\n' "${up_secs[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  cp_median=$(printf '%s\n' "${cp_secs[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  {
    printf '\n### Upload ingest: one %s MiB file with curl to local storage, median of %s\n\n' "$size_mib" "$REPEATS"
    printf '| what | time (s) | MB/s | vs cp | server peak RSS (MiB) |\n| --- | ---: | ---: | ---: | ---: |\n'
    awk -v s="$up" -v c="$cp_median" -v n="$bytes" -v p="$peak" -v i="$idle_rss" 'BEGIN {
      printf "| sluice upload (202 received) | %.2f | %.0f | %.2fx | %s (idle: %s) |\n", s, n / s / 1e6, c / s, p, i
      printf "| cp of the same file, then sync (on the disk, as the server writes) | %.2f | %.0f | 1.00x | |\n", c, n / c / 1e6 }'
    printf '\nTargets: at least 300 MB/s: %s; server RSS under 100 MiB: %s.\n' \
      "$(awk -v s="$up" -v n="$bytes" 'BEGIN { r = n / s / 1e6; printf "%s (%.0f MB/s)", (r >= 300 ? "met" : "not met"), r }')" \
      "$(awk -v p="$peak" 'BEGIN { printf "%s (%s MiB)", (p < 100 ? "met" : "not met"), p }')"
  } | tee -a "$REPORT"
}

# ---------------------------------------------------------------------------------------------------- gateway

# wrk_post URL SECONDS OUT: wrk at concurrency 32 posting $GATEWAY_BODY as multipart; the report goes to OUT.
wrk_post() {
  wrk -t 2 -c 32 -d "${2}s" --timeout 60s --latency -s "$WORK/post.lua" "$1" >"$3" 2>&1
}

# wrk_summary NAME REPORT RSS_MIB: one table row from a wrk report.
wrk_summary() {
  awk -v name="$1" -v rss="$3" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; return v * 1000 }
    / 50% / { p50 = ms($2) } / 99% / { p99 = ms($2) }
    /requests in/ { total = $1 } /Non-2xx/ { bad = $5 } /^Requests\/sec/ { rps = $2 }
    /Socket errors/ { errors = $0 }
    END { ok = total - bad; printf "| %s | %.1f | %d / %d | %.1f | %.1f | %s |\n", name, rps * ok / (total ? total : 1), ok, total, p50, p99, rss }' "$2"
}

bench_gateway() {
  local seconds=20
  ((QUICK)) && seconds=5
  # A ~200 KB photo: forest-stream.jpg at 1024 px, q80.
  GATEWAY_BODY="$CACHE/gateway-1024-q80.jpg"
  [[ -f "$GATEWAY_BODY" ]] || vips thumbnail samples/forest-stream.jpg "${GATEWAY_BODY}[Q=80,strip]" 1024
  local boundary=sluicebenchboundary
  {
    printf -- '--%s\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' "$boundary"
    cat "$GATEWAY_BODY"
    printf -- '\r\n--%s--\r\n' "$boundary"
  } >"$WORK/body.bin"
  cat >"$WORK/post.lua" <<EOF
local f = assert(io.open("$WORK/body.bin", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "multipart/form-data; boundary=$boundary"
EOF
  local body_kb
  body_kb=$(($(stat -c %s "$GATEWAY_BODY") / 1000))
  {
    printf '\n### Gateway under load: %s KB uploads, concurrency 32, %s s each (wrk)\n\n' "$body_kb" "$seconds"
    printf '| server | accepted/s | accepted / sent | p50 (ms) | p99 (ms) | peak RSS (MiB) |\n'
    printf '| --- | ---: | ---: | ---: | ---: | ---: |\n'
  } | tee -a "$REPORT"

  # sluice: a queue big enough that nothing is refused while the convert stage falls behind. Then the same
  # with storage.fsync = false (nothing waits for the disk, the kernel's writeback does it later); with the
  # storage folder in memory (tmpfs), which takes the disk out of the figures; and with
  # the conversion threads at the server's own priority (pipeline.conversion_nice = 0), the baseline of the
  # lowered priority.
  local backlog rss converted nice label memory_storage=/dev/shm/sluice-bench-gateway-$$
  # The disk alone: each upload's flushed writes by 32 threads with no server (scripts/bench_disk.py). Right
  # before sluice with the cores idle, and right after it with both cores kept busy by loops at the conversions'
  # nice level, as sluice's own conversions keep them: busy cores alone cut the rate of this disk-bound loop by
  # a third or more. A virtual disk's rate also drifts (one with burst credits loses a third of it within a
  # minute of load), hence one run on each side of sluice's. Then once more with busy cores, the originals
  # flushed file by file (as sluice did before its shared flush): the baseline of that change.
  local disk_rate_busy=0 disk_p99s=()
  disk_alone() {
    local label=$1 busy=$2 mode=${3:-grouped} rate completed p50 p99 burners=()
    if ((busy)); then
      for _ in 1 2; do
        nice -n 10 sh -c 'while :; do :; done' &
        burners+=("$!")
        PIDS+=("$!")
      done
    fi
    rm -rf "$WORK/gateway-disk"
    read -r rate completed p50 p99 < <(python3 "$ROOT/scripts/bench_disk.py" "$WORK/gateway-disk" "$GATEWAY_BODY" "$seconds" 32 "$mode")
    rm -rf "$WORK/gateway-disk"
    if ((busy)); then
      kill "${burners[@]}" 2>/dev/null || true
      wait "${burners[@]}" 2>/dev/null || true
    fi
    local what="the same durable writes by 32 threads, no server"
    if [[ $mode == grouped ]]; then
      disk_p99s+=("$p99")
      ((busy)) && disk_rate_busy=$rate
    else
      what="the originals flushed file by file instead of by one shared flush"
    fi
    printf '| the disk alone, %s: %s | %s | %s / %s | %s | %s | |\n' \
      "$label" "$what" "$rate" "$completed" "$completed" "$p50" "$p99" | tee -a "$REPORT"
  }
  disk_alone "cores idle (before sluice)" 0
  local variants=(default)
  [[ -n "${SLUICE_GATEWAY_BASELINE_BIN:-}" ]] && variants+=(baseline)
  for nice in "${variants[@]}" nosync tmpfs 0; do
    label=sluice
    case $nice in
      nosync)
        label="sluice, writes not flushed to the disk (storage.fsync = false)"
        start_sluice gateway SLUICE__PIPELINE__QUEUE_CAPACITY=1000000 SLUICE__STORAGE__FSYNC=false
        ;;
      0)
        label="sluice, conversions not niced (pipeline.conversion_nice = 0)"
        start_sluice gateway SLUICE__PIPELINE__QUEUE_CAPACITY=1000000 SLUICE__PIPELINE__CONVERSION_NICE=0
        ;;
      tmpfs)
        [[ -d /dev/shm ]] || continue
        label="sluice, storage folder on tmpfs (no disk writeback)"
        start_sluice gateway SLUICE__PIPELINE__QUEUE_CAPACITY=1000000 SLUICE__STORAGE__URL="$memory_storage"
        ;;
      baseline)
        label="sluice, baseline build (SLUICE_GATEWAY_BASELINE_BIN)"
        SLUICE_BIN=$SLUICE_GATEWAY_BASELINE_BIN start_sluice gateway SLUICE__PIPELINE__QUEUE_CAPACITY=1000000
        ;;
      *) start_sluice gateway SLUICE__PIPELINE__QUEUE_CAPACITY=1000000 ;;
    esac
    wrk_post "$SERVER_URL/v1/uploads" "$seconds" "$WORK/wrk-sluice-$nice.txt"
    if [[ $nice == default ]]; then
      backlog=$(curl -s "$SERVER_URL/metrics" | awk '/^sluice_queue_depth\{stage="convert"\}/ { print $2 }' | head -n1)
      converted=$(curl -s "$SERVER_URL/metrics" | awk '/^sluice_files_total\{outcome="converted"\}/ { print $2 }' | head -n1)
    fi
    rss=$(peak_rss_mib "$SERVER_PID")
    stop_server "$SERVER_PID"
    rm -rf "$WORK/gateway" "$memory_storage"
    wrk_summary "$label" "$WORK/wrk-sluice-$nice.txt" "$rss" | tee -a "$REPORT"
    if [[ $nice == default ]]; then
      disk_alone "both cores busy (after sluice)" 1
      disk_alone "both cores busy" 1 per-file
    fi
  done

  # FastAPI + Pillow, the same load: resizing before answering, then with BackgroundTasks.
  local mode port pid
  cp "$ROOT/scripts/bench_fastapi.py" "$WORK/bench_fastapi.py"
  for mode in sync background; do
    port=$(free_port)
    mkdir -p "$WORK/fastapi-$mode"
    (cd "$WORK" && BENCH_OUT="$WORK/fastapi-$mode" exec "$VENV/bin/uvicorn" bench_fastapi:app --port "$port" \
      --log-level warning >"$WORK/fastapi-$mode.log" 2>&1) &
    pid=$!
    PIDS+=("$pid")
    tools_wait_http "http://127.0.0.1:$port/healthz" 30 "$pid" || { cat "$WORK/fastapi-$mode.log" >&2; exit 1; }
    wrk_post "http://127.0.0.1:$port/$mode" "$seconds" "$WORK/wrk-$mode.txt"
    rss=$(peak_rss_mib "$pid")
    stop_server "$pid"
    rm -rf "$WORK/fastapi-$mode"
    wrk_summary "FastAPI + Pillow ($mode)" "$WORK/wrk-$mode.txt" "$rss" | tee -a "$REPORT"
  done
  local sluice_rate sluice_p99
  read -r sluice_rate sluice_p99 < <(wrk_summary sluice "$WORK/wrk-sluice-default.txt" 0 | awk -F'|' '{ print $3 + 0, $6 + 0 }')
  {
    printf '\nWhile sluice was loaded it converted %s files and %s jobs were still queued for conversion at the end (the convert stage was saturated).\n' \
      "${converted:-?}" "${backlog:-?}"
    printf 'sluice accepted %s the uploads/s of the disk alone with both cores busy, while also writing the conversions.\n' \
      "$(awk -v s="$sluice_rate" -v d="$disk_rate_busy" 'BEGIN { printf (d > 0 ? "%.2fx" : "?"), s / d }')"
    printf 'Target: p99 of the 202 under 50 ms: %s.\n' \
      "$(awk -v p="$sluice_p99" -v a="${disk_p99s[0]}" -v b="${disk_p99s[1]}" 'BEGIN { printf "%s (%.1f ms; the disk alone: %.1f ms with the cores idle, %.1f ms with them busy)", (p < 50 ? "met" : "not met"), p, a, b }')"
  } | tee -a "$REPORT"
}

# ---------------------------------------------------------------------------------------------------- mail

bench_mail() {
  local repeats=$((QUICK ? 3 : 7)) photo
  photo_folder
  photo=$(find "$PHOTOS" -maxdepth 1 -name '*.jpg' -print | sort | head -n1)
  ((QUICK)) || photo="$PHOTOS/dragonfly-on-branch-4240x2832.jpg"
  local smtp web
  smtp=$(free_port)
  web=$(free_port)
  "$MAILDEV_BIN" --ip 127.0.0.1 --web-ip 127.0.0.1 --smtp "$smtp" --web "$web" --silent >"$WORK/maildev.log" 2>&1 &
  local maildev_pid=$!
  PIDS+=("$maildev_pid")
  tools_wait_http "http://127.0.0.1:$web/api/healthz" 30 "$maildev_pid" || { cat "$WORK/maildev.log" >&2; exit 1; }
  start_sluice mail SLUICE__MAIL__URL="smtp://127.0.0.1:$smtp"
  # Three variants: the defaults (thumb 256 WebP, medium 1024 JPEG, large 2048 JPEG).
  mkdir -p "$WORK/mail/one"
  cp "$photo" "$WORK/mail/one/"
  local repeat delivered=() local_secs=() started location mails
  for ((repeat = 0; repeat < repeats; repeat++)); do
    started=$(date +%s.%N)
    location=$(curl -s -o /dev/null -w '%header{location}' -F "file=@$photo" -F notify=bench@example.com \
      "$SERVER_URL/v1/uploads")
    # The event stream ends when nothing more will happen to the job: after the notice was accepted.
    curl -s -N --max-time 120 "$SERVER_URL$location/events" >"$WORK/mail/events.txt"
    delivered+=("$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")
    grep -q '"state":"sent"' "$WORK/mail/events.txt" || { log "no notice sent for $location"; exit 1; }
    started=$(date +%s.%N)
    "$SLUICE_BIN" convert "$WORK/mail/one" --out "$WORK/mail/out" --force >/dev/null 2>&1
    local_secs+=("$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")
  done
  mails=$(curl -s "http://127.0.0.1:$web/api/email" | jq length)
  stop_server "$SERVER_PID"
  local p50 local_p50 mp
  p50=$(printf '%s\n' "${delivered[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  local_p50=$(printf '%s\n' "${local_secs[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  mp=$(awk -v w="$(vipsheader -f width "$photo")" -v h="$(vipsheader -f height "$photo")" 'BEGIN { printf "%.1f", w * h / 1e6 }')
  {
    printf '\n### Upload to mail delivered: one %s MP photo, three variants, SMTP to maildev, %s runs\n\n' "$mp" "$repeats"
    printf '| what | p50 (ms) | vs sluice convert |\n| --- | ---: | ---: |\n'
    awk -v d="$p50" -v l="$local_p50" 'BEGIN {
      printf "| upload -> 202 -> convert -> notice accepted by SMTP | %.0f | %.2fx |\n", d * 1000, d / l
      printf "| sluice convert of the same photo (process start to exit) | %.0f | 1.00x |\n", l * 1000 }'
    printf '\nmaildev received %s notices.\n' "$mails"
  } | tee -a "$REPORT"
}

# ---------------------------------------------------------------------------------------------------- main

ensure_tools
rm -rf "$WORK" && mkdir -p "$WORK/upload"
REPORT="$WORK/report.md"
{
  printf '## sluice benchmark (%s)\n\n' "$( ((QUICK)) && echo quick || echo full)"
  printf 'Machine: %s, %s cores; %s. Load before the run (1, 5, 15 min)%s\n' \
    "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" "$(nproc)" \
    "$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)" "$(uptime | sed 's/.*load average//')"
  printf 'Peers: %s; %s; djpeg from %s.\n' "$(vips --version)" "$(convert -version | head -n1 | cut -d' ' -f2-3)" \
    "$(dpkg-query -W -f '${Package} ${Version}' libjpeg-turbo-progs 2>/dev/null || echo 'libjpeg-turbo')"
} | tee "$REPORT"
want images && bench_images
want upload && bench_upload
want gateway && bench_gateway
want mail && bench_mail
printf '\nLoad after the run (1, 5, 15 min)%s\n' "$(uptime | sed 's/.*load average//')" | tee -a "$REPORT"
cp "$REPORT" "$CACHE/last-report.md"
log "report saved to $CACHE/last-report.md"
