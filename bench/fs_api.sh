#!/usr/bin/env bash
# bench/fs_api.sh: the engine's filesystem API (spec §10) against a local cp.
#
#   bench/fs_api.sh [path-to-spritescript]        (default build/spritescript)
#
# Starts one engine on loopback with a temporary state dir and a random token,
# makes a sprite, and moves a file of SIZE bytes (default 1 GiB of random
# data) RUNS times (default 3) each way with curl:
#   write  curl -T FILE  PUT  .../fs/write   (the body streams to the sprite's disk)
#   read   curl -o FILE  GET  .../fs/read    (the file streams back, to disk)
#   read0  curl -o /dev/null                 (the same read, nothing written locally)
# and compares with `cp FILE COPY` and `cat FILE > COPY` on the same
# filesystem (the state dir is under the same TMPDIR). The source is in the
# page cache for every contender, and `sync` runs (untimed) before each one,
# so none is throttled by write-back of another's dirty pages; nobody syncs
# inside the timing, so the numbers are page-cache speeds. Each copy is checked byte
# for byte once. Prints the machine and a table of best and median times;
# the ratio is cp's best time over the contender's (1.0 = as fast as cp).
#
# Environment: SIZE=1073741824 RUNS=3 TMPDIR=/tmp
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
size=${SIZE:-1073741824}
runs=${RUNS:-3}

if [ ! -x "$bin" ]; then
  echo "fs_api.sh: no spritescript binary at $bin (build it first: make build)" >&2
  exit 2
fi
for tool in curl python3 cmp; do
  command -v "$tool" >/dev/null 2>&1 || { echo "fs_api.sh: $tool is not installed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-fs-bench.XXXXXX")
engine_pid=""
# shellcheck disable=SC2317  # run by the trap
cleanup() {
  set +e
  if [ -n "$engine_pid" ]; then
    kill -TERM "$engine_pid" 2>/dev/null
    wait "$engine_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --state-dir "$work/engine" --token "$token" >"$work/serve.out" 2>&1 &
engine_pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$work/serve.out" && break
  sleep 0.05
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)
[ -n "$url" ] || { echo "fs_api.sh: the engine did not start:" >&2; cat "$work/serve.out" >&2; exit 1; }
auth=(-H "Authorization: Bearer $token")
curl -fsS "${auth[@]}" -o /dev/null -d '{"name":"bench"}' "$url/v1/sprites"
# Wake the sprite (its sandbox starts) before anything is timed.
curl -fsS "${auth[@]}" -o /dev/null -X PUT --data-binary x "$url/v1/sprites/bench/fs/write?path=/home/sprite/warm"

src=$work/source.bin
layer_file=$work/engine/sprites/bench/fs/layer/home/sprite/big.bin
head -c "$size" /dev/urandom >"$src"
cat "$src" >/dev/null  # in the page cache for every contender

now() { date +%s.%N; }
declare -A times
timed() {  # name command...
  local name=$1 start end
  shift
  sync  # no contender pays for the write-back of another's dirty pages
  start=$(now)
  "$@"
  end=$(now)
  times[$name]="${times[$name]:-} $(python3 -c "print($end - $start)")"
}

do_write() {
  curl -fsS "${auth[@]}" -o /dev/null -T "$src" -H 'Content-Type: application/octet-stream' \
    "$url/v1/sprites/bench/fs/write?path=/home/sprite/big.bin"
}
do_read() { curl -fsS "${auth[@]}" -o "$work/back.bin" "$url/v1/sprites/bench/fs/read?path=/home/sprite/big.bin"; }
do_read0() { curl -fsS "${auth[@]}" -o /dev/null "$url/v1/sprites/bench/fs/read?path=/home/sprite/big.bin"; }
do_cp() { cp "$src" "$work/cp.bin"; }
do_cat() { cat "$src" >"$work/cat.bin"; }

for (( i = 0; i < runs; i++ )); do
  # Every contender writes a new file (replacing one would time its removal too).
  rm -f "$work/cp.bin" "$work/cat.bin" "$work/back.bin"
  curl -sS "${auth[@]}" -o /dev/null -X DELETE "$url/v1/sprites/bench/fs/delete?path=/home/sprite/big.bin"
  timed cp do_cp
  timed cat do_cat
  timed write do_write
  timed read do_read
  timed read0 do_read0
  if [ "$i" -eq 0 ]; then
    cmp "$src" "$layer_file" || { echo "fs_api.sh: the written file differs" >&2; exit 1; }
    cmp "$src" "$work/back.bin" || { echo "fs_api.sh: the file read back differs" >&2; exit 1; }
    cmp "$src" "$work/cp.bin"
  fi
done

echo "machine: $(nproc) vCPU, $(uname -sr), $(df -T "$work" | awk 'NR == 2 { print $2 }') under ${TMPDIR:-/tmp}, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "engine: $("$bin" --version 2>/dev/null | head -1 || echo "$bin"); size $size bytes; $runs runs each"
python3 - "$size" "cp:${times[cp]}" "cat:${times[cat]}" "write:${times[write]}" \
  "read:${times[read]}" "read0:${times[read0]}" <<'EOF'
import statistics, sys
size = int(sys.argv[1])
rows = {}
for arg in sys.argv[2:]:
    name, values = arg.split(":", 1)
    rows[name] = sorted(float(v) for v in values.split())
cp_best = rows["cp"][0]
labels = {
    "cp": "cp FILE COPY (local)",
    "cat": "cat FILE > COPY (local)",
    "write": "fs/write: curl -T FILE",
    "read": "fs/read: curl -o FILE",
    "read0": "fs/read: curl -o /dev/null",
}
print(f"{'contender':30} {'best s':>8} {'median s':>9} {'GB/s':>7} {'vs cp':>7}")
for name in ["cp", "cat", "write", "read", "read0"]:
    t = rows[name]
    best, median = t[0], statistics.median(t)
    print(f"{labels[name]:30} {best:8.3f} {median:9.3f} {size / best / 1e9:7.2f} {cp_best / best:7.2f}")
EOF
