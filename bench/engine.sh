#!/usr/bin/env bash
# bench/engine.sh: benchmarks of the local engine (spritescript serve).
#
#   bench/engine.sh [path-to-spritescript]        (default build/spritescript)
#
# Builds nothing. Starts two engines on loopback, each with its own temporary
# state dir and a random token: one with the default idle timeouts (create,
# exec round trip, streaming) and one with --idle-timeout 300ms
# --cold-timeout 300ms (wake from warm and from cold). Runs
# bench/engine_bench.mjs against them, prints the machine and a table, stops
# the engines and removes the state dirs, however the run ends.
#
# Environment (passed on to engine_bench.mjs; README.md, "The engine"):
#   CREATE_RUNS=20 WAKE_RUNS=20 RT_RUNS=200 STREAM_RUNS=3 STREAM_BYTES=1073741824
#   SECTIONS="create wake rt stream"
#
# Needs node (18 or later; the global WebSocket of Node 20+ is used when it
# exists, a raw client otherwise) and unprivileged user namespaces (the
# engine's sandboxes). Nothing here fails on a slow number: targets are
# reported as met / NOT met. The exit status is non-zero when a benchmark
# could not run, or when an engine died during the run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}

if [ ! -x "$bin" ]; then
  echo "engine.sh: no spritescript binary at $bin (build it first: make build)" >&2
  exit 2
fi
if ! command -v node >/dev/null 2>&1; then
  echo "engine.sh: node is not installed (tools/install-deps.sh bench installs it)" >&2
  exit 2
fi
node_flags=()
if [ "$(node -e 'process.stdout.write(typeof WebSocket)')" != function ] &&
   [ "$(node --experimental-websocket -e 'process.stdout.write(typeof WebSocket)' 2>/dev/null)" = function ]; then
  node_flags=(--experimental-websocket)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-engine-bench.XXXXXX")
pids=()      # the engines
node_pid=""  # the benchmark client

# Stop the engines we started (by pid), then remove their state dirs.
# shellcheck disable=SC2317  # run by the trap
cleanup() {
  local pid i
  set +e  # every step is best effort; a failing one must not skip the rest
  if [ -n "$node_pid" ]; then
    kill -TERM "$node_pid" 2>/dev/null
    wait "$node_pid" 2>/dev/null
  fi
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for (( i = 0; i < 50; i++ )); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

# start_engine NAME [serve options...]: sets $engine_url and $engine_pid.
start_engine() {
  local name=$1 i
  shift
  "$bin" serve --listen 127.0.0.1:0 --state-dir "$work/$name" --token "$token" "$@" \
    >"$work/$name.out" 2>"$work/$name.err" </dev/null &
  engine_pid=$!
  pids+=("$engine_pid")
  for (( i = 0; i < 100; i++ )); do
    engine_url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/$name.out" 2>/dev/null | head -1 || true)
    [ -n "$engine_url" ] && return 0
    if ! kill -0 "$engine_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "engine.sh: the engine ($name) did not start:" >&2
  cat "$work/$name.out" "$work/$name.err" >&2
  exit 1
}

# engine_alive NAME PID: false (with a message) when the engine has died.
engine_alive() {
  if kill -0 "$2" 2>/dev/null; then return 0; fi
  local status=0
  wait "$2" 2>/dev/null || status=$?
  local what="exit status $status"
  if [ "$status" -gt 128 ]; then what="killed by signal $((status - 128))"; fi
  echo "engine.sh: the $1 engine (pid $2) died during the run ($what); its stderr:" >&2
  sed 's/^/  /' "$work/$1.err" >&2
  return 1
}

cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
# shellcheck disable=SC1091  # the running system's file
os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
echo "spritescript engine benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  binary:  $bin: $("$bin" version)"
echo "  machine: $(nproc) CPUs, ${cpu:-unknown CPU}, ${mem:-? GiB}; ${os:-unknown OS}, Linux $(uname -r)"
echo "  client:  node $(node --version) ${node_flags[*]}"
echo "  load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the start"
echo

start_engine main
main_url=$engine_url main_pid=$engine_pid
start_engine wake --idle-timeout 300ms --cold-timeout 300ms
wake_url=$engine_url wake_pid=$engine_pid

# In the background, so that a signal to this script runs the trap at once
# (bash waits for a foreground command before it runs a trap).
status=0
BENCH_URL=$main_url BENCH_WAKE_URL=$wake_url BENCH_TOKEN=$token BENCH_ENGINE_PID=$main_pid \
  node "${node_flags[@]}" "$here/engine_bench.mjs" </dev/null &
node_pid=$!
wait "$node_pid" || status=$?
node_pid=""
engine_alive main "$main_pid" || status=1
engine_alive wake "$wake_pid" || status=1
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
