#!/usr/bin/env bash
# bench/checkpoint.sh: checkpoint and restore times of the local engine.
#
#   bench/checkpoint.sh [path-to-spritescript]     (default build/spritescript)
#
# Starts one engine (temporary state dir under $TMPDIR, random token) and,
# for each size in SIZES_MB (default "10 200 1000") and each shape in SHAPES
# (default "small large": many files of 10 kB, or 4 files of SIZE/4; the
# sprite's layer is checked to hold the size), fills a fresh
# sprite's /home/sprite, then times through the HTTP API:
#   first     the first checkpoint (every byte copied)
#   again     a second checkpoint with nothing changed (files shared by link)
#   changed   a checkpoint after rewriting 10 MB of it
#   restore   a restore of the first checkpoint
# Prints the machine, the filesystem of the state dir and a table; targets
# (checkpoint < 1 s, restore < 2 s at 200 MB) are reported as met / NOT met,
# never fail the run. Needs curl and python3.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
sizes=${SIZES_MB:-10 200 1000}
if [ ! -x "$bin" ]; then
  echo "checkpoint.sh: no spritescript binary at $bin (build it first: make build)" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-checkpoint-bench.XXXXXX")
engine_pid=""
cleanup() {
  set +e
  if [ -n "$engine_pid" ]; then
    kill -TERM "$engine_pid" 2>/dev/null
    wait "$engine_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --listen 127.0.0.1:0 --state-dir "$work/state" --token "$token" \
  >"$work/engine.log" 2>&1 &
engine_pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/engine.log" 2>/dev/null && break
  sleep 0.1
done
url=$(grep -o 'http://[0-9.:]*' "$work/engine.log" | head -1)
[ -n "$url" ] || { echo "checkpoint.sh: the engine did not start:" >&2; cat "$work/engine.log" >&2; exit 1; }
auth="Authorization: Bearer $token"

api() {  # METHOD PATH [BODY]: prints the body; fails on an error event
  local out
  out=$(curl -sS -X "$1" -H "$auth" ${3:+-d "$3"} "$url$2")
  if grep -q '"type":"error"' <<<"$out"; then echo "$out" >&2; return 1; fi
  printf '%s' "$out"
}
run_in() {  # SPRITE SCRIPT
  local q
  q=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1]))' "$2")
  curl -sS -X POST -H "$auth" "$url/v1/sprites/$1/exec?cmd=sh&cmd=-c&cmd=$q" >/dev/null
}
seconds() {  # COMMAND...: the wall time in seconds
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

echo "machine: $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
echo "state dir filesystem: $(df -T "$work" | awk 'NR==2 {print $2}') ($(df -h "$work" | awk 'NR==2 {print $1}'))"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo
printf '%-8s %-6s %8s %8s %8s %8s %8s\n' size shape files first again changed restore
n=0
for mb in $sizes; do
  for shape in ${SHAPES:-small large}; do
    n=$((n + 1))
    name="bench-$n"
    api POST /v1/sprites "{\"name\":\"$name\"}" >/dev/null
    if [ "$shape" = small ]; then
      files=$((mb * 100))
      run_in "$name" "mkdir -p /home/sprite/d && cd /home/sprite/d && head -c ${mb}000000 /dev/urandom | split -b 10000 -a 6 -"
    else
      files=4
      run_in "$name" "mkdir -p /home/sprite/d && cd /home/sprite/d && for i in 1 2 3 4; do head -c $((mb * 250000)) /dev/urandom > f\$i; done"
    fi
    stored=$(du -sm "$work/state/sprites/$name/fs/layer" | cut -f1)
    if [ "$stored" -lt "$((mb * 9 / 10))" ]; then
      echo "checkpoint.sh: the sprite holds ${stored} MB, not ${mb} MB: filling it failed" >&2
      exit 1
    fi
    # SYNC=1: the fill's dirty pages written out first, so the copy is timed
    # alone (on ext4 a journal commit writes out pending data first).
    if [ "${SYNC:-0}" = 1 ]; then sync; fi
    sleep 1.1  # files older than the checkpoint's coarse-clock margin
    first=$(seconds api POST "/v1/sprites/$name/checkpoint" '{}')
    again=$(seconds api POST "/v1/sprites/$name/checkpoint" '{}')
    run_in "$name" "head -c 10000000 /dev/urandom > /home/sprite/d/changed"
    changed=$(seconds api POST "/v1/sprites/$name/checkpoint" '{}')
    restore=$(seconds api POST "/v1/sprites/$name/checkpoints/v0/restore")
    printf '%-8s %-6s %8s %8s %8s %8s %8s\n' "${mb}MB" "$shape" "$files" "$first" "$again" "$changed" "$restore"
    if [ "$mb" = 200 ]; then
      verdict() { awk -v t="$1" -v l="$2" 'BEGIN { print (t < l) ? "met" : "NOT met" }'; }
      targets+=("200 MB $shape: checkpoint $first s ($(verdict "$first" 1)), restore $restore s ($(verdict "$restore" 2))")
    fi
    api DELETE "/v1/sprites/$name" >/dev/null
  done
done
echo
for t in "${targets[@]:-}"; do [ -n "$t" ] && echo "target: $t"; done
exit 0
